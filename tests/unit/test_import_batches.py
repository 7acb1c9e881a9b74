"""Cutting records into the vendor's stage requests, and the checkpoint that makes staging resumable:
exact sizes, the limits, failures, and above all that resuming from any checkpoint stages every
batch once."""

import json
import random
import weakref
from typing import Any

import pytest
from pydantic import BaseModel

from jobrelay.bulk_import.batches import cut_batches, validate_records
from jobrelay.bulk_import.records import SourceRecord, read_records
from jobrelay.domain.bulk_import import (
    Batch,
    BatchFormat,
    BatchLimits,
    Checkpoint,
    CheckpointMismatch,
    Cut,
    EndOfRecords,
    RecordFailure,
)


def encode(records: list[dict[str, Any]]) -> bytes:
    """A stage request body shaped like MyPreferences' (a wrapper object around a list), encoded whole."""
    return json.dumps({"Profiles": records}, separators=(",", ":")).encode()


def encode_one(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


FORMAT = BatchFormat.json_array(encode_one, key="Profiles")  # declares what `encode` gives
EMPTY = len(encode([]))  # 15
SEPARATOR = 1  # the comma


SIZE = 30


def record(number: int, size: int = SIZE) -> dict[str, Any]:
    """A record whose encoding takes exactly `size` bytes."""
    bare = len(json.dumps({"Email": f"{number}@x", "Pad": ""}, separators=(",", ":")))
    assert size >= bare, f"a record takes at least {bare} bytes"
    return {"Email": f"{number}@x", "Pad": "p" * (size - bare)}


def jsonl(*lines: dict[str, Any] | bytes) -> bytes:
    return b"".join(line if isinstance(line, bytes) else json.dumps(line).encode() + b"\n" for line in lines)


def validate(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("refuse"):
        raise ValueError("refused by the vendor's model")
    return data


def cut(data: bytes, limits: BatchLimits, start: Checkpoint | None = None, batch_format: BatchFormat = FORMAT) -> list[Cut]:
    """What the Prepare step sees: the file read from the checkpoint, validated and cut."""
    start = start or Checkpoint()
    records = read_records([data[start.resume_offset :]], "jsonl", start_offset=start.resume_offset, start_line=start.resume_line)
    items = cut_batches(validate_records(records, validate), limits, batch_format, start=start, record_key=lambda r: r["Email"])
    return list(items)


def batches(items: list[Cut]) -> list[Batch]:
    return [item for item in items if isinstance(item, Batch)]


def failures(items: list[Cut]) -> list[RecordFailure]:
    return [item for item in items if isinstance(item, RecordFailure)]


def fold(items: list[Cut], start: Checkpoint | None = None) -> Checkpoint:
    checkpoint = start or Checkpoint()
    for item in items:
        if isinstance(item, Batch | EndOfRecords):
            checkpoint = checkpoint.after(item)
    return checkpoint


def cut_resuming_everywhere(data: bytes, limits: BatchLimits, batch_format: BatchFormat = FORMAT) -> list[Cut]:
    """Cut the file, and check that a step resumed from the checkpoint after any batch stages the
    same batches as the run that went on, and reports the failures no checkpoint has counted."""
    items = cut(data, limits, batch_format=batch_format)
    everything = fold(items)
    checkpoint = Checkpoint()
    for position, item in enumerate(items):
        if isinstance(item, Batch):
            checkpoint = checkpoint.after(item)
            rest = cut(data, limits, start=checkpoint, batch_format=batch_format)
            assert batches(rest) == batches(items[position + 1 :])
            assert failures(rest) == [f for f in failures(items) if f.line >= checkpoint.resume_line]
            assert fold(rest, checkpoint) == everything
    return items


# --- sizes and limits --------------------------------------------------------------------------


def test_a_batch_fills_up_to_max_bytes_exactly() -> None:
    data = jsonl(*(record(n) for n in range(1, 8)))
    three = EMPTY + 3 * SIZE + 2 * SEPARATOR  # three records, to the byte

    cut_three = batches(cut(data, BatchLimits(max_bytes=three)))
    cut_two = batches(cut(data, BatchLimits(max_bytes=three - 1)))

    assert [batch.lines for batch in cut_three] == [[1, 2, 3], [4, 5, 6], [7]]
    assert [len(batch.body) for batch in cut_three] == [three, three, EMPTY + SIZE]
    assert cut_three[0].body == encode([record(1), record(2), record(3)])
    assert [batch.lines for batch in cut_two] == [[1, 2], [3, 4], [5, 6], [7]]


def test_a_batch_holds_at_most_max_records() -> None:
    data = jsonl(*(record(n) for n in range(1, 11)))

    cut_by_count = batches(cut(data, BatchLimits(max_bytes=10_000, max_records=4)))

    assert [(batch.index, batch.count, batch.first_line) for batch in cut_by_count] == [(0, 4, 1), (1, 4, 5), (2, 2, 9)]
    assert all(json.loads(batch.body)["Profiles"] == [record(n) for n in batch.lines] for batch in cut_by_count)


def test_a_record_too_big_for_any_request_is_a_failure_of_its_own() -> None:
    data = jsonl(record(1), record(2, size=200), record(3))

    items = cut(data, BatchLimits(max_bytes=100))

    assert failures(items) == [
        RecordFailure(
            line=2,
            key="2@x",
            stage="validation",
            reasons=["the record takes 215 bytes encoded, over the vendor's limit of 100 bytes per request"],
        )
    ]
    assert [batch.lines for batch in batches(items)] == [[1, 3]]
    assert fold(items).invalid_records == 1


def test_records_past_the_total_limit_are_reported_not_dropped() -> None:
    data = jsonl(*(record(n) for n in range(1, 9)))

    items = cut(data, BatchLimits(max_bytes=10_000, max_total_records=5))

    # the last batch goes as soon as the limit is reached; what follows is reported, line by line
    assert [type(item).__name__ for item in items] == ["Batch"] + ["RecordFailure"] * 3 + ["EndOfRecords"]
    assert [(f.line, f.key, f.reasons) for f in failures(items)] == [
        (n, f"{n}@x", ["over the vendor's limit of 5 records per import"]) for n in (6, 7, 8)
    ]
    final = fold(items)
    assert (final.staged_records, final.excess_records, final.invalid_records) == (5, 3, 0)


def test_the_total_limit_counts_what_earlier_runs_staged() -> None:
    data = jsonl(*(record(n) for n in range(1, 5)))

    items = cut(data, BatchLimits(max_bytes=10_000, max_total_records=10), start=Checkpoint(staged_records=8))

    assert batches(items)[0].lines == [1, 2]
    assert [f.line for f in failures(items)] == [3, 4]


def test_any_declared_framing_is_cut_to_the_byte() -> None:
    lines = BatchFormat(encode_one, prefix=b"", separator=b"\n", suffix=b"\n")  # JSON Lines
    data = jsonl(*(record(n) for n in range(1, 21)), b"oops\n", record(22))
    limits = BatchLimits(max_bytes=4 * (SIZE + 1))

    items = cut_resuming_everywhere(data, limits, batch_format=lines)

    cut_up = batches(items)
    assert [batch.count for batch in cut_up] == [4, 4, 4, 4, 4, 1]
    assert [len(batch.body) for batch in cut_up] == [limits.max_bytes] * 5 + [SIZE + 1]
    assert all(batch.body == b"".join(encode_one(record(n)) + b"\n" for n in batch.lines) for batch in cut_up)
    assert [line for batch in cut_up for line in batch.lines] == [*range(1, 21), 22]
    final = fold(items)
    assert (final.next_batch_index, final.staged_records, final.invalid_records) == (len(cut_up), 21, 1)


def test_the_json_array_format_is_json_dumps_of_the_records() -> None:
    records = [record(1), {"Email": "Zoë 李\u2028", "N": [1.5, None, True]}]
    bare = BatchFormat.json_array(encode_one)

    assert FORMAT.encode(records) == encode(records) and FORMAT.encode([]) == encode([]) == b'{"Profiles":[]}'
    assert bare.encode(records) == json.dumps(records, separators=(",", ":")).encode()
    assert [FORMAT.framing_size(n) for n in (0, 1, 2, 5)] == [EMPTY, EMPTY, EMPTY + 1, EMPTY + 4]
    assert [bare.framing_size(n) for n in (0, 1, 3)] == [2, 2, 4]


# --- failures and their accounting -------------------------------------------------------------


class Email(BaseModel):
    EmailAddress: str
    IsDefault: bool = False


class Profile(BaseModel):
    ProfileId: str
    Emails: list[Email]


def test_validation_failures_say_which_field_in_the_dotted_form_of_csv_headers() -> None:
    records = [
        SourceRecord(2, 10, 3, data={"ProfileId": "p1", "Emails": [{"EmailAddress": "a@x"}]}),
        SourceRecord(3, 20, 4, data={"Emails": [{"IsDefault": "maybe"}]}),
        SourceRecord(4, 30, 5, error="row has 2 fields, the header has 3"),
    ]

    outcomes = [outcome for _, outcome in validate_records(records, Profile.model_validate)]

    assert outcomes[0] == Profile(ProfileId="p1", Emails=[Email(EmailAddress="a@x")])
    assert outcomes[1:] == [
        RecordFailure(
            line=3,
            key=None,
            stage="validation",
            reasons=[
                "ProfileId: Field required",
                "Emails.0.EmailAddress: Field required",
                "Emails.0.IsDefault: Input should be a valid boolean, unable to interpret input",
            ],
        ),
        RecordFailure(line=4, key=None, stage="validation", reasons=["row has 2 fields, the header has 3"]),
    ]


def test_each_batch_accounts_for_the_failures_up_to_where_the_next_one_starts() -> None:
    data = jsonl(record(1), b"not json\n", record(2), {"Email": "3@x", "refuse": True}, record(4), b"\n", b"[]\n")
    two = EMPTY + 2 * SIZE + SEPARATOR

    items = cut(data, BatchLimits(max_bytes=two))

    assert [(type(item).__name__, getattr(item, "line", None)) for item in items] == [
        ("RecordFailure", 2),
        ("RecordFailure", 4),
        ("Batch", None),
        ("RecordFailure", 7),
        ("Batch", None),
        ("EndOfRecords", None),
    ]
    first, last, end = items[2], items[4], items[5]
    # the first batch covers line 4's failure too: reading resumes at line 5, where record 4 is
    assert (first.lines, first.next_line, first.invalid) == ([1, 3], 5, 2)
    # the last batch was still open when line 7 failed: it covers it, and leaves the end nothing
    assert (last.lines, last.next_line, last.invalid) == ([5], 8, 1)
    assert (end.end_offset, end.next_line, end.invalid) == (len(data), 8, 0)
    assert data[: first.last_end_offset].count(b"\n") == 4


def test_a_file_without_valid_records_still_ends_with_its_accounting() -> None:
    items = cut(jsonl(b"x\n", b"y\n"), BatchLimits(max_bytes=100))

    assert [f.line for f in failures(items)] == [1, 2]
    assert fold(items) == Checkpoint(resume_offset=4, resume_line=3, invalid_records=2, finished=True)


# --- the checkpoint ----------------------------------------------------------------------------


def test_checkpoint_arithmetic() -> None:
    batch = Batch(
        index=0, first_line=2, last_end_offset=500, next_line=9, lines=[2, 3, 5], body=b"{}", count=3, invalid=1, excess=0
    )
    end = EndOfRecords(end_offset=900, next_line=14, invalid=2, excess=1)

    staged = Checkpoint(source_etag='"abc"').after(batch)
    finished = staged.after(end)

    assert staged == Checkpoint(
        next_batch_index=1, resume_offset=500, resume_line=9, staged_records=3, invalid_records=1, source_etag='"abc"'
    )
    assert finished == staged.model_copy(
        update={"resume_offset": 900, "resume_line": 14, "invalid_records": 3, "excess_records": 1, "finished": True}
    )
    assert Checkpoint.model_validate_json(finished.model_dump_json()) == finished


def test_a_checkpoint_tells_a_batch_it_has_counted_from_the_next_and_refuses_the_rest() -> None:
    def batch(index: int, first_line: int, end: int) -> Batch:
        return Batch(
            index=index,
            first_line=first_line,
            last_end_offset=end,
            next_line=first_line + 3,
            lines=[first_line],
            body=b"",
            count=1,
        )

    checkpoint = Checkpoint(next_batch_index=2, resume_offset=300, resume_line=7)

    assert checkpoint.already_staged(batch(1, 4, 300)) is True
    assert checkpoint.already_staged(batch(2, 7, 400)) is False
    for stranger in (batch(3, 10, 500), batch(2, 5, 400), batch(1, 4, 350)):
        with pytest.raises(CheckpointMismatch):
            checkpoint.already_staged(stranger)
    with pytest.raises(CheckpointMismatch, match="already counted"):
        checkpoint.after(batch(1, 4, 300))
    with pytest.raises(CheckpointMismatch):
        checkpoint.after(EndOfRecords(end_offset=299, next_line=6))


# --- nothing twice, nothing lost ---------------------------------------------------------------


def random_import(rng: random.Random) -> tuple[bytes, BatchLimits]:
    lines: list[dict[str, Any] | bytes] = []
    for number in range(1, rng.randint(2, 80)):
        roll = rng.random()
        if roll < 0.1:
            lines.append(rng.choice([b"\n", b"oops\n", b"[1]\n"]))
        elif roll < 0.15:
            lines.append({"Email": f"{number}@x", "refuse": True})
        else:
            lines.append(record(number, size=rng.randint(SIZE, 130)))
    limits = BatchLimits(
        max_bytes=rng.randint(60, 400),
        max_records=rng.choice([None, 1, 2, 5]),
        max_total_records=rng.choice([None, None, rng.randint(1, 60)]),
    )
    return jsonl(*lines), limits


def test_resuming_from_any_checkpoint_stages_every_batch_once() -> None:
    rng = random.Random(7)
    for _ in range(150):
        data, limits = random_import(rng)
        items = cut_resuming_everywhere(data, limits)
        everything = fold(items)
        # the end of the last line that held something: only blank lines may follow
        assert everything.finished and data[everything.resume_offset :].strip() == b""
        staged = [line for batch in batches(items) for line in batch.lines]
        given_up = [failure.line for failure in failures(items)]
        assert everything.staged_records == len(staged)
        assert everything.invalid_records + everything.excess_records == len(given_up)
        assert not set(staged) & set(given_up)
        assert all(len(batch.body) <= limits.max_bytes for batch in batches(items))
        assert all(batch.count <= (limits.max_records or batch.count) for batch in batches(items))


def test_a_batch_holds_all_it_can_under_its_limits() -> None:
    """The sizes are exact: every batch but the last would overflow with the record that opens the
    next one."""
    rng = random.Random(11)
    for _ in range(100):
        data, limits = random_import(rng)
        by_line = {number: line for number, line in enumerate(data.splitlines(), start=1) if line.startswith(b"{")}
        cut_up = batches(cut(data, limits))
        for batch, following in zip(cut_up, cut_up[1:], strict=False):
            grown = encode([json.loads(by_line[line]) for line in [*batch.lines, following.first_line]])
            assert len(grown) > limits.max_bytes or batch.count == limits.max_records


# --- bodies joined from records encoded once ---------------------------------------------------


def bodies_match_their_records(data: bytes, items: list[Cut]) -> bool:
    by_line = {number: json.loads(line) for number, line in enumerate(data.splitlines(), start=1) if line.startswith(b"{")}
    return all(batch.body == encode([by_line[line] for line in batch.lines]) for batch in batches(items))


def test_each_record_is_encoded_once_and_no_batch_whole() -> None:
    encoded: list[str] = []

    def counted(record: dict[str, Any]) -> bytes:
        encoded.append(record["Email"])
        return encode_one(record)

    data = jsonl(*(record(n) for n in range(1, 41)))

    items = cut(
        data,
        BatchLimits(max_bytes=EMPTY + 12 * SIZE + 11 * SEPARATOR),
        batch_format=BatchFormat.json_array(counted, key="Profiles"),
    )

    assert [batch.count for batch in batches(items)] == [12, 12, 12, 4]
    assert bodies_match_their_records(data, items)
    assert encoded == [f"{n}@x" for n in range(1, 41)]


def test_the_cutter_keeps_no_model() -> None:
    class Model(dict):  # a dict that weak references can follow (freed as soon as unreferenced)
        pass

    alive: list[weakref.ref] = []
    held: list[int] = []  # how many of the models given so far are still alive, as each is given

    def models():
        for number in range(1, 101):
            held.append(sum(ref() is not None for ref in alive))
            model = Model(record(number))
            alive.append(weakref.ref(model))
            yield SourceRecord(number, number * 100, number + 1, data={}), model

    items = list(cut_batches(models(), BatchLimits(max_bytes=10_000), FORMAT))

    assert [batch.count for batch in batches(items)] == [100]
    assert batches(items)[0].body == encode([record(n) for n in range(1, 101)])
    # only the last one given (the loop's variable)
    assert held == [0] + [1] * 99


@pytest.mark.parametrize("seed", [2, 3, 1000])
def test_joined_bodies_are_what_the_records_encoded_together_give_and_resume_alike(seed) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        data, limits = random_import(rng)
        items = cut_resuming_everywhere(data, limits)
        assert bodies_match_their_records(data, items)
        assert all(len(batch.body) <= limits.max_bytes for batch in batches(items))
