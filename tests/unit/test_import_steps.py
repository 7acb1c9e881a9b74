"""Bulk-import staging on fakes: batches by size, failures by line, resumption without duplicates."""

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from pydantic import BaseModel, Secret, field_validator

from jobrelay.domain.bulk_import import BatchFormat, BatchLimits, ImportState, InFlight, StagedBatch
from jobrelay.domain.errors import (
    InvalidSource,
    VendorOutcomeUnknown,
    VendorProtocolError,
    VendorRejected,
    VendorTransientError,
    VendorUnavailable,
)
from jobrelay.domain.job import Job, JobPatch, Progress
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_outcomes import PollOutcome, VendorState
from jobrelay.domain.vendor_ref import VendorRef
from jobrelay.services import bulk_imports
from jobrelay.services.bulk_imports import SETTLE_AFTER, STALLED_AFTER, ImportSteps
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


class FakeImportRef(VendorRef):
    access_token: Secret[int]  # a per-import credential, like MyPreferences'
    import_id: int
    expires_at: datetime


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
    counts_received: bool = True  # False: like Which50, it cannot say what it received before the run
    imports_opened: int = 0
    received_by_import: dict[int, list[str]] = field(default_factory=dict)
    warn_about: str | None = None  # an email it answers a warning for
    execute_calls: int = 0
    execute_fails: list[Exception] = field(default_factory=list)  # raised by the next execute calls, in order
    started: bool = False  # the run reached the vendor (an execute that raised may still have)
    execute_lands_anyway: bool = False
    refused: int = 0
    counted_failures: int | None = None  # the failures it counts, if not as many as it lists
    run_calls: list[str] = field(default_factory=list)  # "asked" (run_started) and "sent" (execute), in order
    run_started_fails: list[Exception] = field(default_factory=list)  # raised by the next run_started calls
    refuse_every_other: bool = False  # answer 503 to every other stage request (never two in a row)
    crash_every_time: bool = False  # crash_on's failure repeats on every later stage call too
    max_concurrent_jobs: int | None = None
    concurrency: int = 1  # stage requests out at once

    def limits_for(self, job):
        return BatchLimits(max_bytes=self.max_bytes)

    def stage_concurrency(self, job):
        return self.concurrency

    def validate(self, job, record):
        return Contact.model_validate(record)

    def record_key(self, record):
        return record.email

    def batch_format(self, job):
        return BatchFormat.json_array(lambda r: json.dumps(r.model_dump(), separators=(",", ":")).encode(), key="contacts")

    def open(self, job):
        self.imports_opened += 1
        self.received = self.received_by_import.setdefault(self.imports_opened, [])
        return FakeImportRef(
            access_token=Secret(7), import_id=self.imports_opened, expires_at=job.created_at + timedelta(hours=6)
        )

    def usable_until(self, job):
        return FakeImportRef.of(job).expires_at

    def stage(self, job, body, records):
        self.stage_calls += 1
        emails = [c["email"] for c in json.loads(body)["contacts"]]
        if self.refuse_every_other and self.stage_calls % 2 == 1:
            raise VendorTransientError("the vendor answered HTTP 503")
        crash = self.crash_on == self.stage_calls or (
            self.crash_every_time and self.crash_on is not None and self.stage_calls > self.crash_on
        )
        if crash and not self.crash_after_receiving:
            if self.deliver_late:
                self.late.extend(emails)
            raise self.raise_instead or StageCrash("connection reset before the vendor read it")
        self.received.extend(emails)
        if crash:
            raise StageCrash("the step died after the vendor acknowledged")
        warnings = [(i, [f"suspicious: {e}"]) for i, e in enumerate(emails) if e == self.warn_about]
        return StagedBatch(counts=self._counts(), warnings=warnings)

    def _counts(self):
        return {"received": len(self.received), "refused": self.refused} if self.counts_received else {"refused": self.refused}

    def run_started(self, job):
        self.run_calls.append("asked")
        if self.run_started_fails:
            raise self.run_started_fails.pop(0)
        return self.started

    def execute(self, job):
        self.execute_calls += 1
        self.run_calls.append("sent")
        assert not self.started, "the engine ran an import that had been run before"
        if self.execute_fails:
            failure = self.execute_fails.pop(0)
            self.started = self.execute_lands_anyway
            raise failure
        self.started = self.executed = True

    def poll(self, job):
        return PollOutcome(state=VendorState.RUNNING, raw_status="Staging", progress=Progress(counts=self._counts()))

    def cancel(self, job):
        return False

    def failures(self, job):
        return iter(self.exceptions)

    def reconcile(self, job, totals, rec):
        """Like the adapters: what it received and the failures it counts, against ours."""
        counts = job.progress.counts
        rec.check("records received by the vendor", totals.sent, counts.get("received"))
        counted = len(self.exceptions) if self.counted_failures is None else self.counted_failures
        rec.check("failed records listed", totals.listed_failures, counted)
        if counts.get("refused"):
            rec.short(f"the vendor refused {counts['refused']} records")


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
    engine = ImportSteps(store, results, scratch, BytesSource(data), now=clock, sleep=lambda seconds: settle(world, seconds))
    steps = ForVendor(engine, vendor)
    job = Job(
        job_id="job_1",
        operation="mypreferences.bulk_import",
        vendor="mypreferences",
        status=JobStatus.STARTING,
        created_at=clock(),
        deadline_at=clock() + timedelta(hours=12),
        params={"source": "s3://b/uploads/x.jsonl", "format": fmt},
    )
    from jobrelay.domain.job import TimelineEvent

    store.create(job, TimelineEvent(event="submitted"))
    return steps, results, scratch


@dataclass
class ForVendor:
    """The engine's calls for one vendor, as the bulk-import driver makes them."""

    engine: ImportSteps
    vendor: FakeVendor

    def open(self, job):
        return self.engine.open(job, self.vendor)

    def stage(self, job, seconds_left):
        return self.engine.stage(job, self.vendor, seconds_left)

    def collect(self, job):
        return self.engine.collect(job, self.vendor)


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
    state = store.get("job_1").import_state
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

    assert steps.stage(store.get("job_1"), lambda: 1e9) is True  # sent again within the step

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 13)]
    # A short backoff, no settling wait: the vendor said it did not take the batch.
    assert timedelta(0) < clock() - started < timedelta(seconds=5)
    assert "batch_reconciled" not in [e.event for e in store.timeline("job_1")]


def test_a_batch_that_timed_out_but_lands_later_is_not_sent_again(world):
    clock, store, vendor = world
    vendor.crash_on, vendor.crash_after_receiving, vendor.deliver_late = 2, False, True
    vendor.raise_instead = VendorTransientError("MyPreferences Stage timed out", vendor_answered=False)
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    assert steps.stage(store.get("job_1"), lambda: 1e9) is False  # its answer never came: the next step settles it
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
    assert steps.stage(store.get("job_1"), lambda: 1e9) is False  # its answer never came: the next step settles it
    crashed_at = clock()

    stage_until_done(steps, store)

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 13)]
    assert clock() >= crashed_at + SETTLE_AFTER


# --- vendors that count nothing before the run (Which50) ------------------------------------------


def test_a_batch_of_unknown_fate_at_a_vendor_that_counts_nothing_restarts_the_import(world):
    clock, store, vendor = world
    vendor.counts_received = False
    vendor.crash_on, vendor.crash_after_receiving, vendor.deliver_late = 2, False, True
    vendor.raise_instead = VendorTransientError("Which50 AddBatch timed out", vendor_answered=False)
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))
    assert steps.stage(store.get("job_1"), lambda: 1e9) is False  # its answer never came: the next step settles it

    stage_until_done(steps, store)

    everyone = [f"user{n}@example.org" for n in range(1, 13)]
    assert vendor.imports_opened == 2 and vendor.received_by_import[2] == everyone  # the run import: each once
    assert store.get("job_1").vendor_ref["import_id"] == 2 and vendor.executed
    (restart,) = [e.detail for e in store.timeline("job_1") if e.event == "import_restarted"]
    assert restart["abandoned"]["import_id"] == 1 and "access_token" not in restart["abandoned"]
    assert store.get("job_1").import_state.restarts == 1


def test_restarts_are_bounded(world):
    clock, store, vendor = world
    vendor.counts_received = False
    vendor.raise_instead = VendorTransientError("Which50 AddBatch timed out", vendor_answered=False)
    vendor.crash_after_receiving = False
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))
    for _ in range(4):
        vendor.crash_on = vendor.stage_calls + 1
        assert steps.stage(store.get("job_1"), lambda: 1e9) is False
    with pytest.raises(VendorProtocolError, match="started afresh 3 times"):
        steps.stage(store.get("job_1"), lambda: 1e9)


def test_vendor_warnings_about_records_are_reported_by_line(world):
    clock, store, vendor = world
    vendor.warn_about = "user5@example.org"
    steps, results, _ = make(world, records_file(['{"email": "bad"}', *GOOD]))
    steps.open(store.get("job_1"))
    stage_until_done(steps, store)
    store.update("job_1", JobPatch(progress=vendor.poll(None).progress))  # what the Poll step leaves

    outcome = steps.collect(store.get("job_1"))

    (warned,) = [f for f in outcome.result.files if f.name == "validation_warnings.jsonl"]
    assert [json.loads(line) for line in results.read(warned.s3_uri).splitlines()] == [
        {"line": 6, "warnings": ["suspicious: user5@example.org"]}
    ]
    summary = json.loads(results.read(outcome.result.s3_uri))
    assert summary["validation_warnings"] == 1 and summary["reconciled"] is True


def test_a_vendor_shortfall_count_makes_the_import_partial(world):
    clock, store, vendor = world
    vendor.counts_received, vendor.refused = False, 2
    steps, results, _ = make(world, records_file(GOOD[:3]))
    steps.open(store.get("job_1"))
    stage_until_done(steps, store)
    store.update("job_1", JobPatch(progress=vendor.poll(None).progress))

    outcome = steps.collect(store.get("job_1"))

    assert outcome.partial and [f.name for f in outcome.result.files] == ["summary.json"]
    summary = json.loads(results.read(outcome.result.s3_uri))
    assert summary["complete"] is False and summary["reconciliation"]["shortfall"] == ["the vendor refused 2 records"]


# --- the run is sent once -------------------------------------------------------------------------


def test_a_run_refused_with_an_answer_is_sent_again_in_the_step_after_a_short_backoff(world):
    clock, store, vendor = world
    vendor.execute_fails = [VendorTransientError("Which50 RunImportJob answered HTTP 503")]
    steps, *_ = make(world, records_file(GOOD[:3]))
    steps.open(store.get("job_1"))
    started = clock()

    assert steps.stage(store.get("job_1"), lambda: 1e9) is True

    assert vendor.executed and vendor.execute_calls == 2 and clock() - started < timedelta(seconds=5)
    assert vendor.run_calls == ["sent", "sent"]  # an error answer: the vendor did not take the first


def test_a_run_whose_answer_was_lost_is_settled_before_the_vendor_is_asked_again(world):
    clock, store, vendor = world
    vendor.execute_fails = [VendorTransientError("Which50 RunImportJob timed out", vendor_answered=False)]
    vendor.execute_lands_anyway = True
    steps, *_ = make(world, records_file(GOOD[:3]))
    steps.open(store.get("job_1"))
    with pytest.raises(VendorTransientError):
        stage_until_done(steps, store)
    sent_at = clock()

    stage_until_done(steps, store)

    assert clock() >= sent_at + SETTLE_AFTER and vendor.started
    assert vendor.execute_calls == 1 and store.get("job_1").status is JobStatus.RUNNING
    assert vendor.run_calls == ["sent", "asked"]  # the second asks the vendor, and runs nothing more


def test_a_failed_status_read_before_the_run_costs_no_second_settle_wait(world):
    """The run's answer was lost; the next step waits out the settle window once, then the status
    read fails for the rest of that step's time. The step after that must not wait again: the run
    did not leave a second time."""
    clock, store, vendor = world
    vendor.execute_fails = [VendorTransientError("MyPreferences Execute timed out", vendor_answered=False)]
    steps, *_ = make(world, records_file(GOOD[:3]))
    steps.open(store.get("job_1"))
    with pytest.raises(VendorTransientError):
        stage_until_done(steps, store)
    run_lost_at = clock()
    vendor.run_started_fails = [VendorTransientError("MyPreferences Status timed out", vendor_answered=False)]
    with pytest.raises(VendorTransientError):  # no time left in this step to wait for a second attempt
        steps.stage(store.get("job_1"), lambda: 0)
    assert run_lost_at + SETTLE_AFTER <= clock() < run_lost_at + SETTLE_AFTER + timedelta(seconds=5)
    asked_again_at = clock()

    stage_until_done(steps, store)

    assert clock() == asked_again_at  # asked again at once, and run
    assert vendor.run_calls == ["sent", "asked", "asked", "sent"] and vendor.executed
    assert store.get("job_1").import_state.run_sent_at == asked_again_at  # recorded as the run left


def test_a_failed_status_read_before_the_run_is_asked_again_never_taken_as_not_run(world):
    """A status read answered 503 must not clear the earlier run's doubt: the run is never sent blind."""
    clock, store, vendor = world
    vendor.execute_fails = [VendorTransientError("Which50 RunImportJob timed out", vendor_answered=False)]
    vendor.execute_lands_anyway = True
    steps, *_ = make(world, records_file(GOOD[:3]))
    steps.open(store.get("job_1"))
    with pytest.raises(VendorTransientError):
        stage_until_done(steps, store)
    vendor.run_started_fails = [VendorTransientError("Which50 GetImportJob answered HTTP 503")] * 2

    stage_until_done(steps, store)

    assert vendor.run_calls == ["sent", "asked", "asked", "asked"] and vendor.execute_calls == 1


# --- retries follow progress ------------------------------------------------------------------------


def test_an_import_meeting_a_503_on_every_other_batch_stages_every_record_once(world):
    clock, store, vendor = world
    vendor.refuse_every_other = True
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    stage_until_done(steps, store, attempts=1)  # one step: the refusals were retried inside it

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 13)]
    assert vendor.stage_calls > 2 * len(store.get("job_1").import_state.batch_sizes) - 2  # every batch but the last met a 503
    assert vendor.executed and store.get("job_1").status is JobStatus.RUNNING


def test_a_batch_refused_on_every_attempt_fails_the_import_for_an_unavailable_vendor(world):
    clock, store, vendor = world
    vendor.crash_on, vendor.crash_after_receiving = 2, False
    vendor.raise_instead = VendorTransientError("MyPreferences Stage answered HTTP 503")
    vendor.crash_every_time = True
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    with pytest.raises(VendorUnavailable, match="staging batch 1 failed 6 times in a row"):
        steps.stage(store.get("job_1"), lambda: 1e9)

    assert store.get("job_1").import_state.in_flight == []  # nothing doubtful left behind


def test_a_retry_that_would_not_fit_in_the_step_ends_it_or_is_left_to_the_state_machine(world):
    """Half a second left after the reserve: no time to wait for another attempt. After a batch went
    through, the step ends normally (the next goes on with a fresh budget); before any did, the error
    leaves and the state machine retries the step after its own backoff."""
    clock, store, vendor = world
    vendor.crash_on, vendor.crash_after_receiving = 2, False
    vendor.raise_instead = VendorTransientError("MyPreferences Stage answered HTTP 503")
    vendor.crash_every_time = True
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    assert steps.stage(store.get("job_1"), lambda: 120.5) is False  # batch 0 went, batch 1 was refused
    with pytest.raises(VendorTransientError):  # batch 1 refused first thing
        steps.stage(store.get("job_1"), lambda: 120.5)
    assert store.get("job_1").import_state.in_flight == []  # refused: nothing to settle
    vendor.crash_every_time = False
    stage_until_done(steps, store)

    assert vendor.received == [f"user{n}@example.org" for n in range(1, 13)]


def test_an_import_whose_batches_never_arrive_fails_once_nothing_has_progressed_for_long(world):
    clock, store, vendor = world
    vendor.crash_on, vendor.crash_after_receiving = 2, False
    vendor.raise_instead = VendorTransientError("MyPreferences Stage timed out", vendor_answered=False)
    vendor.crash_every_time = True
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    with pytest.raises(VendorUnavailable, match="no batch has been acknowledged for"):
        stage_until_done(steps, store, attempts=50)

    assert clock() - store.get("job_1").import_state.progressed_at >= STALLED_AFTER
    assert len(vendor.received) == store.get("job_1").import_state.checkpoint.staged_records  # none twice


# --- reconciliation and the one opening -------------------------------------------------------------


def collected(world, lines: list[str]):
    clock, store, vendor = world
    steps, results, _ = make(world, records_file(lines))
    steps.open(store.get("job_1"))
    stage_until_done(steps, store)
    store.update("job_1", JobPatch(progress=vendor.poll(None).progress))
    return steps.collect(store.get("job_1")), results


def test_our_own_counts_are_on_the_job_while_it_stages_and_after_it_runs(world):
    clock, store, vendor = world
    steps, *_ = make(world, records_file([GOOD[0], '{"email": "nope"}', *GOOD[1:4]]))
    steps.open(store.get("job_1"))

    stage_until_done(steps, store)

    assert store.get("job_1").progress.records == {"read": 5, "refused": 1, "sent": 4}


def test_the_note_counts_the_records_staged_batch_by_batch_then_says_the_vendor_imports_them(world):
    clock, store, vendor = world
    vendor.max_bytes = 60  # one record a batch
    steps, *_ = make(world, records_file([GOOD[0], GOOD[1], '{"email": "nope"}', GOOD[2]]))
    steps.open(store.get("job_1"))
    progress = store.get("job_1").progress
    assert (progress.phase, progress.note) == ("staging", "staging the records at MyPreferences: 0 records staged")

    notes = []
    while not steps.stage(store.get("job_1"), lambda: 10):  # short of time: one batch a step
        notes.append(store.get("job_1").progress.note)

    assert notes == [
        "staging the records at MyPreferences: 1 record staged",
        "staging the records at MyPreferences: 2 records staged, 1 refused before sending",
        "staging the records at MyPreferences: 3 records staged, 1 refused before sending",
    ]
    progress = store.get("job_1").progress
    assert (progress.phase, progress.waiting_on, progress.waiting_since) == ("waiting", "polling", clock())
    assert progress.note == "waiting for MyPreferences since 10:00 UTC by polling; no status from it yet; 3 records staged"


def test_an_import_started_afresh_says_why_it_stages_again(world):
    clock, store, vendor = world
    vendor.counts_received, vendor.crash_on = False, 2
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))
    with pytest.raises(StageCrash):
        steps.stage(store.get("job_1"), lambda: 1e9)
    vendor.crash_on, vendor.crash_after_receiving = 3, False  # the fresh import's first batch fails too

    with pytest.raises(StageCrash):
        steps.stage(store.get("job_1"), lambda: 1e9)

    assert store.get("job_1").progress.note == (
        "staging the records at MyPreferences again from the first record "
        "(the vendor cannot say whether batch 1 arrived): 0 records staged"
    )


def test_records_we_refused_make_the_import_partial_and_the_reason_says_how_many(world):
    outcome, results = collected(world, [GOOD[0], '{"email": "nope"}', GOOD[1]])

    assert outcome.partial and outcome.reconciliation.reconciled is True
    assert outcome.reconciliation.shortfall == ["1 of 3 records were refused before sending (see failed_records.jsonl)"]
    assert outcome.reconciliation.ours == {"read": 3, "refused": 1, "sent": 2, "failed_at_vendor": 0, "failed": 1}


def test_a_vendor_count_that_disagrees_with_ours_is_partial_with_both_sides_in_the_summary(world):
    clock, store, vendor = world
    vendor.exceptions, vendor.counted_failures = [(1, ["refused"], None), (2, ["refused"], None)], 3

    outcome, results = collected(world, GOOD[:3])

    summary = json.loads(results.read(outcome.result.s3_uri))
    assert outcome.partial and summary["reconciled"] is False and summary["complete"] is False
    (listed,) = [c for c in summary["reconciliation"]["checks"] if c["check"] == "failed records listed"]
    assert (listed["ours"], listed["vendor"], listed["agree"]) == (2, 3, False)


def test_an_import_whose_opening_was_never_recorded_is_not_opened_again(world):
    clock, store, vendor = world
    steps, *_ = make(world, records_file(GOOD[:2]))
    original_open = vendor.open

    def open_then_die(job):
        original_open(job)
        raise StageCrash("the Lambda died before the answer was saved")

    vendor.open = open_then_die
    with pytest.raises(StageCrash):
        steps.open(store.get("job_1"))
    vendor.open = original_open

    with pytest.raises(VendorOutcomeUnknown, match="not sent again"):
        steps.open(store.get("job_1"))
    assert vendor.imports_opened == 1


# --- several stage requests at once --------------------------------------------------------------


@dataclass
class OutOfOrderVendor(FakeVendor):
    """Answers batch 0 only once a later batch has been answered: acknowledgements out of order.
    It numbers records as it takes them, so each answer's `received` places its batch."""

    first_answered_last: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stage(self, job, body, records):
        emails = [c["email"] for c in json.loads(body)["contacts"]]
        if emails[0] == "user1@example.org":
            assert self.first_answered_last.wait(5), "no later batch was sent while the first was out"
        with self.lock:
            answer = super().stage(job, body, records)
        self.first_answered_last.set()
        return answer


def test_batches_answered_out_of_order_are_each_staged_once_and_placed_where_the_vendor_took_them(world):
    clock, store, _ = world
    vendor = OutOfOrderVendor(concurrency=3)
    world = (clock, store, vendor)
    vendor.exceptions = [(1, ["refused"], None)]  # the vendor's first record: the first it took, not line 1
    steps, results, _ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    stage_until_done(steps, store)

    assert sorted(vendor.received) == sorted(f"user{n}@example.org" for n in range(1, 13))  # each once
    assert vendor.received[0] != "user1@example.org"  # batch 0 was acknowledged after a later one
    state = store.get("job_1").import_state
    assert state.checkpoint.staged_records == 12 and state.in_flight == [] and state.acknowledged_ahead == []
    assert sorted(state.vendor_positions) == [sum(state.batch_sizes[:i]) for i in range(len(state.batch_sizes))]
    assert state.vendor_positions[0] > 0
    store.update("job_1", JobPatch(progress=vendor.poll(None).progress))
    outcome = steps.collect(store.get("job_1"))
    (failed,) = [f for f in outcome.result.files if f.name == "failed_records.jsonl"]
    (line,) = [json.loads(line)["line"] for line in results.read(failed.s3_uri).splitlines()]
    assert line == GOOD.index(f'{{"email": "{vendor.received[0]}"}}') + 1  # the source line of the vendor's first record


def test_a_step_that_dies_with_several_batches_out_sends_none_twice_and_loses_none(world):
    clock, store, vendor = world
    vendor.concurrency = 3
    vendor.crash_on = 3  # the third request dies after the vendor took it; the others are answered
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))

    with pytest.raises(StageCrash):
        steps.stage(store.get("job_1"), lambda: 1e9)
    assert len(store.get("job_1").import_state.in_flight) == 1
    stage_until_done(steps, store)

    assert sorted(vendor.received) == sorted(f"user{n}@example.org" for n in range(1, 13))  # each exactly once
    assert [e.detail["outcome"] for e in store.timeline("job_1") if e.event == "batch_reconciled"] == ["arrived"]


@dataclass
class CountingVendor(FakeVendor):
    """Notes the most stage requests it had out at once; each stays out until `hold_until_out` are
    (or 0.2 s pass), so a window with room for that many has that many out."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    out: int = 0
    most_out: int = 0
    hold_until_out: int = 3

    def stage(self, job, body, records):
        with self.arrived:
            self.out += 1
            self.most_out = max(self.most_out, self.out)
            self.arrived.notify_all()
            self.arrived.wait_for(lambda: self.out >= self.hold_until_out, timeout=0.2)
        try:
            with self.lock:
                return super().stage(job, body, records)
        finally:
            with self.arrived:
                self.out -= 1


def test_big_batches_are_sent_fewer_at_once_than_asked_so_that_their_bodies_fit_in_memory(world, monkeypatch):
    clock, store, _ = world
    vendor = CountingVendor(concurrency=8)  # batches of up to 120 bytes
    # Room for two bodies out and one being cut, whatever their size.
    monkeypatch.setattr(bulk_imports, "STAGE_BODIES_BYTES", 3 * vendor.max_bytes)
    steps, *_ = make((clock, store, vendor), records_file(GOOD))
    steps.open(store.get("job_1"))

    stage_until_done(steps, store)

    assert vendor.most_out == 2
    assert sorted(vendor.received) == sorted(f"user{n}@example.org" for n in range(1, 13))


@dataclass
class SmallBatchesVendor(CountingVendor):
    """Allows stage requests of 10,000 bytes, but cuts 3 contacts a batch (about 100 bytes)."""

    def limits_for(self, job):
        return BatchLimits(max_bytes=10_000, max_records=3)


def test_small_batches_go_as_many_at_once_as_fit_though_the_vendor_allows_big_ones(world, monkeypatch):
    clock, store, _ = world
    vendor = SmallBatchesVendor(concurrency=8, hold_until_out=4)
    # Room for a batch of up to 10,000 bytes being cut and 350 bytes out: three of these batches, not four.
    monkeypatch.setattr(bulk_imports, "STAGE_BODIES_BYTES", 10_000 + 350)
    steps, *_ = make((clock, store, vendor), records_file(GOOD))
    steps.open(store.get("job_1"))

    stage_until_done(steps, store)

    assert store.get("job_1").import_state.batch_sizes == [3, 3, 3, 3]
    assert vendor.most_out == 3


def test_batches_in_flight_whose_count_cannot_tell_which_arrived_restart_the_import(world):
    """Two batches of the same size out, one arrived: the count says one did, not which. The import is
    begun afresh (the first is never run), never one batch sent twice."""
    clock, store, vendor = world
    steps, *_ = make(world, records_file(GOOD))
    steps.open(store.get("job_1"))
    job = store.get("job_1")
    first, second = (
        InFlight(index=0, first_line=1, last_end_offset=10, next_line=4, count=3, sent_at=clock()),
        InFlight(index=1, first_line=4, last_end_offset=20, next_line=7, count=3, sent_at=clock()),
    )
    store.update("job_1", JobPatch(import_state=job.import_state.model_copy(update={"in_flight": [first, second]})))
    vendor.received.extend(["somebody@example.org"] * 3)  # one of the two arrived

    stage_until_done(steps, store)

    everyone = [f"user{n}@example.org" for n in range(1, 13)]
    assert vendor.imports_opened == 2 and vendor.received_by_import[2] == everyone
    (restart,) = [e.detail for e in store.timeline("job_1") if e.event == "import_restarted"]
    assert "cannot tell which of batches 0, 1 arrived" in restart["reason"]


def test_an_import_state_stored_with_one_batch_in_flight_is_read_as_a_list_of_one():
    flight = {"index": 2, "first_line": 7, "last_end_offset": 70, "next_line": 9, "count": 2}
    assert ImportState.model_validate({"in_flight": flight}).in_flight == [InFlight(**flight)]
    assert ImportState.model_validate({"in_flight": None}).in_flight == []
