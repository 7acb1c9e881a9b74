"""Bulk-import staging on fakes: batches by size, failures by line, resumption without duplicates."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, field_validator

from jobrelay.domain.errors import InvalidSource, VendorRejected, VendorTransientError
from jobrelay.domain.job import Job, Progress
from jobrelay.domain.status import JobStatus
from jobrelay.ports import BatchLimits, PollOutcome, StagedBatch, VendorState
from jobrelay.services.imports import SETTLE_AFTER, ImportState, ImportSteps
from tests.fakes import InMemoryJobStore, InMemoryResultStore, InMemoryScratch
from tests.unit.conftest import Clock


class Contact(BaseModel):
    email: str

    @field_validator("email")
    @classmethod
    def _plausible(cls, value: str) -> str:
        if "@" not in value or "." not in value.rsplit("@", 1)[-1]:
            raise ValueError("not an email address")
        return value


class StageCrash(Exception):
    pass


@dataclass
class FakeVendor:
    """Counts what it receives like MyPreferences' TotalRecordsReceived; `crash_on` makes stage
    fail after (or before) the vendor has taken the batch."""

    max_bytes: int = 120
    received: list[str] = field(default_factory=list)
    stage_calls: int = 0
    executed: bool = False
    crash_on: int | None = None
    crash_after_receiving: bool = True
    raise_instead: Exception | None = None  # what the crashing stage call raises
    deliver_late: bool = False  # the crashed request is processed later (it timed out on our side)
    late: list[str] = field(default_factory=list)
    exceptions: list[tuple[int, list[str], str | None]] = field(default_factory=list)

    def limits_for(self, job):
        return BatchLimits(max_bytes=self.max_bytes)

    def validate(self, job, record):
        return Contact.model_validate(record)

    def record_key(self, record):
        return record.email

    def encode_batch(self, job, records):
        return json.dumps({"contacts": [r.model_dump() for r in records]}, separators=(",", ":")).encode()

    def open(self, job):
        return {"access_token": 7, "expires_at": (job.created_at + timedelta(hours=6)).isoformat()}

    def stage(self, job, body, records):
        self.stage_calls += 1
        emails = [c["email"] for c in json.loads(body)["contacts"]]
        crash = self.crash_on == self.stage_calls
        if crash and not self.crash_after_receiving:
            if self.deliver_late:
                self.late.extend(emails)
            raise self.raise_instead or StageCrash("connection reset before the vendor read it")
        self.received.extend(emails)
        if crash:
            raise StageCrash("the step died after the vendor acknowledged")
        return StagedBatch(counts={"received": len(self.received)})

    def execute(self, job):
        self.executed = True

    def poll(self, job):
        return PollOutcome(state=VendorState.RUNNING, raw_status="Staging", progress=Progress(counts={"received": len(self.received)}))

    def failures(self, job):
        return iter(self.exceptions)


class BytesSource:
    def __init__(self, data: bytes):
        self.data = data

    def etag(self, uri):
        return '"v1"'

    def first_bytes(self, uri, n, *, if_match=None):
        return self.data[:n]

    def open(self, uri, start_offset=0, *, if_match=None):
        rest = self.data[start_offset:]
        return (rest[i : i + 7] for i in range(0, len(rest), 7))  # odd chunks: lines straddle them


GOOD = [f'{{"email": "user{n}@example.org"}}' for n in range(1, 13)]


def records_file(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def world():
    clock = Clock()
    store = InMemoryJobStore(clock=clock)
    vendor = FakeVendor()
    return clock, store, vendor


def make(world, data: bytes, fmt: str = "jsonl"):
    clock, store, vendor = world
    results, scratch = InMemoryResultStore(), InMemoryScratch()
    steps = ImportSteps(store, results, scratch, BytesSource(data), lambda job: vendor, now=clock, sleep=lambda seconds: settle(world, seconds))
    job = Job(job_id="job_1", operation="mypreferences.bulk_import", vendor="mypreferences", status=JobStatus.STARTING,
              created_at=clock(), deadline_at=clock() + timedelta(hours=12),
              params={"source": "s3://b/uploads/x.jsonl", "format": fmt})
    from jobrelay.domain.job import TimelineEvent

    store.create(job, TimelineEvent(event="submitted"))
    return steps, results, scratch


def settle(world, seconds: float) -> None:
    """The import's sleep: time passes, and requests the vendor was still processing land."""
    clock, store, vendor = world
    clock.advance(seconds)
    vendor.received.extend(vendor.late)
    vendor.late.clear()


def stage_until_done(steps, store, seconds_left=lambda: 1e9, attempts=20):
    for _ in range(attempts):
        if steps.stage(store.get("job_1"), seconds_left):
            return
    raise AssertionError("staging never finished")


def test_records_are_staged_in_size_limited_batches_then_executed(world):
    clock, store, vendor = world
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    stage_until_done(steps, store)

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 13)]
    assert vendor.stage_calls > 2 and vendor.executed
    state = ImportState.model_validate(store.get("job_1").checkpoint)
    assert state.checkpoint.finished and state.checkpoint.staged_records == 12 == sum(state.batch_sizes)
    assert store.get("job_1").status is JobStatus.RUNNING


def test_a_step_that_dies_after_the_vendor_took_a_batch_does_not_send_it_again(world):
    clock, store, vendor = world
    vendor.crash_on = 2
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    with pytest.raises(StageCrash):
        steps.stage(store.get("job_1"), lambda: 1e9)
    stage_until_done(steps, store)

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 13)]  # each exactly once
    assert "batch_reconciled" in [e.event for e in store.timeline("job_1")]


def test_a_batch_the_vendor_never_got_is_sent_again(world):
    clock, store, vendor = world
    vendor.crash_on, vendor.crash_after_receiving = 2, False
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    with pytest.raises(StageCrash):
        steps.stage(store.get("job_1"), lambda: 1e9)
    stage_until_done(steps, store)

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 13)]


def test_a_step_short_of_time_stops_after_a_batch_and_the_next_one_carries_on(world):
    clock, store, vendor = world
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    assert steps.stage(store.get("job_1"), lambda: 10) is False
    first_calls = vendor.stage_calls
    stage_until_done(steps, store, seconds_left=lambda: 10)

    assert first_calls == 1 and vendor.received == [f"user{n}@example.org" for n in range(1, 13)]


def test_invalid_lines_and_vendor_exceptions_land_in_the_failed_records_by_line(world):
    clock, store, vendor = world
    lines = [GOOD[0], '{"email": "not-an-email"}', "this is not json", GOOD[1], "", GOOD[2], '["a list"]', GOOD[3]]
    vendor.exceptions = [(3, ["Email: domain refused"], None)]  # the 3rd record staged: GOOD[2], line 6
    steps, results, _ = make(world, records_file(lines))
    steps.open(store.get("job_1"))
    stage_until_done(steps, store)

    outcome = steps.collect(store.get("job_1"))

    assert outcome.partial
    failed = next(f for f in outcome.result.files if f.name == "failed_records.jsonl")
    rows = [json.loads(line) for line in results.read(failed.s3_uri).splitlines()]
    assert [(r["line"], r["stage"]) for r in rows] == [(2, "validation"), (3, "validation"), (7, "validation"), (6, "vendor")]
    assert rows[-1]["reasons"] == ["Email: domain refused"]
    summary = json.loads(results.read(outcome.result.s3_uri))
    assert summary["records"] == {"read": 7, "staged": 4, "invalid": 3, "over_vendor_limit": 0, "failed_total": 4}


def test_a_clean_import_has_no_failed_records_file(world):
    clock, store, vendor = world
    steps, *_ = make(world, records_file(GOOD[:3]))
    steps.open(store.get("job_1"))
    stage_until_done(steps, store)
    outcome = steps.collect(store.get("job_1"))
    assert not outcome.partial and [f.name for f in outcome.result.files] == ["summary.json"]


def test_a_file_without_one_valid_record_fails_the_job(world):
    clock, store, vendor = world
    steps, *_ = make(world, records_file(['{"email": "nope"}', '{"email": "still nope"}']))
    steps.open(store.get("job_1"))
    with pytest.raises(InvalidSource, match="no valid record"):
        steps.stage(store.get("job_1"), lambda: 1e9)
    assert vendor.stage_calls == 0 and not vendor.executed


def test_a_file_that_is_not_its_format_fails_at_once(world):
    clock, store, vendor = world
    steps, *_ = make(world, b"\x89PNG\r\n\x1a\n\x00\x00binary")
    with pytest.raises(InvalidSource):
        steps.open(store.get("job_1"))


def test_staging_stops_before_the_access_token_expires(world):
    clock, store, vendor = world
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))
    clock.advance(6 * 3600 - 60)
    with pytest.raises(VendorRejected, match="access token expires"):
        steps.stage(store.get("job_1"), lambda: 1e9)
    assert vendor.stage_calls == 0


def test_a_csv_file_is_staged_from_its_header_and_reports_lines_as_in_the_file(world):
    clock, store, vendor = world
    rows = ["email"] + [f"user{n}@example.org" for n in range(1, 9)] + ["oops", "user9@example.org"]
    steps, results, _ = make(world, records_file(rows), fmt="csv")
    steps.open(store.get("job_1"))
    stage_until_done(steps, store, seconds_left=lambda: 10)  # one batch per step: resumes mid-file

    outcome = steps.collect(store.get("job_1"))

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 10)]
    (failed,) = [f for f in outcome.result.files if f.name == "failed_records.jsonl"]
    assert [json.loads(line)["line"] for line in results.read(failed.s3_uri).splitlines()] == [10]


def test_a_batch_refused_with_an_answer_is_sent_again_without_waiting(world):
    clock, store, vendor = world
    vendor.crash_on, vendor.crash_after_receiving = 2, False
    vendor.raise_instead = VendorTransientError("MyPreferences Stage answered HTTP 503")
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))
    started = clock()

    with pytest.raises(VendorTransientError):
        steps.stage(store.get("job_1"), lambda: 1e9)
    assert ImportState.model_validate(store.get("job_1").checkpoint).in_flight is None
    stage_until_done(steps, store)

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 13)]
    assert clock() == started  # no settling wait: the vendor said it did not take the batch


def test_a_batch_that_timed_out_but_lands_later_is_not_sent_again(world):
    clock, store, vendor = world
    vendor.crash_on, vendor.crash_after_receiving, vendor.deliver_late = 2, False, True
    vendor.raise_instead = VendorTransientError("MyPreferences Stage timed out", vendor_answered=False)
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    with pytest.raises(VendorTransientError):
        steps.stage(store.get("job_1"), lambda: 1e9)
    stage_until_done(steps, store)

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 13)]  # each exactly once
    reconciled = [e.detail for e in store.timeline("job_1") if e.event == "batch_reconciled"]
    assert reconciled == [{"batch": 1, "outcome": "arrived"}]


def test_a_batch_that_timed_out_and_never_landed_is_sent_again_after_the_settle_window(world):
    clock, store, vendor = world
    vendor.crash_on, vendor.crash_after_receiving = 2, False
    vendor.raise_instead = VendorTransientError("MyPreferences Stage timed out", vendor_answered=False)
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))
    with pytest.raises(VendorTransientError):
        steps.stage(store.get("job_1"), lambda: 1e9)
    crashed_at = clock()

    stage_until_done(steps, store)

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 13)]
    assert clock() >= crashed_at + SETTLE_AFTER

