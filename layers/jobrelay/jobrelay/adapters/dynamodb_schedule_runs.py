"""A schedule's runs on DynamoDB, in template.yaml's JobsTable beside the jobs.

Item layout (see dynamodb_jobs for the jobs'):

  run  pk="SCHEDULE#<name>"  sk="RUN#<scheduled time>"  kind="schedule_run"
       scheduled_time, fired_at, job_id (absent when no job was submitted), error, expires_at (TTL)

One item per scheduled time, so a redelivered run overwrites its own item. Runs carry no
created_key, so they are in none of the indexes. The job's status is not copied here: it is read
from the job when the runs are shown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobrelay.domain.job import JobError, utcnow
from jobrelay.domain.schedule import ScheduleRun

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUN_KIND = "schedule_run"
_PK_PREFIX = "SCHEDULE#"
_SK_PREFIX = "RUN#"


class DynamoScheduleRuns:
    def __init__(
        self, table_name: str, client: DynamoDBClient, *, retention_days: int = 90, clock: Callable[[], datetime] = utcnow
    ):
        self._table = table_name
        self._client = client
        self._retention = timedelta(days=retention_days)
        self._clock = clock

    def record(self, schedule: str, run: ScheduleRun) -> None:
        item: dict[str, Any] = {
            "pk": {"S": _PK_PREFIX + schedule},
            "sk": {"S": _SK_PREFIX + _sortable(run.scheduled_time)},
            "kind": {"S": RUN_KIND},
            "scheduled_time": {"S": run.scheduled_time.isoformat()},
            "fired_at": {"S": run.fired_at.isoformat()},
            "expires_at": {"N": str(int((self._clock() + self._retention).timestamp()))},
        }
        if run.job_id is not None:
            item["job_id"] = {"S": run.job_id}
        if run.error is not None:
            item["error"] = {"M": {"code": {"S": run.error.code}, "message": {"S": run.error.message}}}
        self._client.put_item(TableName=self._table, Item=item)

    def latest(self, schedule: str, limit: int, since: datetime | None = None) -> list[ScheduleRun]:
        lowest = _SK_PREFIX + (_sortable(since) if since is not None else "")
        answer = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": _PK_PREFIX + schedule},
                ":low": {"S": lowest},
                ":high": {"S": _SK_PREFIX + "~"},  # "~" sorts after every digit
            },
            ScanIndexForward=False,  # newest first
            Limit=limit,
            ConsistentRead=True,
        )
        return [_run(item) for item in answer["Items"]]


def _run(item: dict[str, Any]) -> ScheduleRun:
    error = item.get("error", {}).get("M")
    return ScheduleRun(
        scheduled_time=datetime.fromisoformat(item["scheduled_time"]["S"]),
        fired_at=datetime.fromisoformat(item["fired_at"]["S"]),
        job_id=item["job_id"]["S"] if "job_id" in item else None,
        error=JobError(code=error["code"]["S"], message=error["message"]["S"]) if error else None,
    )


def _sortable(moment: datetime) -> str:
    """Fixed-width UTC time, so that text order is time order (as dynamodb_jobs keys it)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
