"""The JobStore contract, run against DynamoJobStore (under moto) and InMemoryJobStore alike, so the
fake the service tests use cannot drift from the adapter the functions use."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.domain.errors import InvalidRequest, JobConflict, JobNotFound
from jobrelay.domain.job import Job, JobError, JobPatch, JobResult, Progress, StoredFile, TimelineEvent, utcnow
from jobrelay.domain.status import ALLOWED_PREDECESSORS, JobStatus
from jobrelay.ports import JobStore
from tests.fakes import InMemoryJobStore
from tests.integration.aws_env import create_jobs_table, mocked_aws

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
OPERATION = "pinpointe.list_subscribers"
OTHER_OPERATION = "which50.contact_import"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(hours=1))


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        yield boto3.client("dynamodb")


def new_store(request: pytest.FixtureRequest, clock: Callable[[], datetime] = utcnow) -> JobStore:
    if request.param == "memory":
        return InMemoryJobStore(clock=clock)
    client = request.getfixturevalue("dynamodb")  # moto starts only for the DynamoDB half
    return DynamoJobStore(create_jobs_table(client), client, clock=clock)


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest, clock: Clock) -> JobStore:
    return new_store(request, clock)


def make_job(job_id: str = "job-1", *, status: JobStatus = JobStatus.SUBMITTED, **fields: Any) -> Job:
    values: dict[str, Any] = {
        "operation": OPERATION,
        "vendor": "pinpointe",
        "created_at": T0,
        "updated_at": T0,
        "deadline_at": T0 + timedelta(hours=12),
    }
    return Job(job_id=job_id, status=status, **(values | fields))


def event(name: str, minutes: int = 0, **detail: Any) -> TimelineEvent:
    return TimelineEvent(at=T0 + timedelta(minutes=minutes), event=name, detail=detail)


def submitted(store: JobStore, job_id: str = "job-1", **fields: Any) -> Job:
    job = make_job(job_id, **fields)
    store.create(job, event("submitted"))
    return job


# --- create, get, timeline ---------------------------------------------------------------------


def test_a_created_job_reads_back_whole_backend_only_fields_and_numbers_included(store: JobStore) -> None:
    job = make_job(
        params={"list_ids": [3, 4], "ratio": 0.25, "nested": {"flag": True, "none": None, "text": ""}},
        progress=Progress(percent=10, counts={"rows": 12}, note="staging"),
        vendor_ref={"queue_id": "q-1", "attempt": 2},
        webhook_token_sha256="ab" * 32,
        task_token="token-1",
        webhook_received_at=T0 + timedelta(seconds=1, microseconds=5),
        polls=3,
    )
    store.create(job, event("submitted", stage="api"))

    assert store.get("job-1") == job
    assert store.timeline("job-1") == [event("submitted", stage="api")]


def test_creating_an_existing_id_is_a_conflict_and_changes_nothing(store: JobStore) -> None:
    original = submitted(store)

    with pytest.raises(JobConflict):
        store.create(make_job(operation=OTHER_OPERATION), event("submitted again"))

    assert store.get("job-1") == original
    assert [e.event for e in store.timeline("job-1")] == ["submitted"]


def test_unknown_jobs_read_as_nothing(store: JobStore) -> None:
    assert store.get("nope") is None
    assert store.timeline("nope") == []


def test_the_timeline_is_oldest_first_whatever_the_writing_order(store: JobStore) -> None:
    submitted(store)
    store.append_event("job-1", event("third", minutes=3))
    store.append_event("job-1", event("second", minutes=2))

    assert [e.event for e in store.timeline("job-1")] == ["submitted", "second", "third"]


# --- transitions -------------------------------------------------------------------------------

ALLOWED = [(current, target) for target, before in ALLOWED_PREDECESSORS.items() for current in sorted(before)]


@pytest.mark.parametrize(("current", "target"), ALLOWED, ids=[f"{c}->{t}" for c, t in ALLOWED])
def test_every_allowed_transition_changes_status_version_and_timeline(
    store: JobStore, clock: Clock, current: JobStatus, target: JobStatus
) -> None:
    submitted(store, status=current, version=4)

    outcome = store.transition("job-1", target, event("moved", minutes=5))

    assert outcome.changed
    assert (outcome.job.status, outcome.job.version, outcome.job.updated_at) == (target, 5, clock.now)
    assert store.get("job-1") == outcome.job
    assert [e.event for e in store.timeline("job-1")] == ["submitted", "moved"]


@pytest.mark.parametrize("current", list(JobStatus))
def test_every_forbidden_transition_writes_nothing(store: JobStore, current: JobStatus) -> None:
    forbidden = [t for t in JobStatus if t is not JobStatus.SUBMITTED and current not in ALLOWED_PREDECESSORS[t]]
    before = submitted(store, status=current)

    for target in forbidden:
        outcome = store.transition("job-1", target, event("moved"), JobPatch(polls=9))

        assert not outcome.changed, f"{current} -> {target}"
        assert outcome.job == before

    assert store.get("job-1") == before
    assert [e.event for e in store.timeline("job-1")] == ["submitted"]


def test_submitted_is_never_a_target(store: JobStore) -> None:
    submitted(store, status=JobStatus.STARTING)

    with pytest.raises(ValueError):
        store.transition("job-1", JobStatus.SUBMITTED, event("back"))


def test_transitioning_an_unknown_job_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        store.transition("nope", JobStatus.STARTING, event("starting"))


def test_the_whole_happy_path_counts_versions_and_keeps_every_step(store: JobStore) -> None:
    submitted(store)
    path = [JobStatus.STARTING, JobStatus.RUNNING, JobStatus.COLLECTING, JobStatus.SUCCEEDED]

    versions = [
        store.transition("job-1", status, event(status.lower(), minutes=i)).job.version for i, status in enumerate(path, 1)
    ]

    assert versions == [2, 3, 4, 5]
    assert [e.event for e in store.timeline("job-1")] == ["submitted", "starting", "running", "collecting", "succeeded"]


def test_a_transition_applies_its_patch_in_the_same_write(store: JobStore) -> None:
    submitted(store, status=JobStatus.COLLECTING, task_token="waiting-token")
    result = JobResult(
        s3_uri="s3://bucket/results/job-1/result.csv",
        size=10,
        sha256="0" * 64,
        files=[StoredFile(name="failed.jsonl", s3_uri="s3://bucket/results/job-1/failed.jsonl", size=1, sha256="1" * 64)],
    )
    patch = JobPatch(result=result, error=JobError(code="PARTIAL", message="2 rows failed"), task_token=None)

    outcome = store.transition("job-1", JobStatus.PARTIAL, event("partial"), patch)

    assert (outcome.job.result, outcome.job.error, outcome.job.task_token) == (patch.result, patch.error, None)
    assert store.get("job-1") == outcome.job


def test_a_cancel_that_wins_the_race_makes_the_stale_collector_a_no_op(store: JobStore) -> None:
    """Both writers saw RUNNING. Neither reads before writing (the guard is in the write), so two
    calls in a row are exactly the race, in the order where the cancel lands first."""
    submitted(store, status=JobStatus.RUNNING, version=3)

    cancel = store.transition("job-1", JobStatus.CANCELLED, event("cancelled", minutes=1))
    collect = store.transition("job-1", JobStatus.COLLECTING, event("collecting", minutes=2), JobPatch(polls=7))

    assert cancel.changed and not collect.changed
    assert collect.job == cancel.job == store.get("job-1")
    assert (collect.job.status, collect.job.version, collect.job.polls) == (JobStatus.CANCELLED, 4, 0)
    assert [e.event for e in store.timeline("job-1")] == ["submitted", "cancelled"]


def test_of_two_endings_racing_from_the_same_status_only_the_first_lands(store: JobStore) -> None:
    submitted(store, status=JobStatus.COLLECTING)

    succeeded = store.transition("job-1", JobStatus.SUCCEEDED, event("succeeded", minutes=1))
    timed_out = store.transition("job-1", JobStatus.TIMED_OUT, event("timed out", minutes=2))

    assert succeeded.changed and not timed_out.changed
    assert timed_out.job.status is JobStatus.SUCCEEDED
    assert [e.event for e in store.timeline("job-1")] == ["submitted", "succeeded"]


# --- updates -----------------------------------------------------------------------------------


def test_an_update_writes_the_patch_without_a_transition(store: JobStore, clock: Clock) -> None:
    submitted(store, status=JobStatus.RUNNING, version=3, vendor_ref={"queue_id": "q-1"})
    progress = Progress(percent=40, counts={"rows": 1000})

    written = store.update("job-1", JobPatch(progress=progress, polls=2))

    assert written is not None
    assert (written.progress, written.polls, written.updated_at) == (progress, 2, clock.now)
    assert (written.status, written.version, written.vendor_ref) == (JobStatus.RUNNING, 3, {"queue_id": "q-1"})
    assert store.get("job-1") == written


def test_an_update_can_clear_a_field(store: JobStore) -> None:
    submitted(store, status=JobStatus.RUNNING, task_token="token-1", webhook_received_at=T0)

    written = store.update("job-1", JobPatch(task_token=None, webhook_received_at=None))

    assert written is not None and written.task_token is None and written.webhook_received_at is None
    assert store.get("job-1") == written


def test_an_update_with_an_event_writes_both(store: JobStore) -> None:
    submitted(store, status=JobStatus.STARTING)

    written = store.update("job-1", JobPatch(vendor_ref={"queue_id": "q-9"}), event("vendor accepted", minutes=1))

    assert written is not None and written.vendor_ref == {"queue_id": "q-9"}
    assert store.get("job-1") == written
    assert [e.event for e in store.timeline("job-1")] == ["submitted", "vendor accepted"]


@pytest.mark.parametrize("with_event", [False, True], ids=["alone", "with event"])
def test_a_terminal_job_refuses_updates(store: JobStore, with_event: bool) -> None:
    before = submitted(store, status=JobStatus.FAILED)

    written = store.update("job-1", JobPatch(polls=5), event("late poll") if with_event else None)

    assert written is None
    assert store.get("job-1") == before
    assert [e.event for e in store.timeline("job-1")] == ["submitted"]


def test_updating_an_unknown_job_is_none(store: JobStore) -> None:
    assert store.update("nope", JobPatch(polls=1)) is None
    assert store.update("nope", JobPatch(polls=1), event("poll")) is None
    assert store.get("nope") is None


# --- listing -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["dynamodb", "memory"])
def listed(request: pytest.FixtureRequest) -> tuple[JobStore, list[Job]]:
    """Twenty jobs a minute apart, statuses and operations interleaved so every filter skips some;
    the ids do not sort like the times, so only created_at can give the order. Read-only: shared."""
    store = new_store(request)
    statuses = [JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.SUBMITTED]
    jobs = []
    for minute in range(20):
        job = make_job(
            f"job-{(minute * 7) % 20:02d}",
            status=statuses[minute % len(statuses)],
            operation=OPERATION if minute % 3 else OTHER_OPERATION,
            account="acme" if minute % 4 == 1 else "default",
            created_at=T0 + timedelta(minutes=minute, microseconds=minute % 2),
        )
        store.create(job, event("submitted"))
        jobs.append(job)
    return store, jobs


def all_pages(store: JobStore, limit: int, **filters: Any) -> list[list[Job]]:
    pages, cursor = [], None
    while True:
        page = store.list(limit=limit, cursor=cursor, **({"status": None, "operation": None} | filters))
        pages.append(page.jobs)
        if page.cursor is None:
            return pages
        assert len(pages) < 50, "the cursor does not advance"
        cursor = page.cursor


def newest_first(jobs: list[Job]) -> list[str]:
    return [job.job_id for job in sorted(jobs, key=lambda job: job.created_at, reverse=True)]


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"status": JobStatus.RUNNING},
        {"operation": OTHER_OPERATION},
        {"status": JobStatus.RUNNING, "operation": OPERATION},
        {"status": JobStatus.SUCCEEDED, "operation": OTHER_OPERATION},
        {"account": "acme"},
        {"status": JobStatus.RUNNING, "account": "acme"},
        {"operation": OPERATION, "account": "default"},
        {"status": JobStatus.RUNNING, "operation": OPERATION, "account": "acme"},
    ],
    ids=[
        "all",
        "status",
        "operation",
        "status and operation",
        "status and rare operation",
        "account",
        "status and account",
        "operation and account",
        "every filter",
    ],
)
@pytest.mark.parametrize("limit", [1, 3, 50])
def test_listing_pages_through_every_match_newest_first_once(
    listed: tuple[JobStore, list[Job]], filters: dict[str, Any], limit: int
) -> None:
    store, jobs = listed
    expected = newest_first([job for job in jobs if all(getattr(job, name) == value for name, value in filters.items())])

    pages = all_pages(store, limit, **filters)

    assert all(len(page) <= limit for page in pages)
    assert [job.job_id for page in pages for job in page] == expected


def test_a_listing_returns_whole_jobs(store: JobStore) -> None:
    job = submitted(store, params={"ratio": 0.5}, task_token="token-1")

    assert store.list(status=None, operation=None, limit=10, cursor=None).jobs == [job]


def test_an_empty_listing_has_no_cursor(store: JobStore) -> None:
    page = store.list(status=JobStatus.RUNNING, operation=None, limit=10, cursor=None)

    assert (page.jobs, page.cursor) == ([], None)


@pytest.mark.parametrize("cursor", [{"nonsense": "x"}, {}, "not a dict", 42], ids=repr)
def test_a_malformed_cursor_is_an_invalid_request(listed: tuple[JobStore, list[Job]], cursor: Any) -> None:
    store, _ = listed

    with pytest.raises(InvalidRequest, match="next token is not valid"):
        store.list(status=None, operation=None, limit=2, cursor=cursor)
