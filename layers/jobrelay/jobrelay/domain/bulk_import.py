"""The values of a bulk import: the vendor's batch limits and body format, a record that did not
make it, what a stage request got back, and our own totals when the import ends."""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator


@dataclass(frozen=True)
class BatchLimits:
    """How a vendor wants records cut into stage requests."""

    max_bytes: int  # encoded size of one stage request body
    max_records: int | None = None  # records in one stage request, if the vendor caps it
    max_total_records: int | None = None  # records in one import, if the vendor caps it


@dataclass(frozen=True)
class BatchFormat:
    """How a vendor's stage request body is made: each record encoded on its own, and the framing
    around and between them. Declared rather than inferred, so a batch's size is known to the byte
    before its body is built: the framing's size for its count plus its records' encodings."""

    encode_record: Callable[[Any], bytes]
    prefix: bytes = b""
    separator: bytes = b""
    suffix: bytes = b""

    @classmethod
    def json_array(cls, encode_record: Callable[[Any], bytes], *, key: str | None = None) -> Self:
        """A compact JSON array of the records, or an object holding that array under `key` alone:
        what json.dumps(..., separators=(",", ":")) gives for the whole when `encode_record` gives
        it for each record (`key` is written as json.dumps writes it, anything but printable ASCII
        escaped)."""
        if key is None:
            return cls(encode_record, b"[", b",", b"]")
        return cls(encode_record, b"{" + json.dumps(key).encode() + b":[", b",", b"]}")

    def encode(self, records: Iterable[Any]) -> bytes:
        """The body of a batch of these records."""
        return self.prefix + self.separator.join(map(self.encode_record, records)) + self.suffix

    def framing_size(self, count: int) -> int:
        """The bytes of a body of `count` records that are not the records' own."""
        return len(self.prefix) + len(self.suffix) + max(count - 1, 0) * len(self.separator)


@dataclass
class RecordFailure:
    """One record that did not make it, as the user sees it in failed_records.jsonl."""

    line: int | None  # 1-based line of the source file (the CSV header is line 1)
    key: str | None  # the record's identifying value (email, alternate id, ...), when it has one
    stage: str  # "validation": refused by us, never sent; "vendor": refused by the vendor (staging or run)
    reasons: list[str]


@dataclass
class StagedBatch:
    """What the vendor said after one stage request: its running counters (if it keeps any), and
    its warnings about single records: (0-based position in the batch, warnings)."""

    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[tuple[int, list[str]]] = field(default_factory=list)


@dataclass(frozen=True)
class ImportTotals:
    """Our own counts of an import when it ends."""

    read: int  # records read from the file
    refused: int  # refused by our checks, or over the vendor's per-import limit: never sent
    sent: int  # records staged at the vendor
    listed_failures: int  # records the vendor listed as failed (VendorImports.failures)
    warnings: int  # the vendor's per-record warnings


# --- where an import stands (job.import_state) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """One stage request: `count` records from the lines `lines`, encoded as `body`."""

    index: int  # 0-based, in file order over the whole import
    first_line: int
    # The end of the last line this batch accounts for (its last record, or a failure read after
    # it), and the line number there: where reading resumes once the batch is staged.
    last_end_offset: int
    next_line: int
    lines: list[int]  # of its records, in order: the vendor's "record k of the batch" is lines[k]
    body: bytes
    count: int
    # Records given up between the previous batch and last_end_offset.
    invalid: int = 0  # unreadable, refused by the vendor's model, or too big to send
    excess: int = 0  # valid, but past the vendor's limit of records per import

    @property
    def key(self) -> tuple[int, int]:
        return (self.index, self.first_line)


@dataclass(frozen=True, slots=True)
class EndOfRecords:
    """The input is exhausted: the failures read since the last batch, and the end of the last line
    that held anything (only blank lines may follow)."""

    end_offset: int
    next_line: int
    invalid: int = 0
    excess: int = 0


Cut = Batch | RecordFailure | EndOfRecords


class CheckpointMismatch(ValueError):
    """A batch that does not follow the checkpoint: the file or the limits changed under the import."""


class Checkpoint(BaseModel):
    """How far an import's staging has gone. Small and JSON: it travels in the state machine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    next_batch_index: int = Field(default=0, ge=0)
    resume_offset: int = Field(default=0, ge=0)
    resume_line: int = Field(default=1, ge=1)
    staged_records: int = Field(default=0, ge=0)
    invalid_records: int = Field(default=0, ge=0)
    excess_records: int = Field(default=0, ge=0)
    finished: bool = False
    # The version (S3 ETag) of the file the offsets refer to: resuming in another file would
    # misalign every line.
    source_etag: str | None = None

    def after(self, done: Batch | EndOfRecords) -> Self:
        """The checkpoint once `done` is: the batch staged, or the end of the records reached."""
        if isinstance(done, EndOfRecords):
            if done.end_offset < self.resume_offset:
                raise CheckpointMismatch(f"the records end at byte {done.end_offset}, before this checkpoint")
            return self._moved(done.end_offset, done.next_line, done.invalid, done.excess, finished=True)
        if self.already_staged(done):
            raise CheckpointMismatch(f"batch {done.index} is already counted in this checkpoint")
        moved = self._moved(done.last_end_offset, done.next_line, done.invalid, done.excess, finished=False)
        return moved.model_copy(update={"next_batch_index": done.index + 1, "staged_records": self.staged_records + done.count})

    def already_staged(self, batch: Batch) -> bool:
        """True for a batch this checkpoint has counted (cut again by a step retried from an older
        position), False for the next batch to stage. Anything else is a CheckpointMismatch."""
        if batch.index < self.next_batch_index and batch.last_end_offset <= self.resume_offset:
            return True
        if batch.index == self.next_batch_index and batch.first_line >= self.resume_line:
            return False
        raise CheckpointMismatch(
            f"batch {batch.index} from line {batch.first_line} does not follow this checkpoint "
            f"(next batch {self.next_batch_index}, from line {self.resume_line} on)"
        )

    def _moved(self, offset: int, line: int, invalid: int, excess: int, *, finished: bool) -> Self:
        return self.model_copy(
            update={
                "resume_offset": offset,
                "resume_line": line,
                "invalid_records": self.invalid_records + invalid,
                "excess_records": self.excess_records + excess,
                "finished": finished,
            }
        )


class InFlight(BaseModel):
    """A batch sent to the vendor whose acknowledgement is not in the checkpoint yet."""

    index: int
    first_line: int
    last_end_offset: int
    next_line: int
    count: int
    invalid: int = 0
    excess: int = 0
    sent_at: datetime | None = None
    vendor_position: int | None = None  # once acknowledged: see ImportState.vendor_positions

    def as_batch(self) -> Batch:
        """The batch as Checkpoint.after() needs it (its records and body are long gone)."""
        return Batch(
            index=self.index,
            first_line=self.first_line,
            last_end_offset=self.last_end_offset,
            next_line=self.next_line,
            lines=[],
            body=b"",
            count=self.count,
            invalid=self.invalid,
            excess=self.excess,
        )


class ImportState(BaseModel):
    """Where a bulk import stands (job.import_state): its checkpoint, the batches in flight, what it
    staged, and the working files of its failures and warnings. Saved after every batch.

    Several stage requests may be in flight at once (VendorImports.stage_concurrency), and their
    answers may come in any order: the checkpoint only moves over an unbroken run of acknowledged
    batches, and a batch acknowledged ahead of one still in flight waits in `acknowledged_ahead`,
    so a resumed step neither sends it again nor loses the one before it."""

    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    in_flight: list[InFlight] = Field(default_factory=list)
    acknowledged_ahead: list[InFlight] = Field(default_factory=list)
    batch_sizes: list[int] = Field(default_factory=list)  # records per staged batch, in order
    # Where each staged batch's first record sits among the records the vendor received (0-based), as
    # its stage answer counted them; None where it did not say. With one request at a time this is
    # the running total; with several, the order the vendor took them in, which its record numbers follow.
    vendor_positions: list[int | None] = Field(default_factory=list)
    failure_parts: list[str] = Field(default_factory=list)  # scratch files of our own failures
    warning_parts: list[str] = Field(default_factory=list)  # scratch files of the vendor's record warnings
    header: list[str] | None = None  # a CSV file's header, to resume mid-file
    staging_started_at: datetime | None = None
    progressed_at: datetime | None = None  # the last batch acknowledged (or staging's start): a stall is measured from it
    restarts: int = 0  # fresh imports opened after a batch of unknown fate (vendors that count nothing)
    run_sent_at: datetime | None = None  # the run was sent then, and its answer is not known yet

    @field_validator("in_flight", mode="before")
    @classmethod
    def _one_batch_of_old(cls, value: Any) -> Any:
        """Items stored when one batch at most was in flight hold it (or null) here."""
        if value is None:
            return []
        return [value] if isinstance(value, dict) else value

    @property
    def staged_or_ahead(self) -> int:
        """Records the vendor has acknowledged: the checkpoint's and those acknowledged ahead of it."""
        return self.checkpoint.staged_records + sum(batch.count for batch in self.acknowledged_ahead)

    def sent(self, batch: InFlight) -> "ImportState":
        """This state with `batch` in flight."""
        return self.model_copy(update={"in_flight": [*self.in_flight, batch]})

    def not_sent(self, index: int) -> "ImportState":
        """This state with batch `index` no longer in flight (the vendor did not take it)."""
        return self.model_copy(update={"in_flight": [b for b in self.in_flight if b.index != index]})

    def acknowledged(self, batch: InFlight, at: datetime, vendor_position: int | None = None) -> "ImportState":
        """This state once the vendor has acknowledged `batch`: the checkpoint moves over it and over
        every batch acknowledged ahead that now follows on; otherwise it waits in acknowledged_ahead."""
        ahead = sorted(
            [*self.acknowledged_ahead, batch.model_copy(update={"vendor_position": vendor_position})], key=lambda b: b.index
        )
        checkpoint, sizes, positions = self.checkpoint, list(self.batch_sizes), list(self.vendor_positions)
        while ahead and ahead[0].index == checkpoint.next_batch_index:
            done = ahead.pop(0)
            checkpoint = checkpoint.after(done.as_batch())
            del sizes[done.index :], positions[done.index :]
            sizes.append(done.count)
            positions.append(done.vendor_position)
        return self.model_copy(
            update={
                "checkpoint": checkpoint,
                "in_flight": [b for b in self.in_flight if b.index != batch.index],
                "acknowledged_ahead": ahead,
                "batch_sizes": sizes,
                "vendor_positions": positions,
                "progressed_at": at,
            }
        )
