"""What the sweeper and GET /jobs read from DynamoDB must grow with the open jobs or the page size,
never with every finished job the table keeps for its retention (90 days of them).

Counted on moto, on a table shaped as template.yaml declares it: the items each request reads,
as DynamoDB bills them (a Query's ScannedCount: every item it read, filtered out or not; each key a
BatchGetItem or GetItem asked for), with 100 and with 1,000 finished jobs beside the same open ones.
Never time."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.domain.job import Job
from jobrelay.domain.status import ACTIVE, JobStatus
from jobrelay.services.notices import Notices
from jobrelay.services.sweeper import Sweeper
from jobrelay.settings import Settings
from tests.fakes import FakeEventPublisher, FakeWorkflow, InMemorySecretStore
from tests.integration.aws_env import create_jobs_table, mocked_aws

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
COMMON, RARE = "pinpointe.list_subscribers", "which50.contact_import"
OPEN_PER_STATUS = 3  # in each of the four open statuses
OPEN_ACCOUNT = "eu"  # the open jobs' account; the finished ones are the default account's
# Small enough that 100 finished jobs already exceed it, so both tables show the cap.
PAGE_SIZE, READ_BUDGET = 20, 60


@dataclass
class CountingClient:
    """The DynamoDB client, counting the items each call reads as DynamoDB bills them."""

    client: Any
    items_read: int = 0
    calls: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def query(self, **request: Any) -> Any:
        answer = self.client.query(**request)
        self.calls.append(f"Query {request.get('IndexName', 'table')}")
        self.items_read += answer["ScannedCount"]
        return answer

    def batch_get_item(self, **request: Any) -> Any:
        self.calls.append("BatchGetItem")
        self.items_read += sum(len(wanted["Keys"]) for wanted in request["RequestItems"].values())
        return self.client.batch_get_item(**request)

    def get_item(self, **request: Any) -> Any:
        self.calls.append("GetItem")
        self.items_read += 1
        return self.client.get_item(**request)

    def scan(self, **request: Any) -> Any:
        raise AssertionError("a Scan reads every item of the table")

    def reset(self) -> None:
        self.items_read, self.calls = 0, []


@dataclass
class Table:
    store: DynamoJobStore
    counting: CountingClient
    open_jobs: int


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        yield boto3.client("dynamodb")


def filled(dynamodb: Any, finished: int, open_per_status: int = OPEN_PER_STATUS) -> Table:
    """A table with `finished` jobs of the default account (one in ten of them RARE, the rest COMMON),
    older than the open ones: `open_per_status` in each open status, of OPEN_ACCOUNT, half of them RARE."""
    table = create_jobs_table(dynamodb)
    writer = DynamoJobStore(table, dynamodb, clock=lambda: NOW)
    items: list[dict[str, Any]] = []
    number = 0

    def add(status: JobStatus, operation: str, account: str, age: timedelta) -> None:
        nonlocal number
        number += 1
        created = NOW - age
        job = Job(
            job_id=f"job_{number:05d}",
            operation=operation,
            vendor=operation.split(".")[0],
            account=account,
            status=status,
            created_at=created,
            updated_at=created,
            deadline_at=NOW + timedelta(hours=6),
            # Open jobs whose execution runs: the sweeper asks Step Functions, not DynamoDB, about them.
            execution_arn=None if status.is_terminal else FakeWorkflow().execution_arn(f"job_{number:05d}"),
        )
        # The job item exactly as the store writes it, written in batches: moto copies the whole table
        # for every transaction (to roll it back), so creating thousands of jobs one by one takes minutes.
        items.append(writer._job_item(job))

    for n in range(finished):
        add(JobStatus.SUCCEEDED, RARE if n % 10 == 0 else COMMON, "default", timedelta(days=30, minutes=-n))
    for status in sorted(ACTIVE):
        for n in range(open_per_status):
            add(status, RARE if n % 2 else COMMON, OPEN_ACCOUNT, timedelta(minutes=60 - n))
    for first in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[first : first + 25]]
        assert not dynamodb.batch_write_item(RequestItems={table: batch}).get("UnprocessedItems")
    counting = CountingClient(dynamodb)
    store = DynamoJobStore(table, counting, clock=lambda: NOW, filtered_page_size=PAGE_SIZE, filtered_read_budget=READ_BUDGET)
    return Table(store, counting, open_jobs=open_per_status * len(ACTIVE))


@pytest.fixture(scope="module")
def tables(dynamodb: Any) -> dict[int, Table]:
    return {finished: filled(dynamodb, finished) for finished in (100, 1000)}


def sweeper(table: Table) -> Sweeper:
    workflow = FakeWorkflow()
    workflow.started = [f"job_{n:05d}" for n in range(1, 2000)]  # every execution runs
    settings = Settings.model_validate({"JOBS_TABLE": "jobs", "RESULTS_BUCKET": "results", "EVENT_BUS_NAME": "bus"})
    notices = Notices(FakeEventPublisher(), InMemorySecretStore(), settings)
    return Sweeper(table.store, workflow, notices, now=lambda: NOW)


def swept(table: Table) -> int:
    table.counting.reset()
    report = sweeper(table).sweep()
    assert report.examined == table.open_jobs and not report.settled
    return table.counting.items_read


def test_the_sweeper_reads_each_open_job_once_however_many_have_finished(tables: dict[int, Table]) -> None:
    reads = {finished: swept(table) for finished, table in tables.items()}

    assert reads == {100: tables[100].open_jobs, 1000: tables[1000].open_jobs}
    assert all(call == "Query by_status" for call in tables[1000].counting.calls)  # no table scan, no other index


def test_the_sweepers_reads_grow_with_the_open_jobs(dynamodb: Any) -> None:
    more_open = filled(dynamodb, finished=100, open_per_status=10 * OPEN_PER_STATUS)

    assert swept(more_open) == 10 * OPEN_PER_STATUS * len(ACTIVE)


LISTINGS: dict[str, dict[str, Any]] = {
    "newest": {},
    "an open status": {"status": JobStatus.RUNNING},
    "a finished status": {"status": JobStatus.SUCCEEDED},
    "an operation": {"operation": RARE},
    "an account": {"account": OPEN_ACCOUNT},
    "an open status and an account": {"status": JobStatus.RUNNING, "account": OPEN_ACCOUNT},
    "an open status and an operation": {"status": JobStatus.STARTING, "operation": RARE},
    # No index is keyed on both: the rare matches are read through, under the read budget.
    "a finished status and a rare operation": {"status": JobStatus.SUCCEEDED, "operation": RARE},
    "a finished status and an account": {"status": JobStatus.SUCCEEDED, "account": "default"},
}


def listing_reads(table: Table, filters: dict[str, Any]) -> tuple[int, int]:
    """(items read, jobs returned) for the first page of 10."""
    table.counting.reset()
    page = table.store.list(limit=10, cursor=None, **({"status": None, "operation": None} | filters))
    return table.counting.items_read, len(page.jobs)


@pytest.mark.parametrize("filters", LISTINGS.values(), ids=LISTINGS.keys())
def test_a_listing_page_reads_the_same_with_ten_times_the_finished_jobs(
    tables: dict[int, Table], filters: dict[str, Any]
) -> None:
    (read_100, jobs_100), (read_1000, jobs_1000) = (listing_reads(tables[n], filters) for n in (100, 1000))

    assert read_1000 == read_100
    assert jobs_1000 == jobs_100
    assert read_1000 <= READ_BUDGET + 10  # the index page, plus the page's jobs where the index holds only keys


def test_an_account_listing_reads_only_that_accounts_jobs(tables: dict[int, Table]) -> None:
    table = tables[1000]

    read, returned = listing_reads(table, {"account": OPEN_ACCOUNT})

    assert returned == 10
    assert read == 10 + 10  # ten index entries, then those ten jobs from the table
    assert table.counting.calls == ["Query by_account", "BatchGetItem"]


def test_pages_cut_short_by_the_read_budget_still_list_every_match_once_newest_first(tables: dict[int, Table]) -> None:
    table = tables[1000]
    filters = {"status": JobStatus.SUCCEEDED, "operation": RARE}
    listed: list[Job] = []
    cursor = None
    pages = 0
    while True:
        table.counting.reset()
        page = table.store.list(limit=10, cursor=cursor, **filters)
        assert table.counting.items_read <= READ_BUDGET
        listed.extend(page.jobs)
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor

    assert len(listed) == 100  # one in ten of the 1,000 finished jobs
    assert [job.created_at for job in listed] == sorted((job.created_at for job in listed), reverse=True)
    assert len({job.job_id for job in listed}) == 100
    assert pages >= 1000 // READ_BUDGET  # each page read at most the budget
