"""The cost benchmark's meter (bench/metering.py) on moto: DynamoDB request units worked out from the
real items, by AWS's documented rules, for the job store's own writes and reads."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from bench.metering import Meter, Usage
from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.domain.status import JobStatus
from tests.integration.aws_env import create_jobs_table, mocked_aws


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoJobStore]:
    with mocked_aws(monkeypatch):
        client = boto3.client("dynamodb")
        yield DynamoJobStore(create_jobs_table(client), client)


def metered(work: Any) -> Usage:
    meter = Meter()
    with meter.on():
        work()
    return meter.outside


def test_the_meter_prices_a_jobs_writes_and_reads_from_the_items_themselves(store: DynamoJobStore) -> None:
    now = datetime.now(UTC)
    job = Job(job_id="job_1", operation="pinpointe.list_subscribers", vendor="pinpointe", deadline_at=now + timedelta(hours=1))

    created = metered(lambda: store.create(job, TimelineEvent(event="submitted")))
    started = metered(lambda: store.transition("job_1", JobStatus.STARTING, TimelineEvent(event="starting")))
    read = metered(lambda: store.get("job_1"))

    # A transaction of two items under 1 KB: 2 units each. The job is in the four indexes.
    assert (created.write_units, created.index_write_units) == (2 * 2 + 4, 4)
    # The status moved: by_status deletes and puts; by_created and by_operation (ALL) rewrite it;
    # by_account (keys, status, operation) rewrites it. Then the job is read back, consistently.
    assert (started.write_units, started.index_write_units) == (2 * 2 + 5, 5)
    assert (started.read_units, read.read_units) == (1, 1)


def test_a_filtered_query_is_billed_for_every_item_it_read(store: DynamoJobStore) -> None:
    now = datetime.now(UTC)
    for n in range(30):
        job = Job(
            job_id=f"job_{n:02d}",
            operation="pinpointe.list_subscribers" if n else "which50.contact_import",
            vendor="pinpointe",
            status=JobStatus.SUCCEEDED,
            created_at=now - timedelta(minutes=n),
            deadline_at=now + timedelta(hours=1),
        )
        store.create(job, TimelineEvent(event="submitted"))

    usage = metered(lambda: store.list(status=JobStatus.SUCCEEDED, operation="which50.contact_import", limit=5, cursor=None))

    assert usage.items_read == 30  # one match, the oldest: every job was read to find it
