"""The vendor call log on DynamoDB: JobsTable, in each job's own partition beside its timeline.

  call   pk="JOB#<job_id>"  sk="CALL#<at>#<suffix>"   kind="call"   call (the VendorCall, a map), expires_at

The call is one map attribute, not top-level fields: its `status` (a number) must not meet the
by_status index, whose key `status` is a job's (a string). Like timeline events, calls carry no created_key, so no index holds them; they expire as the job's
events do (the retention after the job ends, with the same slack). Read oldest first.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobrelay.adapters.dynamodb_jobs import (
    _EVENT_TTL_SLACK,
    _Expression,
    _from_attribute_values,
    _pk,
    _sortable,
    _to_attribute_values,
)
from jobrelay.domain.errors import InvalidRequest
from jobrelay.domain.job import utcnow
from jobrelay.domain.vendor_calls import VendorCall, VendorCallPage

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

CALL_SK_PREFIX = "CALL#"
CALL_KIND = "call"
_READ_PAGE = 100  # calls a query reads at a time when the whole log is read


class DynamoVendorCallLog:
    """VendorCallLog over the low-level DynamoDB client."""

    def __init__(
        self, table_name: str, client: DynamoDBClient, *, retention_days: int = 90, clock: Callable[[], datetime] = utcnow
    ):
        self._table = table_name
        self._client = client
        self._retention = timedelta(days=retention_days)
        self._clock = clock

    def record(self, job_id: str, call: VendorCall) -> None:
        # The write time and a random part after `at`: calls at the same moment stay in write order
        # and never overwrite each other.
        suffix = f"{time.time_ns():x}{secrets.token_hex(3)}"
        item = {
            "call": call.model_dump(mode="json"),
            "pk": _pk(job_id),
            "sk": f"{CALL_SK_PREFIX}{_sortable(call.at)}#{suffix}",
            "kind": CALL_KIND,
            "expires_at": int((self._clock() + _EVENT_TTL_SLACK + self._retention).timestamp()),
        }
        self._client.put_item(TableName=self._table, Item=_to_attribute_values(item))

    def page(self, job_id: str, *, limit: int, cursor: dict[str, Any] | None) -> VendorCallPage:
        start = _start_key(job_id, cursor) if cursor is not None else None
        # One more than asked for: whether a next page exists is known, not guessed.
        items = self._query(job_id, limit + 1, start)
        shown = items[:limit]
        next_cursor = {"sk": shown[-1]["sk"]["S"]} if len(items) > limit else None
        return VendorCallPage(calls=[_call_from_item(item) for item in shown], cursor=next_cursor)

    def all(self, job_id: str) -> Iterator[VendorCall]:
        start: dict[str, AttributeValueTypeDef] | None = None
        while True:
            answer = self._client.query(**self._query_input(job_id, _READ_PAGE, start))
            yield from (_call_from_item(item) for item in answer["Items"])
            start = answer.get("LastEvaluatedKey")
            if start is None:
                return

    def _query(
        self, job_id: str, wanted: int, start: dict[str, AttributeValueTypeDef] | None
    ) -> list[dict[str, AttributeValueTypeDef]]:
        items: list[dict[str, AttributeValueTypeDef]] = []
        while len(items) < wanted:
            answer = self._client.query(**self._query_input(job_id, wanted - len(items), start))
            items.extend(answer["Items"])
            start = answer.get("LastEvaluatedKey")
            if start is None:
                break
        return items

    def _query_input(self, job_id: str, limit: int, start: dict[str, AttributeValueTypeDef] | None) -> QueryInputTypeDef:
        expr = _Expression()
        condition = (
            f"{expr.name('pk')} = {expr.value(_pk(job_id))} AND begins_with({expr.name('sk')}, {expr.value(CALL_SK_PREFIX)})"
        )
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ConsistentRead": True,
            "Limit": limit,
            **expr.params(),
        }
        if start is not None:
            query["ExclusiveStartKey"] = start
        return query


def _start_key(job_id: str, cursor: Any) -> dict[str, AttributeValueTypeDef]:
    """The cursor as an ExclusiveStartKey, if it is one `page` made for this job's log."""
    sk = cursor.get("sk") if isinstance(cursor, dict) and cursor.keys() == {"sk"} else None
    if not isinstance(sk, str) or not sk.startswith(CALL_SK_PREFIX):
        raise InvalidRequest("next token is not valid")
    return {"pk": {"S": _pk(job_id)}, "sk": {"S": sk}}


def _call_from_item(item: dict[str, AttributeValueTypeDef]) -> VendorCall:
    return VendorCall.model_validate(_from_attribute_values(item)["call"])
