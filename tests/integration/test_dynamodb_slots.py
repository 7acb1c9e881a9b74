"""Concurrency slots on the template's JobsTable under moto: the limit holds, a lease frees itself
when it expires, a release frees exactly its holder's slot, and every lease is listed from the
by_created index (what the sweeper reads); jobs listings are not disturbed by slot items, nor slots
by the queue that shares their partition. The behaviour any Slots has runs against the in-memory
fake too (tests/fakes.py), so it cannot drift from the adapter."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.adapters.dynamodb_slot_queue import DynamoSlotQueue
from jobrelay.adapters.dynamodb_slots import DynamoSlots
from jobrelay.domain.slot_queue import ParkedJob
from jobrelay.ports import Slots
from tests.fakes import InMemorySlots
from tests.integration.aws_env import create_jobs_table, mocked_aws

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        yield boto3.client("dynamodb")


@pytest.fixture
def table(dynamodb: Any) -> str:
    return create_jobs_table(dynamodb)


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["dynamodb", "memory"])
def slots(request: pytest.FixtureRequest, clock: Clock) -> Slots:
    if request.param == "memory":
        return InMemorySlots(clock=clock)
    return DynamoSlots(request.getfixturevalue("table"), request.getfixturevalue("dynamodb"), clock=clock)


def test_a_pool_holds_no_more_than_its_limit(slots):
    taken = [slots.acquire("which50#default", f"job-{n}", 2, NOW + HOUR) for n in range(4)]
    assert taken == [True, True, False, False]
    assert sorted(lease.holder for lease in slots.leases("which50#default")) == ["job-0", "job-1"]
    assert slots.acquire("which50#other", "job-9", 2, NOW + HOUR)  # pools are separate


class Interleaved:
    """A DynamoDB client whose first put_item lets a rival job's acquire run first, between our
    read of the slots and our conditional put: the race a real table decides with the condition.
    (moto's conditional writes are not atomic across threads, so threads cannot stage this race.)"""

    def __init__(self, client: Any, rival: Any):
        self._client, self._rival, self._raced = client, rival, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_item(self, **request: Any) -> Any:
        if not self._raced:
            self._raced = True
            self._rival()
        return self._client.put_item(**request)


def test_a_slot_taken_between_our_read_and_our_put_is_not_taken_twice(dynamodb, table, clock):
    rival = DynamoSlots(table, dynamodb, clock=clock)
    ours = DynamoSlots(table, Interleaved(dynamodb, lambda: rival.acquire("p", "job-rival", 2, NOW + HOUR)), clock=clock)

    assert ours.acquire("p", "job-ours", 2, NOW + HOUR)  # lost slot 0 to the rival, took slot 1

    assert sorted(lease.holder for lease in ours.leases("p")) == ["job-ours", "job-rival"]
    assert not DynamoSlots(table, dynamodb, clock=clock).acquire("p", "job-late", 2, NOW + HOUR)


def test_the_last_slot_goes_to_one_of_two_racing_jobs(dynamodb, table, clock):
    rival = DynamoSlots(table, dynamodb, clock=clock)
    ours = DynamoSlots(table, Interleaved(dynamodb, lambda: rival.acquire("p", "job-rival", 1, NOW + HOUR)), clock=clock)

    assert not ours.acquire("p", "job-ours", 1, NOW + HOUR)
    assert [lease.holder for lease in ours.leases("p")] == ["job-rival"]


def test_acquire_is_idempotent_for_its_holder_and_release_frees_only_its_slot(slots):
    assert slots.acquire("p", "job-a", 2, NOW + HOUR) and slots.acquire("p", "job-a", 2, NOW + HOUR)
    assert slots.acquire("p", "job-b", 2, NOW + HOUR)
    slots.release("p", "job-a")
    slots.release("p", "job-a")  # twice is fine
    slots.release("p", "job-z")  # a job that never held one
    assert [lease.holder for lease in slots.leases("p")] == ["job-b"]
    assert slots.acquire("p", "job-c", 2, NOW + HOUR)


def test_an_expired_lease_frees_its_slot(slots, clock):
    assert slots.acquire("p", "job-a", 1, NOW + HOUR)
    assert not slots.acquire("p", "job-b", 1, NOW + HOUR)
    clock.now = NOW + 2 * HOUR
    assert slots.leases("p") == [] and slots.acquire("p", "job-b", 1, NOW + 3 * HOUR)
    slots.release("p", "job-a")  # the old holder's late release does not free the new holder's slot
    assert [lease.holder for lease in slots.leases("p")] == ["job-b"]


def test_every_lease_is_listed_and_job_listings_ignore_slots(dynamodb, table, clock):
    slots = DynamoSlots(table, dynamodb, clock=clock)
    slots.acquire("a#default", "job-1", 1, NOW + HOUR)
    slots.acquire("b#default", "job-2", 1, NOW + HOUR)
    assert sorted((lease.pool, lease.holder) for lease in slots.leases()) == [("a#default", "job-1"), ("b#default", "job-2")]
    store = DynamoJobStore(table, dynamodb, clock=lambda: NOW)
    assert store.list(status=None, operation=None, limit=10, cursor=None).jobs == []


def test_jobs_parked_in_a_pools_partition_take_no_slot_and_list_no_lease(dynamodb, table, clock):
    slots, queue = DynamoSlots(table, dynamodb, clock=clock), DynamoSlotQueue(table, dynamodb, clock=clock)
    for n in range(3):
        queue.park(
            ParkedJob(
                pool="p", job_id=f"job-q{n}", submitted_at=NOW, task_token=f"t{n}", limit=1, parked_at=NOW, until=NOW + HOUR
            )
        )

    assert slots.leases("p") == [] and slots.leases() == []
    assert slots.acquire("p", "job-a", 1, NOW + HOUR) and not slots.acquire("p", "job-b", 1, NOW + HOUR)
    slots.release("p", "job-a")
    assert len(queue.parked("p")) == 3  # a release takes out no queued job
    store = DynamoJobStore(table, dynamodb, clock=lambda: NOW)
    assert store.list(status=None, operation=None, limit=10, cursor=None).jobs == []
