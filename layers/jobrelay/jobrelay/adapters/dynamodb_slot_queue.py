"""The queue for concurrency slots on DynamoDB: template.yaml's JobsTable, in each pool's partition
beside its slots (adapters/dynamodb_slots).

Item layout:

  wait  pk="SLOTS#<pool>"  sk="WAIT#<submitted_at>#<job_id>"  kind="slot_wait"
        created_key="<submitted_at>#<job_id>", pool, job_id, submitted_at, task_token, limit,
        parked_at, woken_at (absent until woken), expires_at (epoch seconds: the entry's end, also
        the item's TTL)

The sort key is the job's place, so one consistent query reads a pool's queue in submission order
(timestamps in keys have a fixed width: text order is time order). Entries are in the by_created
index under kind "slot_wait", so the sweeper lists every pool's queue with one query; they carry no
status or operation, so job listings never see them. A job's entry is one item under a key made
of the job alone: parking again overwrites it in place.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from jobrelay.adapters.dynamodb_slots import query_all
from jobrelay.domain.job import utcnow
from jobrelay.domain.slot_queue import ParkedJob

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]

WAIT_KIND = "slot_wait"
_PK_PREFIX = "SLOTS#"  # the pool's partition, shared with its slots
_SK_PREFIX = "WAIT#"


class DynamoSlotQueue:
    def __init__(self, table_name: str, client: DynamoDBClient, *, clock: Callable[[], datetime] = utcnow):
        self._table = table_name
        self._client = client
        self._clock = clock

    def park(self, parked: ParkedJob) -> None:
        place = f"{_sortable(parked.submitted_at)}#{parked.job_id}"
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": _PK_PREFIX + parked.pool},
                "sk": {"S": _SK_PREFIX + place},
                "kind": {"S": WAIT_KIND},
                "created_key": {"S": place},
                "pool": {"S": parked.pool},
                "job_id": {"S": parked.job_id},
                "submitted_at": {"S": parked.submitted_at.isoformat()},
                "task_token": {"S": parked.task_token},
                "limit": {"N": str(parked.limit)},
                "parked_at": {"S": parked.parked_at.isoformat()},
                "expires_at": {"N": str(int(parked.until.timestamp()))},
            },
        )

    def parked(self, pool: str | None = None) -> list[ParkedJob]:
        if pool is None:
            items = self._query("kind = :kind", {":kind": {"S": WAIT_KIND}}, index="by_created")
        else:
            items = self._query(
                "pk = :pk AND begins_with(sk, :wait)",
                {":pk": {"S": _PK_PREFIX + pool}, ":wait": {"S": _SK_PREFIX}},
                consistent=True,  # a wake-up must see the job that parked a moment ago
            )
        now = self._clock()
        return [entry for entry in map(_parked, items) if entry.until > now]  # TTL deletes lag

    def claim_wake(self, parked: ParkedJob, at: datetime) -> bool:
        values: Item = {":token": {"S": parked.task_token}, ":at": {"S": at.isoformat()}}
        if parked.woken_at is None:
            unchanged = "task_token = :token AND attribute_not_exists(woken_at)"
        else:
            unchanged = "task_token = :token AND woken_at = :was"
            values[":was"] = {"S": parked.woken_at.isoformat()}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(parked.pool, parked.job_id, parked.submitted_at),
                UpdateExpression="SET woken_at = :at",
                ConditionExpression=f"attribute_exists(pk) AND {unchanged}",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False  # woken by someone else, parked again, or gone
            raise
        return True

    def leave(self, pool: str, job_id: str, submitted_at: datetime, *, task_token: str | None = None) -> bool:
        key = self._key(pool, job_id, submitted_at)
        try:
            if task_token is None:
                self._client.delete_item(TableName=self._table, Key=key, ConditionExpression="attribute_exists(pk)")
            else:
                self._client.delete_item(
                    TableName=self._table,
                    Key=key,
                    ConditionExpression="attribute_exists(pk) AND task_token = :token",
                    ExpressionAttributeValues={":token": {"S": task_token}},
                )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False  # not in the queue, or parked again with another token
            raise
        return True

    def _key(self, pool: str, job_id: str, submitted_at: datetime) -> Item:
        return {"pk": {"S": _PK_PREFIX + pool}, "sk": {"S": f"{_SK_PREFIX}{_sortable(submitted_at)}#{job_id}"}}

    def _query(self, key_condition: str, values: Item, *, index: str | None = None, consistent: bool = False) -> list[Item]:
        return query_all(self._client, self._table, key_condition, values, index=index, consistent=consistent)


def _parked(item: Item) -> ParkedJob:
    woken_at = item.get("woken_at")
    return ParkedJob(
        pool=item["pool"]["S"],
        job_id=item["job_id"]["S"],
        submitted_at=datetime.fromisoformat(item["submitted_at"]["S"]),
        task_token=item["task_token"]["S"],
        limit=int(item["limit"]["N"]),
        parked_at=datetime.fromisoformat(item["parked_at"]["S"]),
        until=datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC),
        woken_at=datetime.fromisoformat(woken_at["S"]) if woken_at else None,
    )


def _sortable(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")
