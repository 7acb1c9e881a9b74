"""The SlotQueue contract, run against DynamoSlotQueue (under moto, on the template's JobsTable) and
InMemorySlotQueue alike, so the fake the service tests use cannot drift from the adapter: a pool's
queue in submission order, one entry per job that parking again replaces, exactly one of two
wakers winning a job, and a stale token never taking out a job that parked again."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from jobrelay.adapters.dynamodb_slot_queue import DynamoSlotQueue
from jobrelay.domain.slot_queue import ParkedJob
from jobrelay.ports import SlotQueue
from tests.fake_slot_queue import InMemorySlotQueue
from tests.integration.aws_env import create_jobs_table, mocked_aws

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
POOL = "which50#default"


class Clock:
    def __init__(self):
        self.now = T0 + HOUR

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        yield boto3.client("dynamodb")


@pytest.fixture(params=["dynamodb", "memory"])
def queue(request: pytest.FixtureRequest, clock: Clock) -> SlotQueue:
    if request.param == "memory":
        return InMemorySlotQueue(clock=clock)
    client = request.getfixturevalue("dynamodb")  # moto starts only for the DynamoDB half
    return DynamoSlotQueue(create_jobs_table(client), client, clock=clock)


def entry(job_id: str, submitted_minute: int, *, pool: str = POOL, token: str | None = None, **fields: Any) -> ParkedJob:
    values: dict[str, Any] = {
        "pool": pool,
        "job_id": job_id,
        "submitted_at": T0 + timedelta(minutes=submitted_minute, microseconds=123456),
        "task_token": token or f"token-{job_id}",
        "limit": 2,
        "parked_at": T0 + HOUR,
        "until": T0 + 13 * HOUR,  # whole seconds: DynamoDB keeps the TTL in epoch seconds
    }
    return ParkedJob(**(values | fields))


def test_a_pools_queue_reads_back_whole_in_submission_order_whatever_order_jobs_parked_in(queue: SlotQueue) -> None:
    late, early, same_time_later_id = entry("job-b", 5), entry("job-c", 1), entry("job-d", 5)
    for parked in (same_time_later_id, late, early):
        queue.park(parked)

    assert queue.parked(POOL) == [early, late, same_time_later_id]  # time first, then the job id


def test_pools_are_separate_and_every_pool_is_listed(queue: SlotQueue) -> None:
    ours, theirs = entry("job-1", 1), entry("job-2", 2, pool="which50#other")
    queue.park(ours)
    queue.park(theirs)

    assert queue.parked(POOL) == [ours] and queue.parked("which50#other") == [theirs]
    assert sorted(queue.parked(), key=lambda e: e.job_id) == [ours, theirs]


def test_parking_again_replaces_the_token_and_the_wake_up_mark_and_keeps_the_place(queue: SlotQueue) -> None:
    first, second = entry("job-1", 1), entry("job-2", 2)
    queue.park(first)
    queue.park(second)
    assert queue.claim_wake(first, T0 + HOUR)

    again = entry("job-1", 1, token="token-job-1-again", parked_at=T0 + 2 * HOUR)
    queue.park(again)

    assert queue.parked(POOL) == [again, second]  # one entry, not woken, still first


def test_of_two_wakers_who_read_the_same_entry_exactly_one_wins(queue: SlotQueue) -> None:
    queue.park(entry("job-1", 1))
    (seen_by_one,) = (seen_by_other,) = queue.parked(POOL)

    assert queue.claim_wake(seen_by_one, T0 + HOUR) is True
    assert queue.claim_wake(seen_by_other, T0 + HOUR) is False
    (woken,) = queue.parked(POOL)
    assert woken.woken_at == T0 + HOUR


def test_a_woken_entry_can_be_claimed_again_only_from_a_read_of_its_wake_up(queue: SlotQueue) -> None:
    queue.park(entry("job-1", 1))
    (unwoken,) = queue.parked(POOL)
    queue.claim_wake(unwoken, T0 + HOUR)
    (woken,) = queue.parked(POOL)

    assert queue.claim_wake(unwoken, T0 + 2 * HOUR) is False  # an old read
    assert queue.claim_wake(woken, T0 + 2 * HOUR) is True  # the wake-up offered again
    assert queue.parked(POOL)[0].woken_at == T0 + 2 * HOUR


def test_a_claim_for_a_token_the_job_no_longer_waits_on_fails(queue: SlotQueue) -> None:
    old = entry("job-1", 1)
    queue.park(old)
    queue.park(entry("job-1", 1, token="token-new"))

    assert queue.claim_wake(old, T0 + HOUR) is False
    assert queue.claim_wake(entry("job-gone", 3), T0 + HOUR) is False  # never parked


def test_leaving_takes_the_job_out_once(queue: SlotQueue) -> None:
    parked = entry("job-1", 1)
    queue.park(parked)

    assert queue.leave(POOL, "job-1", parked.submitted_at) is True
    assert queue.leave(POOL, "job-1", parked.submitted_at) is False
    assert queue.parked(POOL) == []


def test_leaving_with_a_stale_token_keeps_the_job_that_parked_again(queue: SlotQueue) -> None:
    stale = entry("job-1", 1)
    queue.park(stale)
    current = entry("job-1", 1, token="token-current")
    queue.park(current)

    assert queue.leave(POOL, "job-1", stale.submitted_at, task_token=stale.task_token) is False
    assert queue.parked(POOL) == [current]
    assert queue.leave(POOL, "job-1", current.submitted_at, task_token=current.task_token) is True
    assert queue.parked(POOL) == []


def test_an_entry_past_its_end_is_not_listed(queue: SlotQueue, clock: Clock) -> None:
    short, long = entry("job-1", 1, until=T0 + 2 * HOUR), entry("job-2", 2)
    queue.park(short)
    queue.park(long)
    clock.now = T0 + 3 * HOUR

    assert queue.parked(POOL) == [long] and queue.parked() == [long]
