"""Records cut into the vendor's stage requests, and the checkpoint that makes staging resumable.

The pipeline of the step that stages an import:

    records = read_records(chunks, fmt, start_offset=checkpoint.resume_offset,
                           start_line=checkpoint.resume_line, header=header)
    for item in cut_batches(validate_records(records, validate), limits, batch_format, start=checkpoint):
        match item:
            case RecordFailure():  write it to the failure report
            case Batch():          stage it, then save checkpoint.after(item)
            case EndOfRecords():   save checkpoint.after(item): everything is accounted for

Why nothing is sent twice or lost: a checkpoint moves only past a batch the vendor acknowledged,
and it says where reading resumes (`resume_offset`, `resume_line`) and how many records were given
up before that point. Each batch accounts for the lines up to its `last_end_offset`: its records
and the failures read among and after them, up to the record that opens the next batch. So resuming
at a checkpoint re-reads exactly what no saved checkpoint has counted, and, cut from the same file
with the same limits and format, gives the same batches as the run that stopped. A batch is
identified by (index, first_line); `Checkpoint.already_staged` tells one a checkpoint has counted
from the next one to send, and refuses anything else (the file or the limits changed under the
import).

A step that dies between the vendor's acknowledgement and saving the checkpoint cannot tell from
the checkpoint alone whether that batch arrived: it must ask the vendor (MyPreferences' running
`TotalRecordsReceived` against `staged_records`) before staging it again.

Failures come out before the batch that accounts for them; a failure's line says which checkpoints
cover it (those whose `resume_line` is past it).
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydantic import ValidationError

from jobrelay.bulk_import.records import SourceRecord
from jobrelay.domain.bulk_import import (
    Batch,
    BatchFormat,
    BatchLimits,
    Checkpoint,
    Cut,
    EndOfRecords,
    RecordFailure,
)

RecordKey = Callable[[Any], str | None]


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
    batch_format: BatchFormat,
    *,
    start: Checkpoint | None = None,
    record_key: RecordKey | None = None,
) -> Iterator[Cut]:
    """The batches of `records` (as validate_records gives them, read from `start`'s position),
    each within `limits`, with the failures in between and, last, EndOfRecords.

    Each record is encoded once, on its own, and its encoding goes straight into the open batch's
    body between the format's framing: a batch's size is its framing's plus its records', exact
    before the body is built, so no model is kept and no batch is encoded twice. Memory holds the
    open batch's lines and its body as it is joined. Cut from the same file with the same limits
    and format, resuming from a checkpoint cuts the batches the run that stopped would have cut."""
    cutter = _Cutter(limits, batch_format, start or Checkpoint(), record_key or _no_key)
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


class _Cutter:
    def __init__(self, limits: BatchLimits, batch_format: BatchFormat, start: Checkpoint, record_key: RecordKey):
        self._limits = limits
        self._format = batch_format
        self._record_key = record_key
        # The batch being filled: its records' lines, the sum of their encodings' sizes, and its
        # body so far, without the suffix (a BytesIO hands its buffer over as the body, where a
        # bytearray would be copied).
        self._lines: list[int] = []
        self._records_size = 0
        self._joined = self._fresh_body()
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
        encoded = self._format.encode_record(outcome)
        alone = self._format.framing_size(1) + len(encoded)
        if alone > self._limits.max_bytes:
            self._mark = self._mark.past(record, invalid=1)
            yield _refused(record, [self._too_big(alone)], self._record_key(outcome))
            return
        if self._lines and not self._has_room_for(encoded):
            yield self._close()  # it stops short of this record: a resumed step reads from it
        self._append(record.line, encoded)
        self._accepted += 1
        self._mark = self._mark.past(record)
        # A batch that can take no more goes now, rather than wait for a record it cannot take.
        if self._is_full():
            yield self._close()

    def finish(self) -> Iterator[Cut]:
        if self._lines:
            yield self._close()
        mark, closed = self._mark, self._closed
        yield EndOfRecords(mark.offset, mark.line, mark.invalid - closed.invalid, mark.excess - closed.excess)

    def _has_room_for(self, encoded: bytes) -> bool:
        count = len(self._lines) + 1
        if self._limits.max_records is not None and count > self._limits.max_records:
            return False
        return self._format.framing_size(count) + self._records_size + len(encoded) <= self._limits.max_bytes

    def _is_full(self) -> bool:
        count_full = self._limits.max_records is not None and len(self._lines) >= self._limits.max_records
        total = self._limits.max_total_records
        return count_full or (total is not None and self._accepted >= total)

    def _append(self, line: int, encoded: bytes) -> None:
        if self._lines:
            self._joined.write(self._format.separator)
        self._joined.write(encoded)
        self._lines.append(line)
        self._records_size += len(encoded)

    def _close(self) -> Batch:
        """The open batch, which accounts for the input read so far."""
        end = self._mark
        self._joined.write(self._format.suffix)
        body, lines = self._joined.getvalue(), self._lines
        self._joined, self._lines, self._records_size = self._fresh_body(), [], 0
        batch = Batch(
            index=self._next_index,
            first_line=lines[0],
            last_end_offset=end.offset,
            next_line=end.line,
            lines=lines,
            body=body,
            count=len(lines),
            invalid=end.invalid - self._closed.invalid,
            excess=end.excess - self._closed.excess,
        )
        self._next_index += 1
        self._closed = end
        return batch

    def _fresh_body(self) -> BytesIO:
        body = BytesIO()
        body.write(self._format.prefix)
        return body

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
