"""Records cut into the vendor's stage requests, and the checkpoint that makes staging resumable.

The pipeline of the step that stages an import:

    records = read_records(chunks, fmt, start_offset=checkpoint.resume_offset,
                           start_line=checkpoint.resume_line, header=header)
    for item in cut_batches(validate_records(records, validate), limits, encode, start=checkpoint):
        match item:
            case RecordFailure():  write it to the failure report
            case Batch():          stage it, then save checkpoint.after(item)
            case EndOfRecords():   save checkpoint.after(item): everything is accounted for

Why nothing is sent twice or lost: a checkpoint moves only past a batch the vendor acknowledged,
and it says where reading resumes (`resume_offset`, `resume_line`) and how many records were given
up before that point. Each batch accounts for the lines up to its `last_end_offset`: its records
and the failures read among and after them, up to the record that opens the next batch. So resuming
at a checkpoint re-reads exactly what no saved checkpoint has counted, and, cut from the same file
with the same limits, gives the same batches as the run that stopped. A batch is identified by
(index, first_line); `Checkpoint.already_staged` tells one a checkpoint has counted from the next
one to send, and refuses anything else (the file or the limits changed under the import).

A step that dies between the vendor's acknowledgement and saving the checkpoint cannot tell from
the checkpoint alone whether that batch arrived: it must ask the vendor (MyPreferences' running
`TotalRecordsReceived` against `staged_records`) before staging it again.

Failures come out before the batch that accounts for them; a failure's line says which checkpoints
cover it (those whose `resume_line` is past it).
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from io import BytesIO
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobrelay.bulk_import.records import SourceRecord
from jobrelay.domain.bulk_import import BatchLimits, RecordFailure

Encode = Callable[[list[Any]], bytes]
RecordKey = Callable[[Any], str | None]


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


def validate_records(
    records: Iterable[SourceRecord], validate: Callable[[dict[str, Any]], Any]
) -> Iterator[tuple[SourceRecord, Any]]:
    """Each record with what `validate` (the vendor's) made of it, or with the RecordFailure that
    says why it will not be sent."""
    for record in records:
        if record.data is None:
            yield record, _refused(record, [record.error or "the record is empty"])
            continue
        try:
            yield record, validate(record.data)
        except ValueError as error:  # pydantic's ValidationError is one
            yield record, _refused(record, _reasons(error))


def cut_batches(
    records: Iterable[tuple[SourceRecord, Any]],
    limits: BatchLimits,
    encode: Encode,
    *,
    start: Checkpoint | None = None,
    record_key: RecordKey | None = None,
) -> Iterator[Cut]:
    """The batches of `records` (as validate_records gives them, read from `start`'s position),
    each within `limits`, with the failures in between and, last, EndOfRecords.

    Sizes are measured, not guessed: each record is encoded once on its own, and a batch's size is
    the empty batch's plus its records' plus the separators between them, so filling a batch costs
    no re-encoding. Nor does its body: the empty batch (`encode([])`) is cut where records go, and
    the body is that wrapper around the records' own encodings, each without it, joined by what
    separates the first two records encoded together. That is right only if `encode` is additive,
    as a JSON array is; each cutter checks it once, on the head of its first batch of two records
    or more (PROBE_RECORDS at most): encoded from their models, those records must give the
    joined body byte for byte. Until then their models are kept; once it holds none is, and
    memory holds the open batch's lines and its body as it is joined (a record whose encoding
    alone is then not inside the wrapper is a RuntimeError: that batch can no longer be encoded).
    If it does not hold, every batch's body is encoded from its models, kept until it closes, and
    when that body is bigger than the sum assumed, records move on to the next batch until it
    fits. For an additive `encode` both give the same batches, so resuming from a checkpoint cuts
    the batches the run that stopped would have cut."""
    cutter = _Cutter(limits, encode, start or Checkpoint(), record_key or _no_key)
    for record, outcome in records:
        yield from cutter.add(record, outcome)
    yield from cutter.finish()


# --- how the cutting goes ----------------------------------------------------------------------

# The records of the first batch, at most, on which a cutter checks that the vendor's encoding is
# additive before it lets their models go (see cut_batches).
PROBE_RECORDS = 1000


class _Mode(Enum):
    """How a cutter builds bodies."""

    PROBING = "checking the encoding on the first records, whose models are kept"
    JOINING = "joining encoded records: no model is kept"
    ENCODING = "encoding models, as the encoding is not additive: the open batch's models are kept"


@dataclass(frozen=True, slots=True)
class _Mark:
    """How far the input is accounted for: where reading would resume, and the failures so far."""

    offset: int
    line: int
    invalid: int
    excess: int

    def past(self, record: SourceRecord, *, invalid: int = 0, excess: int = 0) -> "_Mark":
        return _Mark(record.end_offset, record.next_line, self.invalid + invalid, self.excess + excess)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A record of the open batch whose model is kept (while probing, or when encoding)."""

    model: Any
    size: int  # its share of an encoded batch: its encoding alone, less the empty batch's
    before: _Mark  # the account just before it: a batch that stops short of it ends there


class _Cutter:
    def __init__(self, limits: BatchLimits, encode: Encode, start: Checkpoint, record_key: RecordKey):
        self._limits = limits
        self._encode = encode
        self._record_key = record_key
        self._empty = encode([])
        self._empty_size = len(self._empty)
        self._mode = _Mode.PROBING
        # The empty batch cut where its records go (learnt from the first record), and what goes
        # between two records (learnt from the first two records put together).
        self._prefix = self._suffix = self._separator = b""
        self._wrapper_known = False
        self._separator_size: int | None = None
        # The batch being filled: its records' lines and the sum of their sizes; while joining or
        # probing, the body so far (prefix and parts, without the suffix: a BytesIO hands its
        # buffer over as the body, where a bytearray would be copied); while probing or encoding,
        # an _Entry for each record.
        self._lines: list[int] = []
        self._open_size = 0
        self._joined = BytesIO()
        self._entries: list[_Entry] = []
        self._next_index = start.next_batch_index
        self._accepted = start.staged_records  # records put in a batch, over the whole import
        self._mark = _Mark(start.resume_offset, start.resume_line, start.invalid_records, start.excess_records)
        self._closed = self._mark  # the account at the end of the last batch yielded

    def add(self, record: SourceRecord, outcome: Any) -> Iterator[Cut]:
        if isinstance(outcome, RecordFailure):
            self._mark = self._mark.past(record, invalid=1)
            yield outcome
            return
        limit = self._limits.max_total_records
        if limit is not None and self._accepted >= limit:
            self._mark = self._mark.past(record, excess=1)
            reason = f"over the vendor's limit of {limit} records per import"
            yield _refused(record, [reason], self._record_key(outcome))
            return
        alone = self._encode([outcome])
        size = len(alone) - self._empty_size
        if self._empty_size + size > self._limits.max_bytes:
            self._mark = self._mark.past(record, invalid=1)
            yield _refused(record, [self._too_big(self._empty_size + size)], self._record_key(outcome))
            return
        part = self._part_of(alone)
        before = self._mark
        while self._lines and not self._has_room_for(outcome, size, part):
            yield self._close(end=before)
        self._append(record.line, outcome, size, part, before)
        self._accepted += 1
        self._mark = self._mark.past(record)
        # A batch that can take no more goes now, rather than wait for a record it cannot take.
        while self._lines and self._is_full():
            yield self._close(end=self._mark)

    def finish(self) -> Iterator[Cut]:
        while self._lines:
            yield self._close(end=self._mark)
        mark, closed = self._mark, self._closed
        yield EndOfRecords(mark.offset, mark.line, mark.invalid - closed.invalid, mark.excess - closed.excess)

    # --- sizes -----------------------------------------------------------------------------------

    def _has_room_for(self, model: Any, size: int, part: bytes | None) -> bool:
        if self._limits.max_records is not None and len(self._lines) >= self._limits.max_records:
            return False
        if self._separator_size is None:
            self._learn_separator(model, size, part)
        separators = len(self._lines) * self._separator_size
        return self._empty_size + self._open_size + separators + size <= self._limits.max_bytes

    def _is_full(self) -> bool:
        count_full = self._limits.max_records is not None and len(self._lines) >= self._limits.max_records
        total = self._limits.max_total_records
        return count_full or (total is not None and self._accepted >= total)

    def _learn_separator(self, model: Any, size: int, part: bytes | None) -> None:
        """From the last record of the open batch and `model` put together. Joining never gets
        here: it starts once a probe of two records or more has used the separator."""
        previous = self._entries[-1]
        pair = self._encode([previous.model, model])
        self._separator_size = len(pair) - self._empty_size - previous.size - size
        if self._mode is _Mode.PROBING:
            start, end = len(self._prefix) + previous.size, len(pair) - len(self._suffix) - size
            if self._separator_size >= 0 and pair.startswith(self._prefix) and pair.endswith(part + self._suffix):
                self._separator = pair[start:end]  # the probe checks it with the rest
            else:
                self._stop_joining()

    # --- joining encoded records -----------------------------------------------------------------

    def _part_of(self, alone: bytes) -> bytes | None:
        """The record's part of a batch body, from its encoding alone: what the empty batch's
        wrapper surrounds. None once bodies are encoded from models."""
        if self._mode is _Mode.ENCODING:
            return None
        if not self._wrapper_known:
            self._learn_wrapper(alone)
            if self._mode is _Mode.ENCODING:
                return None
        if len(alone) >= self._empty_size and alone.startswith(self._prefix) and alone.endswith(self._suffix):
            return alone[len(self._prefix) : len(alone) - len(self._suffix)]
        if self._mode is _Mode.JOINING:  # the open batch's models are gone: it cannot be encoded
            raise RuntimeError("encode_batch wrapped a record otherwise than the records it was checked on")
        self._stop_joining()
        return None

    def _learn_wrapper(self, alone: bytes) -> None:
        """Where the records go in the empty batch: after the longest head of it that the first
        record's encoding starts with, if the rest of it ends that encoding."""
        empty = self._empty
        common = next((i for i, (a, b) in enumerate(zip(empty, alone, strict=False)) if a != b), min(len(empty), len(alone)))
        self._wrapper_known = True
        if len(alone) >= len(empty) and alone.endswith(empty[common:]):
            self._prefix, self._suffix = empty[:common], empty[common:]
            self._joined.write(self._prefix)
        else:
            self._stop_joining()

    def _append(self, line: int, model: Any, size: int, part: bytes | None, before: _Mark) -> None:
        self._lines.append(line)
        self._open_size += size
        if self._mode is not _Mode.JOINING:
            self._entries.append(_Entry(model, size, before))
        if self._mode is not _Mode.ENCODING:
            if len(self._lines) > 1:
                self._joined.write(self._separator)
            self._joined.write(part)
            if self._mode is _Mode.PROBING and len(self._lines) >= max(PROBE_RECORDS, 2):
                self._probe()

    def _probe(self) -> bytes:
        """Check that the open batch (two records or more), encoded from its models, is the join
        of its records' parts: if it is, join from now on and let the models go; else encode them
        from now on. Returns the encoded batch."""
        encoded = self._encode([entry.model for entry in self._entries])
        if encoded == self._joined.getvalue() + self._suffix:
            self._mode = _Mode.JOINING
            self._entries = []
        else:
            self._stop_joining()
        return encoded

    def _stop_joining(self) -> None:
        """Encode batches from their models from now on (only ever while the models are kept)."""
        self._mode = _Mode.ENCODING
        self._joined = BytesIO()

    # --- closing a batch -------------------------------------------------------------------------

    def _close(self, end: _Mark) -> Batch:
        """Yield the open batch, or as much of it as fits once encoded; the rest stays open."""
        encoded = None
        if self._mode is _Mode.PROBING and len(self._lines) > 1:
            encoded = self._probe()  # the batch is shorter than the probe: it is the probe
        if self._mode is _Mode.ENCODING:
            body, count = self._fit(self._entries, encoded)
        else:
            body, count = self._joined_body(), len(self._lines)
        if count == len(self._lines):
            taken, self._lines = self._lines, []
        else:
            taken, self._lines = self._lines[:count], self._lines[count:]
        if self._mode is _Mode.ENCODING:
            self._entries = self._entries[count:]
            self._open_size = sum(entry.size for entry in self._entries)
        else:
            self._entries, self._open_size = [], 0
        if self._lines:
            end = self._entries[0].before
        batch = Batch(
            index=self._next_index,
            first_line=taken[0],
            last_end_offset=end.offset,
            next_line=end.line,
            lines=taken,
            body=body,
            count=count,
            invalid=end.invalid - self._closed.invalid,
            excess=end.excess - self._closed.excess,
        )
        self._next_index += 1
        self._closed = end
        return batch

    def _joined_body(self) -> bytes:
        """The open batch's body, its records' parts joined, and a fresh join for the next one.
        Sizes were exact: it fits."""
        self._joined.write(self._suffix)
        body = self._joined.getvalue()
        self._joined = BytesIO()
        self._joined.write(self._prefix)
        if len(body) > self._limits.max_bytes:  # the parts' sizes add up to the body's
            raise RuntimeError(f"a joined batch of {len(body)} bytes is over the limit of {self._limits.max_bytes}")
        return body

    def _fit(self, entries: list[_Entry], encoded: bytes | None) -> tuple[bytes, int]:
        """The body of the longest head of `entries` within max_bytes, and its length in records
        (`encoded`: all of them encoded, if that is done already)."""
        count = len(entries)
        body = self._encode([entry.model for entry in entries]) if encoded is None else encoded
        while len(body) > self._limits.max_bytes:
            if count == 1:  # it fitted alone when measured: the encoder is not deterministic
                raise RuntimeError("encode_batch gave the same record two different sizes")
            count = self._fewer(entries, count, over=len(body) - self._limits.max_bytes)
            body = self._encode([entry.model for entry in entries[:count]])
        return body, count

    def _fewer(self, entries: list[_Entry], count: int, over: int) -> int:
        """Leave out records from the end until their measured sizes make up for `over` bytes."""
        while count > 1 and over > 0:
            count -= 1
            over -= entries[count].size + (self._separator_size or 0)
        return count

    def _too_big(self, size: int) -> str:
        limit = self._limits.max_bytes
        return f"the record takes {size} bytes encoded, over the vendor's limit of {limit} bytes per request"


def _refused(record: SourceRecord, reasons: list[str], key: str | None = None) -> RecordFailure:
    """A record we will not send: the "validation" stage is ours, before anything reaches the vendor."""
    return RecordFailure(line=record.line, key=key, stage="validation", reasons=reasons)


def _reasons(error: ValueError) -> list[str]:
    """Readable reasons, each led by the field's path in the dotted form of CSV headers."""
    if not isinstance(error, ValidationError):
        return [str(error)]
    return [
        f"{'.'.join(map(str, detail['loc']))}: {detail['msg']}" if detail["loc"] else detail["msg"]
        for detail in error.errors(include_url=False)
    ]


def _no_key(_: Any) -> None:
    return None
