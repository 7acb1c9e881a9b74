"""What only the DynamoDB job store has: its item layout, TTLs, cursors and DynamoDB's own failure
modes. The behaviour it shares with the fake is in test_jobstore_contract.py."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.domain.errors import InvalidRequest
from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.domain.status import JobStatus
from tests.integration.aws_env import create_jobs_table, mocked_aws, template_properties, wired

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)
DAY = 24 * 3600


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        yield boto3.client("dynamodb")


@pytest.fixture
def table(dynamodb: Any) -> str:
    return create_jobs_table(dynamodb)


@pytest.fixture
def store(dynamodb: Any, table: str) -> DynamoJobStore:
    return DynamoJobStore(table, dynamodb, retention_days=30, clock=lambda: NOW)


def make_job(job_id: str = "job-1", **fields: Any) -> Job:
    values: dict[str, Any] = {
        "operation": "pinpointe.list_subscribers",
        "vendor": "pinpointe",
        "created_at": T0,
        "updated_at": T0,
        "deadline_at": T0 + timedelta(hours=12),
    }
    return Job(job_id=job_id, **(values | fields))


def event(name: str) -> TimelineEvent:
    return TimelineEvent(at=T0 + timedelta(minutes=1, microseconds=250), event=name, detail={"ratio": 0.5})


def items(dynamodb: Any, table: str, job_id: str = "job-1") -> list[dict[str, Any]]:
    answer = dynamodb.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}}
    )
    return answer["Items"]


def test_the_table_is_the_templates(dynamodb: Any, table: str) -> None:
    described = dynamodb.describe_table(TableName=table)["Table"]
    declared = template_properties("JobsTable")

    assert described["KeySchema"] == declared["KeySchema"]
    assert {index["IndexName"] for index in described["GlobalSecondaryIndexes"]} == {
        "by_created",
        "by_status",
        "by_operation",
        "by_account",
    }


def test_item_layout_of_a_job_and_its_event(store: DynamoJobStore, dynamodb: Any, table: str) -> None:
    job = make_job(task_token="token-1", webhook_token_sha256="ab" * 32, polls=2, params={"limit": 10})
    store.create(job, event("submitted"))

    event_item, job_item = items(dynamodb, table)  # in key order: "EVT#..." < "JOB"

    assert {name: job_item[name] for name in ("pk", "sk", "kind", "created_key", "status", "operation", "version")} == {
        "pk": {"S": "JOB#job-1"},
        "sk": {"S": "JOB"},
        "kind": {"S": "job"},
        # fixed width: text order is time order, whatever the precision of created_at
        "created_key": {"S": "2025-03-01T09:00:00.000000Z#job-1"},
        "status": {"S": "SUBMITTED"},
        "operation": {"S": "pinpointe.list_subscribers"},
        "version": {"N": "1"},
    }
    assert job_item["task_token"] == {"S": "token-1"}
    assert job_item["webhook_token_sha256"] == {"S": "ab" * 32}
    assert job_item["polls"] == {"N": "2"}
    assert job_item["params"] == {"M": {"limit": {"N": "10"}}}
    assert "expires_at" not in job_item  # an active job never expires

    assert event_item["sk"]["S"].startswith("EVT#2025-03-01T09:01:00.000250Z#")
    assert {name: event_item[name] for name in ("kind", "event", "detail")} == {
        "kind": {"S": "event"},
        "event": {"S": "submitted"},
        "detail": {"M": {"ratio": {"N": "0.5"}}},
    }
    # kept past the job item's own expiry: retention (30 days) after a job ends, plus slack
    assert int(event_item["expires_at"]["N"]) == int(NOW.timestamp()) + 60 * DAY


def test_a_job_expires_retention_days_after_it_ends(store: DynamoJobStore, dynamodb: Any, table: str) -> None:
    store.create(make_job(status=JobStatus.RUNNING), event("submitted"))

    store.transition("job-1", JobStatus.FAILED, event("failed"))

    job_item = next(item for item in items(dynamodb, table) if item["sk"]["S"] == "JOB")
    assert int(job_item["expires_at"]["N"]) == int(NOW.timestamp()) + 30 * DAY


def test_a_cursor_from_another_listing_is_refused(store: DynamoJobStore) -> None:
    for number in range(3):
        store.create(make_job(f"job-{number}", created_at=T0 + timedelta(minutes=number)), event("submitted"))
    cursor = store.list(status=None, operation=None, limit=1, cursor=None).cursor
    assert cursor is not None

    with pytest.raises(InvalidRequest):
        store.list(status=JobStatus.SUBMITTED, operation=None, limit=1, cursor=cursor)
    with pytest.raises(InvalidRequest):
        store.list(status=None, operation=None, limit=1, cursor=cursor | {"sk": "EVT#x"})


def test_a_filtered_listing_reads_on_until_the_page_is_full(dynamodb: Any, table: str) -> None:
    """With a small read size the filter empties whole DynamoDB pages; the store keeps reading."""
    store = DynamoJobStore(table, dynamodb, filtered_page_size=1)
    for minute in range(12):
        operation = "which50.contact_import" if minute % 4 == 0 else "pinpointe.list_subscribers"
        created_at = T0 + timedelta(minutes=minute)
        store.create(
            make_job(f"job-{minute:02d}", status=JobStatus.RUNNING, operation=operation, created_at=created_at),
            event("submitted"),
        )

    first = store.list(status=JobStatus.RUNNING, operation="which50.contact_import", limit=2, cursor=None)
    second = store.list(status=JobStatus.RUNNING, operation="which50.contact_import", limit=2, cursor=first.cursor)

    assert [job.job_id for job in first.jobs + second.jobs] == ["job-08", "job-04", "job-00"]
    assert second.cursor is None


class CancellingClient:
    """The DynamoDB client, except that its next transactions are cancelled for the given reasons
    (one list of cancellation codes per transaction), as DynamoDB does under contention."""

    def __init__(self, client: Any, *cancellations: list[str]):
        self._client = client
        self.cancellations = list(cancellations)
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        self.attempts += 1
        if self.cancellations:
            reasons = [{"Code": code} for code in self.cancellations.pop(0)]
            error = {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons}
            raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]
        return self._client.transact_write_items(**request)


CONFLICT = ["TransactionConflict", "None"]


def test_a_transaction_conflict_is_retried_and_the_guard_decides(dynamodb: Any, table: str) -> None:
    DynamoJobStore(table, dynamodb).create(make_job(status=JobStatus.RUNNING), event("submitted"))
    cancelling = CancellingClient(dynamodb, CONFLICT)
    store = DynamoJobStore(table, cancelling)

    assert store.transition("job-1", JobStatus.COLLECTING, event("collecting")).changed
    cancelling.cancellations.append(CONFLICT)
    assert not store.transition("job-1", JobStatus.COLLECTING, event("collecting again")).changed
    assert [e.event for e in store.timeline("job-1")] == ["submitted", "collecting"]


@pytest.mark.parametrize(
    ("cancellations", "attempts"),
    [([["ThrottlingError", "None"]], 1), ([CONFLICT, CONFLICT, CONFLICT], 3)],
    ids=["throttled", "conflicts persist"],
)
def test_other_cancellations_are_raised(dynamodb: Any, table: str, cancellations: list[list[str]], attempts: int) -> None:
    DynamoJobStore(table, dynamodb).create(make_job(status=JobStatus.RUNNING), event("submitted"))
    cancelling = CancellingClient(dynamodb, *cancellations)

    with pytest.raises(ClientError, match="TransactionCanceledException"):
        DynamoJobStore(table, cancelling).transition("job-1", JobStatus.COLLECTING, event("collecting"))
    assert cancelling.attempts == attempts


def test_wiring_builds_the_store_on_the_table_with_the_retention(dynamodb: Any, table: str) -> None:
    with wired({"JOBS_TABLE": table, "RESULTS_BUCKET": "b", "EVENT_BUS_NAME": "e", "RETENTION_DAYS": "7"}) as wiring:
        store = wiring.job_store()
    store.create(make_job(status=JobStatus.RUNNING), event("submitted"))

    store.transition("job-1", JobStatus.CANCELLED, event("cancelled"))

    job_item = next(item for item in items(dynamodb, table) if item["sk"]["S"] == "JOB")
    assert abs(int(job_item["expires_at"]["N"]) - (time.time() + 7 * DAY)) < 60
