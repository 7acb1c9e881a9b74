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
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobrelay.imports.records import SourceRecord
from jobrelay.ports import BatchLimits, RecordFailure

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
        return moved.model_copy(
            update={"next_batch_index": done.index + 1, "staged_records": self.staged_records + done.count}
        )

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
    no re-encoding; the final body is encoded once and checked, and if the encoding is not as
    additive as that sum assumes, records move on to the next batch until it fits. Memory holds
    one batch: its validated records and, once encoded, its body."""
    cutter = _Cutter(limits, encode, start or Checkpoint(), record_key or _no_key)
    for record, outcome in records:
        yield from cutter.add(record, outcome)
    yield from cutter.finish()


# --- how the cutting goes ----------------------------------------------------------------------


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
    record: SourceRecord
    model: Any
    size: int  # its share of an encoded batch: its encoding alone, less the empty batch's
    before: _Mark  # the account just before it: a batch that stops short of it ends there


class _Cutter:
    def __init__(self, limits: BatchLimits, encode: Encode, start: Checkpoint, record_key: RecordKey):
        self._limits = limits
        self._encode = encode
        self._record_key = record_key
        self._empty_size = len(encode([]))
        self._separator_size: int | None = None  # learnt from the first two records put together
        self._open: list[_Entry] = []  # the batch being filled
        self._open_size = 0  # the sum of its entries' sizes
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
        size = len(self._encode([outcome])) - self._empty_size
        if self._empty_size + size > self._limits.max_bytes:
            self._mark = self._mark.past(record, invalid=1)
            yield _refused(record, [self._too_big(self._empty_size + size)], self._record_key(outcome))
            return
        entry = _Entry(record, outcome, size, self._mark)
        while self._open and not self._has_room_for(entry):
            yield self._close(end=entry.before)
        self._open.append(entry)
        self._open_size += size
        self._accepted += 1
        self._mark = self._mark.past(record)
        # A batch that can take no more goes now, rather than wait for a record it cannot take.
        while self._open and self._is_full():
            yield self._close(end=self._mark)

    def finish(self) -> Iterator[Cut]:
        while self._open:
            yield self._close(end=self._mark)
        mark, closed = self._mark, self._closed
        yield EndOfRecords(mark.offset, mark.line, mark.invalid - closed.invalid, mark.excess - closed.excess)

    def _has_room_for(self, entry: _Entry) -> bool:
        if self._limits.max_records is not None and len(self._open) >= self._limits.max_records:
            return False
        separators = len(self._open) * self._separator(self._open[-1], entry)
        return self._empty_size + self._open_size + separators + entry.size <= self._limits.max_bytes

    def _is_full(self) -> bool:
        count_full = self._limits.max_records is not None and len(self._open) >= self._limits.max_records
        total = self._limits.max_total_records
        return count_full or (total is not None and self._accepted >= total)

    def _separator(self, previous: _Entry, entry: _Entry) -> int:
        if self._separator_size is None:
            pair = len(self._encode([previous.model, entry.model]))
            self._separator_size = pair - self._empty_size - previous.size - entry.size
        return self._separator_size

    def _close(self, end: _Mark) -> Batch:
        """Yield the open batch, or as much of it as fits once encoded; the rest stays open."""
        body, count = self._fit(self._open)
        taken, self._open = self._open[:count], self._open[count:]
        self._open_size = sum(entry.size for entry in self._open)
        if self._open:
            end = self._open[0].before
        batch = Batch(
            index=self._next_index,
            first_line=taken[0].record.line,
            last_end_offset=end.offset,
            next_line=end.line,
            lines=[entry.record.line for entry in taken],
            body=body,
            count=count,
            invalid=end.invalid - self._closed.invalid,
            excess=end.excess - self._closed.excess,
        )
        self._next_index += 1
        self._closed = end
        return batch

    def _fit(self, entries: list[_Entry]) -> tuple[bytes, int]:
        """The body of the longest head of `entries` within max_bytes, and its length in records."""
        count = len(entries)
        body = self._encode([entry.model for entry in entries])
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
