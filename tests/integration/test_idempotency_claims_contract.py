"""The JobStore's Idempotency-Key claims, run against DynamoJobStore (under moto) and InMemoryJobStore
alike, as tests/integration/test_jobstore_contract.py runs the rest of the contract: a claim is
written with its job or not at all, and a live claim keeps every other job off its key."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.domain.errors import IdempotencyKeyTaken, JobConflict
from jobrelay.domain.idempotency import IDEMPOTENCY_WINDOW, IdempotencyClaim, IdempotentRequest
from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.ports import JobStore
from tests.fakes import InMemoryJobStore
from tests.integration.aws_env import create_jobs_table, mocked_aws

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
REQUEST = IdempotentRequest.of("default", "nightly-1", {"operation": "pinpointe.list_subscribers", "params": {"list": 7}})


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        yield boto3.client("dynamodb")


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest, clock: Clock) -> JobStore:
    if request.param == "memory":
        return InMemoryJobStore(clock=clock)
    client = request.getfixturevalue("dynamodb")  # moto starts only for the DynamoDB half
    return DynamoJobStore(create_jobs_table(client), client, clock=clock)


def job(job_id: str, account: str = "default") -> Job:
    return Job(
        job_id=job_id,
        operation="pinpointe.list_subscribers",
        vendor="pinpointe",
        account=account,
        created_at=T0,
        updated_at=T0,
        deadline_at=T0 + timedelta(hours=12),
    )


def submitted() -> TimelineEvent:
    return TimelineEvent(at=T0, event="submitted", detail={})


def test_a_claim_is_stored_with_its_job_and_found_by_its_account_and_key(store: JobStore) -> None:
    claim = REQUEST.claim("job-1", T0)

    store.create(job("job-1"), submitted(), claim)

    assert store.find_claim("default", "nightly-1") == claim
    assert claim.expires_at == T0 + IDEMPOTENCY_WINDOW
    assert store.get("job-1") is not None
    assert store.find_claim("default", "nightly-2") is None
    assert store.find_claim("other", "nightly-1") is None  # keys are per account


def test_a_live_claim_keeps_a_second_job_off_its_key_and_nothing_of_that_job_is_written(store: JobStore) -> None:
    first = REQUEST.claim("job-1", T0)
    store.create(job("job-1"), submitted(), first)
    other_body = IdempotentRequest.of("default", "nightly-1", {"operation": "pinpointe.list_subscribers"})

    with pytest.raises(IdempotencyKeyTaken) as taken:
        store.create(job("job-2"), submitted(), other_body.claim("job-2", T0))

    assert taken.value.claim == first  # the holder, with the fingerprint of what it asked
    assert store.get("job-2") is None and store.timeline("job-2") == []
    assert [j.job_id for j in store.list(status=None, operation=None, limit=10, cursor=None).jobs] == ["job-1"]


def test_the_same_key_in_another_account_is_another_claim(store: JobStore) -> None:
    store.create(job("job-1"), submitted(), REQUEST.claim("job-1", T0))
    elsewhere = IdempotentRequest.of("acme", REQUEST.key, {"operation": "pinpointe.list_subscribers", "params": {"list": 7}})

    store.create(job("job-2", account="acme"), submitted(), elsewhere.claim("job-2", T0))

    claim = store.find_claim("acme", REQUEST.key)
    assert claim is not None and claim.job_id == "job-2"
    claim = store.find_claim("default", REQUEST.key)
    assert claim is not None and claim.job_id == "job-1"


def test_an_expired_claim_is_none_and_the_key_can_be_claimed_again(store: JobStore, clock: Clock) -> None:
    store.create(job("job-1"), submitted(), REQUEST.claim("job-1", T0))
    clock.now = T0 + IDEMPOTENCY_WINDOW  # the moment it expires; DynamoDB's TTL has not removed it yet

    assert store.find_claim("default", REQUEST.key) is None
    again = REQUEST.claim("job-2", clock.now)
    store.create(job("job-2"), submitted(), again)
    assert store.find_claim("default", REQUEST.key) == again
    assert store.get("job-1") is not None  # the first job stays, only its claim is gone


def test_a_job_id_that_exists_is_a_conflict_and_leaves_the_key_free(store: JobStore) -> None:
    store.create(job("job-1"), submitted())

    with pytest.raises(JobConflict):
        store.create(job("job-1"), submitted(), REQUEST.claim("job-1", T0))

    assert store.find_claim("default", REQUEST.key) is None


def test_release_removes_a_claim_only_while_it_names_its_job(store: JobStore, clock: Clock) -> None:
    first = REQUEST.claim("job-1", T0)
    store.create(job("job-1"), submitted(), first)
    store.release(first)
    assert store.find_claim("default", REQUEST.key) is None
    store.release(first)  # twice is fine

    second = REQUEST.claim("job-2", T0)
    store.create(job("job-2"), submitted(), second)
    store.release(first)  # a stale holder cannot remove the claim that replaced it

    assert store.find_claim("default", REQUEST.key) == second


def test_claims_round_trip_whatever_the_key_holds(store: JobStore) -> None:
    key = "a#b/ü " + "k" * 240  # any text, up to the header's 255 characters
    request = IdempotentRequest.of("default", key, {"operation": "pinpointe.list_subscribers"})
    claim = request.claim("job-1", T0)

    store.create(job("job-1"), submitted(), claim)

    assert store.find_claim("default", key) == claim
    assert isinstance(store.find_claim("default", key), IdempotencyClaim)
    assert store.find_claim("default", key[:-1]) is None


def test_dynamodb_transactions_that_keep_conflicting_on_a_claimed_key_report_its_claim() -> None:
    """What moto never does: DynamoDB cancelling racing transactions on one item (TransactionConflict)
    every time the store tries. The claim that landed meanwhile is the answer, not an error."""
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    store = DynamoJobStore("jobs", client, clock=lambda: T0)
    held = REQUEST.claim("job-1", T0)
    conflict = [
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
        {"Code": "None"},
        {"Code": "None"},
    ]
    with Stubber(client) as stubbed:
        for _ in range(3):  # every attempt the store makes
            stubbed.add_client_error(
                "transact_write_items", "TransactionCanceledException", modeled_fields={"CancellationReasons": conflict}
            )
        claim_item = {
            "pk": {"S": "IDEMPOTENCY#x"},
            "sk": {"S": "CLAIM"},
            "account": {"S": "default"},
            "fingerprint": {"S": held.fingerprint},
            "job_id": {"S": "job-1"},
            "expires_at": {"N": str(int(held.expires_at.timestamp()))},
        }
        stubbed.add_response("get_item", {"Item": claim_item})

        with pytest.raises(IdempotencyKeyTaken) as taken:
            store.create(job("job-2"), submitted(), REQUEST.claim("job-2", T0))

    assert taken.value.claim == held
