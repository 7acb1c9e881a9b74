"""Per-account concurrency slots on DynamoDB, in template.yaml's JobsTable beside the jobs.

Item layout (see dynamodb_jobs for the jobs'):

  slot  pk="SLOTS#<pool>"  sk="SLOT#<n>"  kind="slot"  created_key="<acquired_at>#<pool>#<n>"
        holder (a job id), expires_at (epoch seconds: the lease's end, also the item's TTL)

The pool's queue shares its partition (sk="WAIT#...", adapters/dynamodb_slot_queue): slots are read
with begins_with(sk, "SLOT#"), so a long queue never slows down taking a slot.

A pool with a limit of N has the slots 0..N-1. A slot is taken with one conditional put that
succeeds only when the slot is free: no item, or a lease that has expired (its holder's deadline
passed, whatever became of the holder). Two jobs racing for the last slot cannot both win. Slots
are in the by_created index under kind "slot", so the sweeper lists every lease with one query.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from jobrelay.domain.job import utcnow
from jobrelay.domain.lease import Lease

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

    Item = dict[str, AttributeValueTypeDef]

SLOT_KIND = "slot"
_PK_PREFIX = "SLOTS#"
_SK_PREFIX = "SLOT#"


class DynamoSlots:
    def __init__(self, table_name: str, client: DynamoDBClient, *, clock: Callable[[], datetime] = utcnow):
        self._table = table_name
        self._client = client
        self._clock = clock

    def acquire(self, pool: str, holder: str, limit: int, until: datetime) -> bool:
        now = self._clock()
        held = {lease_sk: lease for lease_sk, lease in self._items(pool)}
        if any(lease.holder == holder for lease in held.values()):
            return True
        for n in range(limit):
            slot_sk = f"{_SK_PREFIX}{n:04d}"
            if slot_sk in held:  # taken and live when read; a put would only fail its condition
                continue
            if self._take(pool, slot_sk, holder, now, until):
                return True
        return False

    def _take(self, pool: str, slot_sk: str, holder: str, now: datetime, until: datetime) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": _PK_PREFIX + pool},
                    "sk": {"S": slot_sk},
                    "kind": {"S": SLOT_KIND},
                    "created_key": {"S": f"{now.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{pool}#{slot_sk}"},
                    "pool": {"S": pool},
                    "holder": {"S": holder},
                    "expires_at": {"N": str(int(until.timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False  # someone else took it between our read and our put
            raise
        return True

    def release(self, pool: str, holder: str) -> None:
        for slot_sk, lease in self._items(pool, live_only=False):
            if lease.holder != holder:
                continue
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key={"pk": {"S": _PK_PREFIX + pool}, "sk": {"S": slot_sk}},
                    ConditionExpression="holder = :holder",  # not a slot taken over since we read it
                    ExpressionAttributeValues={":holder": {"S": holder}},
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise

    def leases(self, pool: str | None = None) -> list[Lease]:
        if pool is not None:
            return [lease for _, lease in self._items(pool)]
        now, found = self._clock(), []
        for item in self._query("kind = :kind", {":kind": {"S": SLOT_KIND}}, index="by_created"):
            lease = _lease(item)
            if lease.expires_at > now:
                found.append(lease)
        return found

    def _items(self, pool: str, *, live_only: bool = True) -> list[tuple[str, Lease]]:
        now = self._clock()
        items = self._query(
            "pk = :pk AND begins_with(sk, :slot)",
            {":pk": {"S": _PK_PREFIX + pool}, ":slot": {"S": _SK_PREFIX}},
            consistent=True,  # a slot just freed or taken counts at once (wake-ups count free slots)
        )
        pairs = [(item["sk"]["S"], _lease(item)) for item in items]
        return [(slot_sk, lease) for slot_sk, lease in pairs if not live_only or lease.expires_at > now]

    def _query(self, key_condition: str, values: Item, *, index: str | None = None, consistent: bool = False) -> list[Item]:
        return query_all(self._client, self._table, key_condition, values, index=index, consistent=consistent)


def query_all(
    client: DynamoDBClient, table: str, key_condition: str, values: Item, *, index: str | None = None, consistent: bool = False
) -> list[Item]:
    """Every item of a Query, page after page (the slots and the queue of a pool are few)."""
    query: QueryInputTypeDef = {
        "TableName": table,
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": values,
    }
    if index is not None:
        query["IndexName"] = index
    if consistent:
        query["ConsistentRead"] = True
    items: list[Item] = []
    while True:
        page = client.query(**query)
        items.extend(page.get("Items", []))
        start = page.get("LastEvaluatedKey")
        if not start:
            return items
        query["ExclusiveStartKey"] = start


def _lease(item: Item) -> Lease:
    return Lease(
        pool=item["pool"]["S"],
        holder=item["holder"]["S"],
        expires_at=datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC),
    )
