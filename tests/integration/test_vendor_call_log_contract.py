"""The VendorCallLog contract, run against DynamoVendorCallLog (under moto) and InMemoryVendorCallLog
alike, so the fake the service tests use cannot drift from the adapter the functions use; and what
the log's items are beside the job's own in the jobs table."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.adapters.dynamodb_vendor_calls import DynamoVendorCallLog
from jobrelay.domain.errors import InvalidRequest
from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.domain.vendor_calls import BodySummary, VendorCall
from jobrelay.ports import VendorCallLog
from tests.fakes import InMemoryVendorCallLog
from tests.integration.aws_env import create_jobs_table, mocked_aws

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        yield boto3.client("dynamodb")


@pytest.fixture(params=["dynamodb", "memory"])
def log(request: pytest.FixtureRequest) -> VendorCallLog:
    if request.param == "memory":
        return InMemoryVendorCallLog()
    client = request.getfixturevalue("dynamodb")
    return DynamoVendorCallLog(create_jobs_table(client), client, clock=lambda: T0)


def call(seconds: float, path: str = "/api", **fields: Any) -> VendorCall:
    values: dict[str, Any] = {
        "at": T0 + timedelta(seconds=seconds),
        "direction": "out",
        "step": "poll",
        "method": "GET",
        "host": "vendor.test",
        "path": path,
        "status": 200,
        "latency_ms": 12.5,
        "duration_ms": 13.0,
        "request_headers": {"authorization": "***"},
        "response": BodySummary(size=10, sha256="a" * 64, content_type="application/json", excerpt='{"ok": true}'),
    }
    return VendorCall(**(values | fields))


def test_calls_read_back_whole_oldest_first_whatever_order_they_were_written(log: VendorCallLog) -> None:
    written = [call(3, "/c"), call(1, "/a", error="ReadTimeout", status=None, response=None), call(2, "/b", query="x=1")]
    for entry in written:
        log.record("job-1", entry)
    log.record("job-2", call(0, "/other"))

    assert list(log.all("job-1")) == sorted(written, key=lambda entry: entry.at)
    assert [entry.path for entry in log.all("job-2")] == ["/other"]
    assert list(log.all("job-3")) == []


def test_calls_at_the_same_moment_stay_in_the_order_they_were_written(log: VendorCallLog) -> None:
    for n in range(5):
        log.record("job-1", call(1, f"/{n}"))
    assert [entry.path for entry in log.all("job-1")] == [f"/{n}" for n in range(5)]


def test_pages_cover_every_call_once_and_the_last_has_no_cursor(log: VendorCallLog) -> None:
    for n in range(7):
        log.record("job-1", call(n, f"/{n}"))
    seen, cursor, pages = [], None, 0
    while True:
        page = log.page("job-1", limit=3, cursor=cursor)
        seen += [entry.path for entry in page.calls]
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == [f"/{n}" for n in range(7)] and pages == 3

    exact = log.page("job-1", limit=7, cursor=None)
    assert len(exact.calls) == 7 and exact.cursor is None  # no empty page after an exact fit
    empty = log.page("job-9", limit=3, cursor=None)
    assert empty.calls == [] and empty.cursor is None


@pytest.mark.parametrize("cursor", [{}, {"sk": "EVT#2025"}, {"position": "x"}, {"sk": 1}, {"a": 1, "b": 2}])
def test_a_cursor_the_log_did_not_make_is_refused(log: VendorCallLog, cursor: dict[str, Any]) -> None:
    log.record("job-1", call(1))
    with pytest.raises(InvalidRequest):
        log.page("job-1", limit=3, cursor=cursor)


def test_call_items_live_in_the_jobs_partition_without_touching_its_timeline_or_listings(dynamodb: Any) -> None:
    table = create_jobs_table(dynamodb)
    store = DynamoJobStore(table, dynamodb, clock=lambda: T0, retention_days=10)
    calls = DynamoVendorCallLog(table, dynamodb, clock=lambda: T0, retention_days=10)
    job = Job(
        job_id="job-1",
        operation="pinpointe.list_subscribers",
        vendor="pinpointe",
        created_at=T0,
        updated_at=T0,
        deadline_at=T0 + timedelta(hours=1),
    )
    store.create(job, TimelineEvent(at=T0, event="submitted"))
    calls.record("job-1", call(1))

    assert [event.event for event in store.timeline("job-1")] == ["submitted"]
    assert [listed.job_id for listed in store.list(status=None, operation=None, limit=10, cursor=None).jobs] == ["job-1"]
    items = dynamodb.scan(TableName=table)["Items"]
    (item,) = [item for item in items if item["sk"]["S"].startswith("CALL#")]
    assert item["pk"]["S"] == "JOB#job-1" and item["kind"]["S"] == "call"
    # Kept as long as the job's timeline events: the retention after the job ends, with their slack.
    assert int(item["expires_at"]["N"]) == int((T0 + timedelta(days=40)).timestamp())
