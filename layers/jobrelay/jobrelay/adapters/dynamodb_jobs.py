"""The job store on DynamoDB: template.yaml's JobsTable, one partition per job.

Item layout:

  job    pk="JOB#<job_id>"  sk="JOB"                  kind="job"    created_key="<created_at>#<job_id>"
         every Job field (backend-only ones too), status/operation/version among them, and
         expires_at (TTL, epoch seconds) once the job is terminal
  event  pk="JOB#<job_id>"  sk="EVT#<at>#<suffix>"    kind="event"  at, event, detail, expires_at
  call   pk="JOB#<job_id>"  sk="CALL#<at>#<suffix>"   kind="call"   call, expires_at (dynamodb_vendor_calls.py)

The GSIs by_created (kind), by_status and by_operation all sort on created_key; events carry no
created_key, so only jobs are in them. Timestamps in keys have a fixed width, so that text order is
time order; timestamps in attributes are pydantic's ISO strings.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic_core import to_jsonable_python

from jobrelay.domain.errors import InvalidRequest, JobConflict, JobNotFound
from jobrelay.domain.job import Job, JobPage, JobPatch, TimelineEvent, Transition, utcnow
from jobrelay.domain.status import ACTIVE, ALLOWED_PREDECESSORS, JobStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        PutTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
        UniversalAttributeValueTypeDef,
        UpdateTypeDef,
    )

    AttributeValues = dict[str, AttributeValueTypeDef]

    class _ExpressionParams(TypedDict, total=False):  # typed as the requests take them
        ExpressionAttributeNames: Mapping[str, str]
        ExpressionAttributeValues: Mapping[str, UniversalAttributeValueTypeDef]


JOB_SK = "JOB"
EVENT_SK_PREFIX = "EVT#"
JOB_KIND = "job"
EVENT_KIND = "event"

# Job fields marked exclude=True never appear in model_dump(), but the store must keep them.
_BACKEND_ONLY_FIELDS = tuple(name for name, info in Job.model_fields.items() if info.exclude)

# A job item expires `retention_days` after the job ends; its events are written earlier than that
# (by at most the job's run time), so they are kept this much longer than the retention.
_EVENT_TTL_SLACK = timedelta(days=30)

# Two transactions on one item at the same moment can cancel each other (TransactionConflict)
# rather than one of them failing its guard. Trying again lets the guard decide who won.
_CONFLICT_ATTEMPTS = 3
_CONFLICT_PAUSE_SECONDS = 0.05

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class DynamoJobStore:
    """JobStore over the low-level DynamoDB client."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        retention_days: int = 90,
        filtered_page_size: int = 200,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._table = table_name
        self._client = client
        self._retention = timedelta(days=retention_days)
        # A filter discards items after DynamoDB has read them; reading filtered listings in pages
        # larger than the caller's limit saves round trips when few items match.
        self._filtered_page_size = filtered_page_size
        self._clock = clock

    # --- reading -------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        answer = self._client.get_item(TableName=self._table, Key=_job_key(job_id), ConsistentRead=True)
        item = answer.get("Item")
        return _job_from_item(item) if item else None

    def timeline(self, job_id: str) -> list[TimelineEvent]:
        expr = _Expression()
        condition = (
            f"{expr.name('pk')} = {expr.value(_pk(job_id))} AND begins_with({expr.name('sk')}, {expr.value(EVENT_SK_PREFIX)})"
        )
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table, KeyConditionExpression=condition, ConsistentRead=True, **expr.params()
        )
        return [_event_from_item(item) for page in pages for item in page["Items"]]

    def list(
        self,
        *,
        status: JobStatus | None,
        operation: str | None,
        limit: int,
        cursor: dict[str, Any] | None,
        account: str | None = None,
    ) -> JobPage:
        listing = _Listing.of(status, operation, account)
        start_key = listing.start_key(cursor) if cursor is not None else None
        page_size = limit if not listing.filters else max(limit, self._filtered_page_size)

        items: list[AttributeValues] = []
        while True:
            answer = self._client.query(**self._listing_query(listing, page_size, start_key))
            items.extend(answer["Items"])
            start_key = answer.get("LastEvaluatedKey")
            if len(items) >= limit or start_key is None:
                break

        returned = items[:limit]
        more_may_follow = len(items) > limit or start_key is not None
        # Resume after the last job returned, not after DynamoDB's last evaluated key: a filtered
        # page may have read (and matched) items past the ones that fitted in `limit`.
        next_cursor = listing.cursor_after(returned[-1]) if more_may_follow and returned else None
        return JobPage(jobs=[_job_from_item(item) for item in returned], cursor=next_cursor)

    def _listing_query(self, listing: _Listing, page_size: int, start_key: AttributeValues | None) -> QueryInputTypeDef:
        expr = _Expression()
        key_condition = f"{expr.name(listing.partition)} = {expr.value(listing.partition_value)}"
        filters = " AND ".join(f"{expr.name(name)} = {expr.value(value)}" for name, value in listing.filters.items())
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": listing.index,
            "KeyConditionExpression": key_condition,
            "ScanIndexForward": False,  # newest first
            "Limit": page_size,
            **expr.params(),
        }
        if filters:
            query["FilterExpression"] = filters
        if start_key is not None:
            query["ExclusiveStartKey"] = start_key
        return query

    # --- writing -------------------------------------------------------------------------------

    def create(self, job: Job, event: TimelineEvent) -> None:
        put_job: PutTypeDef = {
            "TableName": self._table,
            "Item": self._job_item(job),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        try:
            self._transact({"Put": put_job}, {"Put": self._put_event(job.job_id, event)})
        except _GuardFailed:
            raise JobConflict(f"job {job.job_id} already exists") from None

    def transition(self, job_id: str, target: JobStatus, event: TimelineEvent, patch: JobPatch | None = None) -> Transition:
        predecessors = ALLOWED_PREDECESSORS[target]
        if not predecessors:
            raise ValueError(f"{target} is a starting status, never the target of a transition")

        now = self._clock()
        changes = {"status": target.value, "updated_at": _json(now), **(patch.fields() if patch else {})}
        if target.is_terminal:
            changes["expires_at"] = self._expires_at(now)
        update = self._guarded_update(job_id, changes, allowed=predecessors, bump_version=True)
        try:
            self._transact({"Update": update}, {"Put": self._put_event(job_id, event)})
        except _GuardFailed as lost:
            if lost.current is None:
                raise JobNotFound(f"job {job_id} does not exist") from None
            return Transition(job=_job_from_item(lost.current), changed=False)
        return Transition(job=self._read_back(job_id), changed=True)

    def update(self, job_id: str, patch: JobPatch, event: TimelineEvent | None = None) -> Job | None:
        changes = {"updated_at": _json(self._clock()), **patch.fields()}
        update = self._guarded_update(job_id, changes, allowed=ACTIVE, bump_version=False)
        if event is None:
            return self._update_alone(update)
        try:
            self._transact({"Update": update}, {"Put": self._put_event(job_id, event)})
        except _GuardFailed:
            return None
        return self._read_back(job_id)

    def append_event(self, job_id: str, event: TimelineEvent) -> None:
        self._client.put_item(**self._put_event(job_id, event))

    def _update_alone(self, update: UpdateTypeDef) -> Job | None:
        try:
            answer = self._client.update_item(**update, ReturnValues="ALL_NEW")
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return _job_from_item(answer["Attributes"])

    def _read_back(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job is None:  # only if someone deleted the item between our write and this read
            raise JobNotFound(f"job {job_id} does not exist")
        return job

    def _guarded_update(
        self, job_id: str, changes: Mapping[str, Any], *, allowed: Iterable[JobStatus], bump_version: bool
    ) -> UpdateTypeDef:
        """A transaction's Update of the job item that applies `changes` only while the job exists
        and its status is one of `allowed`. On a failed guard it reports the item as it was."""
        expr = _Expression()
        assignments = [f"{expr.name(attribute)} = {expr.value(value)}" for attribute, value in changes.items()]
        if bump_version:
            version = expr.name("version")
            assignments.append(f"{version} = {version} + {expr.value(1)}")
        statuses = ", ".join(expr.value(status.value) for status in sorted(allowed))
        return {
            "TableName": self._table,
            "Key": _job_key(job_id),
            "UpdateExpression": "SET " + ", ".join(assignments),
            "ConditionExpression": f"attribute_exists({expr.name('pk')}) AND {expr.name('status')} IN ({statuses})",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **expr.params(),
        }

    def _transact(self, guarded: TransactWriteItemTypeDef, *others: TransactWriteItemTypeDef) -> None:
        """One all-or-nothing write. `guarded` carries the condition; if that fails, nothing is
        written and _GuardFailed holds the item as the guard saw it."""
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=[guarded, *others])
                return
            except ClientError as exc:
                if _error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons", [])
                codes = [reason.get("Code") for reason in reasons]
                if codes and codes[0] == "ConditionalCheckFailed":
                    # botocore-stubs types a reason's Item as {key, value}: it is the item's attribute map.
                    raise _GuardFailed(cast("AttributeValues | None", reasons[0].get("Item"))) from None
                if "TransactionConflict" not in codes or attempt == _CONFLICT_ATTEMPTS:
                    raise
                time.sleep(_CONFLICT_PAUSE_SECONDS * attempt)

    # --- items ---------------------------------------------------------------------------------

    def _job_item(self, job: Job) -> AttributeValues:
        record = job.model_dump(mode="json") | {name: _json(getattr(job, name)) for name in _BACKEND_ONLY_FIELDS}
        item = record | {
            "pk": _pk(job.job_id),
            "sk": JOB_SK,
            "kind": JOB_KIND,
            "created_key": f"{_sortable(job.created_at)}#{job.job_id}",
        }
        if job.is_terminal:
            item["expires_at"] = self._expires_at(job.updated_at)
        return _to_attribute_values(item)

    def _put_event(self, job_id: str, event: TimelineEvent) -> PutTypeDef:
        # The write time in the suffix keeps events with the same `at` in the order they were
        # written; the random part keeps two writers from overwriting each other.
        suffix = f"{time.time_ns():x}{secrets.token_hex(3)}"
        item = event.model_dump(mode="json") | {
            "pk": _pk(job_id),
            "sk": f"{EVENT_SK_PREFIX}{_sortable(event.at)}#{suffix}",
            "kind": EVENT_KIND,
            "expires_at": self._expires_at(self._clock() + _EVENT_TTL_SLACK),
        }
        return {"TableName": self._table, "Item": _to_attribute_values(item)}

    def _expires_at(self, ended_at: datetime) -> int:
        return int((ended_at + self._retention).timestamp())


class _GuardFailed(Exception):
    """A transaction's condition failed; `current` is the guarded item as it was (None: absent)."""

    def __init__(self, current: AttributeValues | None):
        super().__init__("condition failed")
        self.current = current


@dataclass
class _Expression:
    """Placeholders for one expression, so that attribute names never clash with DynamoDB's
    reserved words (status, result, error, ...)."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def params(self) -> _ExpressionParams:
        params: _ExpressionParams = {"ExpressionAttributeNames": self.names}
        if self.values:
            params["ExpressionAttributeValues"] = _to_attribute_values(self.values)
        return params


@dataclass(frozen=True)
class _Listing:
    """Which index answers a listing, and how its cursor looks: the keys of that index."""

    index: str
    partition: str  # the index's hash key
    partition_value: str
    # Attributes no index of this listing is keyed on: filtered after DynamoDB reads the items.
    # (An account filter never gets an index: accounts are few, jobs per account many.)
    filters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: JobStatus | None, operation: str | None, account: str | None = None) -> _Listing:
        filters = {"account": account} if account is not None else {}
        if status is not None:
            return cls("by_status", "status", status.value, filters | ({"operation": operation} if operation else {}))
        if operation is not None:
            return cls("by_operation", "operation", operation, filters)
        return cls("by_created", "kind", JOB_KIND, filters)

    @property
    def cursor_keys(self) -> frozenset[str]:
        return frozenset({"pk", "sk", self.partition, "created_key"})

    def cursor_after(self, item: AttributeValues) -> dict[str, str]:
        return {key: item[key]["S"] for key in self.cursor_keys}

    def start_key(self, cursor: Any) -> AttributeValues:
        """The cursor as an ExclusiveStartKey, if it is one this listing can have produced."""
        if not (
            isinstance(cursor, dict)
            and cursor.keys() == self.cursor_keys
            and all(isinstance(value, str) for value in cursor.values())
            and cursor[self.partition] == self.partition_value
            and cursor["sk"] == JOB_SK
            and cursor["pk"].startswith("JOB#")
        ):
            raise InvalidRequest("next token is not valid")
        return {key: {"S": value} for key, value in cursor.items()}


# --- conversions -------------------------------------------------------------------------------


def _pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def _job_key(job_id: str) -> AttributeValues:
    return {"pk": {"S": _pk(job_id)}, "sk": {"S": JOB_SK}}


def _sortable(moment: datetime) -> str:
    """Fixed-width UTC time for keys: ISO strings of varying precision do not sort as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value: Any) -> Any:
    return to_jsonable_python(value)


def _to_attribute_values(record: Mapping[str, Any]) -> AttributeValues:
    # DynamoDB numbers travel as Decimal and boto3 refuses floats; a JSON round trip turns every
    # float, however deeply nested, into a Decimal.
    plain = json.loads(json.dumps(record), parse_float=Decimal)
    return {name: _serializer.serialize(value) for name, value in plain.items()}


def _from_attribute_values(item: AttributeValues) -> dict[str, Any]:
    return {name: _from_decimals(_deserializer.deserialize(value)) for name, value in item.items()}


def _from_decimals(value: Any) -> Any:
    """Decimals back to int or float (so a stored 2.0 reads back as 2: JSON cannot tell them apart)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _from_decimals(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_from_decimals(inner) for inner in value]
    return value


def _job_from_item(item: AttributeValues) -> Job:
    record = _from_attribute_values(item)
    return Job.model_validate({name: record[name] for name in Job.model_fields if name in record})


def _event_from_item(item: AttributeValues) -> TimelineEvent:
    record = _from_attribute_values(item)
    return TimelineEvent.model_validate({name: record[name] for name in TimelineEvent.model_fields})


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")
