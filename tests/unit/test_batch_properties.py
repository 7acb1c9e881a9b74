"""Properties of the batch cutter and its checkpoint, over random files, formats and limits: every
record is staged once or reported, batches are as full as their limits allow and are their
records' declared encoding, and a step resumed from any saved checkpoint stages exactly what the
run that stopped had left."""

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobrelay.bulk_import.batches import cut_batches, validate_records
from jobrelay.bulk_import.records import read_records
from jobrelay.domain.bulk_import import (
    BatchFormat,
    BatchLimits,
    Checkpoint,
    CheckpointMismatch,
    Cut,
    RecordFailure,
)
from tests.unit.test_import_batches import batches, failures, fold

FAST = settings(max_examples=150, deadline=None)


def encode_one(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def validate(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("refuse"):
        raise ValueError("refused by the vendor's model")
    return data


# A line of the file: mostly a record (its padding in characters of one to three bytes in UTF-8),
# else one the vendor's model refuses, a line that is no record, or a blank line.
PAD = st.text(st.sampled_from('ab"é李\n'), max_size=60)
RECORD_LINE = PAD.map(lambda pad: ("record", pad))
LINE = st.one_of(
    RECORD_LINE,
    RECORD_LINE,
    RECORD_LINE,
    st.just(("refused", None)),
    st.sampled_from([("unreadable", b"oops\n"), ("unreadable", b"[1]\n"), ("blank", b"\n")]),
)
# Files of any length up to 40 lines alike (plain st.lists favours very short ones).
LINES = st.integers(0, 40).flatmap(lambda length: st.lists(LINE, min_size=length, max_size=length))
FORMATS = st.one_of(
    st.just(BatchFormat.json_array(encode_one)),
    st.just(BatchFormat.json_array(encode_one, key="Profiles")),
    st.builds(
        BatchFormat,
        st.just(encode_one),
        prefix=st.binary(max_size=6),
        separator=st.binary(max_size=3),
        suffix=st.binary(max_size=6),
    ),
)
LIMITS = st.builds(
    BatchLimits,
    max_bytes=st.integers(1, 400),
    max_records=st.none() | st.integers(1, 6),
    max_total_records=st.none() | st.integers(0, 30),
)


def file_of(lines: list[tuple[str, Any]]) -> tuple[bytes, dict[int, dict[str, Any]]]:
    """The JSON Lines file, and its records by line number."""
    data, records = b"", {}
    for number, (kind, value) in enumerate(lines, start=1):
        if kind == "record":
            records[number] = {"Email": f"{number}@x", "Pad": value}
            data += json.dumps(records[number]).encode() + b"\n"
        elif kind == "refused":
            data += json.dumps({"Email": f"{number}@x", "refuse": True}).encode() + b"\n"
        else:
            data += value
    return data, records


def cut(data: bytes, limits: BatchLimits, batch_format: BatchFormat, start: Checkpoint | None = None) -> list[Cut]:
    start = start or Checkpoint()
    chunks = [data[start.resume_offset :]]
    records = read_records(chunks, "jsonl", start_offset=start.resume_offset, start_line=start.resume_line)
    return list(
        cut_batches(validate_records(records, validate), limits, batch_format, start=start, record_key=lambda r: r["Email"])
    )


def limits_for(data: st.DataObject, records: dict[int, dict[str, Any]], batch_format: BatchFormat) -> BatchLimits:
    """Random limits; half the time max_bytes is, to a byte either way, the size of a run of
    records (one of them: a record that just fits, or just does not), where an error would show."""
    limits = data.draw(LIMITS, label="limits")
    if records and data.draw(st.booleans(), label="max_bytes at a run of records"):
        lines = list(records)
        first = data.draw(st.just(0) | st.integers(0, len(lines) - 1), label="the run's first record")
        last = data.draw(st.integers(first + 1, min(len(lines), first + 6)), label="the record after its last")
        exact = len(batch_format.encode([records[n] for n in lines[first:last]]))
        off_by = data.draw(st.sampled_from([-1, 0, 1]), label="off by")
        limits = dataclasses.replace(limits, max_bytes=max(1, exact + off_by))
    return limits


def expected_cut(
    lines: list[tuple[str, Any]], records: dict[int, dict[str, Any]], limits: BatchLimits, batch_format: BatchFormat
) -> tuple[list[tuple[list[int], int]], list[int], list[int]]:
    """Each batch's lines and the line its account stops before, and the records too big to send
    and over the total limit, worked out the slow way: each candidate batch encoded whole."""
    held = [n for n, (kind, _) in enumerate(lines, start=1) if kind != "blank"]

    def read_up_to(line: int) -> int:
        """Where reading stands once the lines before `line` are read: blank lines are not read."""
        return max((n for n in held if n < line), default=0) + 1

    cut_up: list[tuple[list[int], int]] = []
    too_big: list[int] = []
    excess: list[int] = []
    open_batch: list[int] = []
    accepted = 0
    for line, record in records.items():
        if limits.max_total_records is not None and accepted >= limits.max_total_records:
            excess.append(line)
            continue
        if len(batch_format.encode([record])) > limits.max_bytes:
            too_big.append(line)
            continue
        grown = [records[n] for n in [*open_batch, line]]
        if open_batch and (len(grown) > (limits.max_records or len(grown)) or len(batch_format.encode(grown)) > limits.max_bytes):
            cut_up.append((open_batch, read_up_to(line)))  # it stops short of the record that opens the next one
            open_batch = []
        open_batch.append(line)
        accepted += 1
        if len(open_batch) == limits.max_records or accepted == limits.max_total_records:
            cut_up.append((open_batch, line + 1))  # full: it goes at once
            open_batch = []
    if open_batch:  # the last one accounts for every line that held anything
        cut_up.append((open_batch, held[-1] + 1))
    return cut_up, too_big, excess


# --- the format ----------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@FAST
@given(records=st.lists(JSON, max_size=6), key=st.none() | st.text(max_size=8), ascii_only=st.booleans())
def test_a_json_array_format_encodes_what_json_dumps_gives_for_the_whole(records, key, ascii_only) -> None:
    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=ascii_only).encode()

    batch_format = BatchFormat.json_array(dumps, key=key)

    body = batch_format.encode(records)

    whole = records if key is None else {key: records}
    assert json.loads(body) == whole
    if ascii_only or key is None or all(" " <= c <= "~" for c in key):
        assert body == dumps(whole)


@FAST
@given(batch_format=FORMATS, pads=st.lists(PAD, max_size=8))
def test_a_body_is_its_framing_and_its_records_encoded_alone(batch_format, pads) -> None:
    records = [{"Pad": pad} for pad in pads]

    body = batch_format.encode(records)

    assert len(body) == batch_format.framing_size(len(records)) + sum(len(encode_one(r)) for r in records)
    assert body.startswith(batch_format.prefix) and body.endswith(batch_format.suffix)


# --- cutting -------------------------------------------------------------------------------------


@FAST
@given(lines=LINES, batch_format=FORMATS, data=st.data())
def test_every_record_is_staged_once_in_order_or_reported(lines, batch_format, data) -> None:
    file, records = file_of(lines)
    limits = limits_for(data, records, batch_format)

    items = cut(file, limits, batch_format)

    cut_up = batches(items)
    expected, too_big, excess = expected_cut(lines, records, limits, batch_format)
    assert [(batch.lines, batch.next_line) for batch in cut_up] == expected
    assert [batch.index for batch in cut_up] == list(range(len(cut_up)))
    for batch in cut_up:
        assert batch.body == batch_format.encode([records[line] for line in batch.lines])
        assert batch.count == len(batch.lines) <= (limits.max_records or batch.count)
        assert len(batch.body) <= limits.max_bytes
    unsendable = [n for n, (kind, _) in enumerate(lines, start=1) if kind in ("refused", "unreadable")]
    assert [failure.line for failure in failures(items)] == sorted(unsendable + too_big + excess)
    assert all(failure.stage == "validation" and failure.reasons for failure in failures(items))
    final = fold(items)
    assert final.finished and file[final.resume_offset :].strip() == b""
    assert (final.staged_records, final.invalid_records, final.excess_records) == (
        sum(len(batch_lines) for batch_lines, _ in expected),
        len(unsendable) + len(too_big),
        len(excess),
    )


@FAST
@given(lines=LINES, batch_format=FORMATS, data=st.data())
def test_failures_come_before_the_batch_that_accounts_for_them(lines, batch_format, data) -> None:
    file, records = file_of(lines)
    checkpoint = Checkpoint()
    reported: list[int] = []

    for item in cut(file, limits_for(data, records, batch_format), batch_format):
        if isinstance(item, RecordFailure):
            assert item.line >= checkpoint.resume_line  # no saved checkpoint has counted it
            reported.append(item.line)
        else:
            checkpoint = checkpoint.after(item)
            # the checkpoint counts exactly the failures reported so far
            assert checkpoint.invalid_records + checkpoint.excess_records == len(reported)
            assert all(line < checkpoint.resume_line for line in reported)

    assert checkpoint.finished


# --- the checkpoint ------------------------------------------------------------------------------


@FAST
@given(lines=LINES, batch_format=FORMATS, data=st.data())
def test_resuming_from_any_saved_checkpoint_cuts_what_the_run_had_left(lines, batch_format, data) -> None:
    file, records = file_of(lines)
    limits = limits_for(data, records, batch_format)
    items = cut(file, limits, batch_format)
    cut_up = batches(items)
    staged = data.draw(st.integers(0, len(cut_up)), label="batches staged before the step stopped")
    checkpoint = fold(cut_up[:staged], Checkpoint(source_etag='"v1"'))

    rest = cut(file, limits, batch_format, start=checkpoint)

    assert batches(rest) == cut_up[staged:]
    assert failures(rest) == [failure for failure in failures(items) if failure.line >= checkpoint.resume_line]
    assert fold(rest, checkpoint) == fold(items).model_copy(update={"source_etag": '"v1"'})


@FAST
@given(lines=LINES, batch_format=FORMATS, data=st.data())
def test_a_checkpoint_knows_the_batches_it_counted_and_refuses_a_mismatch(lines, batch_format, data) -> None:
    file, records = file_of(lines)
    cut_up = batches(cut(file, limits_for(data, records, batch_format), batch_format))
    staged = data.draw(st.integers(0, len(cut_up)), label="batches the checkpoint counts")
    checkpoint = fold(cut_up[:staged])

    # a step retried from an older checkpoint cuts the counted batches again: it skips them
    assert [checkpoint.already_staged(batch) for batch in cut_up[: staged + 1]] == [True] * staged + [False] * (
        staged < len(cut_up)
    )
    for batch in cut_up[:staged]:
        with pytest.raises(CheckpointMismatch, match="already counted"):
            checkpoint.after(batch)
    # a batch past the next one, or one that does not line up with the checkpoint: the file or
    # the limits changed under the import
    strangers = cut_up[staged + 1 :]
    if staged < len(cut_up):
        strangers.append(dataclasses.replace(cut_up[staged], index=staged + 1))
    if staged > 0:
        last = cut_up[staged - 1]
        strangers.append(dataclasses.replace(last, last_end_offset=checkpoint.resume_offset + 1))
        strangers.append(dataclasses.replace(last, index=staged, first_line=checkpoint.resume_line - 1))
    for stranger in strangers:
        with pytest.raises(CheckpointMismatch):
            checkpoint.already_staged(stranger)
