"""The job store on DynamoDB: template.yaml's JobsTable, one partition per job.

Item layout:

  job    pk="JOB#<job_id>"  sk="JOB"                  kind="job"    created_key="<created_at>#<job_id>"
         every Job field (backend-only ones too), status/operation/version among them, and
         expires_at (TTL, epoch seconds) once the job is terminal
  event  pk="JOB#<job_id>"  sk="EVT#<at>#<suffix>"    kind="event"  at, event, detail, expires_at
  call   pk="JOB#<job_id>"  sk="CALL#<at>#<suffix>"   kind="call"   call, expires_at (dynamodb_vendor_calls.py)
  claim  pk="IDEMPOTENCY#<sha256 of account and key>"  sk="CLAIM"  kind="idempotency_claim"
         account, fingerprint, job_id, expires_at (TTL, epoch seconds: 24 h after the job was
         submitted); written with its job in one transaction (jobrelay.domain.idempotency)

The GSIs by_created (kind), by_status, by_operation and by_account all sort on created_key; events and claims
carry no created_key, so only jobs are in them. Timestamps in keys have a fixed width, so that text order is
time order; timestamps in attributes are pydantic's ISO strings. by_account projects only the keys, status
and operation: a job's many updates (progress, polls) rewrite an index entry only when what it holds
changes, and a listing by account reads its page's jobs from the table (`DynamoJobStore._page`).
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic_core import to_jsonable_python

from jobrelay.domain.errors import IdempotencyKeyTaken, InvalidRequest, JobConflict, JobNotFound
from jobrelay.domain.idempotency import IdempotencyClaim, claim_key
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
CLAIM_SK = "CLAIM"
CLAIM_KIND = "idempotency_claim"

# Job fields marked exclude=True never appear in model_dump(), but the store must keep them.
_BACKEND_ONLY_FIELDS = tuple(name for name, info in Job.model_fields.items() if info.exclude)

# A job item expires `retention_days` after the job ends; its events are written earlier than that
# (by at most the job's run time), so they are kept this much longer than the retention.
_EVENT_TTL_SLACK = timedelta(days=30)

# Two transactions on one item at the same moment can cancel each other (TransactionConflict)
# rather than one of them failing its guard. Trying again lets the guard decide who won.
_CONFLICT_ATTEMPTS = 3
_CONFLICT_PAUSE_SECONDS = 0.05

# BatchGetItem reads at most 100 keys a request, and may leave some unprocessed when throttled.
_BATCH_GET_MAX = 100
_BATCH_GET_ATTEMPTS = 5

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
        filtered_read_budget: int = 1000,
        clock: Callable[[], datetime] = utcnow,
    ):
        self._table = table_name
        self._client = client
        self._retention = timedelta(days=retention_days)
        # A filter discards items after DynamoDB has read them (and billed them): a filtered listing
        # reads on in pages sized by the share of items that matched so far, at most this large...
        self._filtered_page_size = filtered_page_size
        # ...and this many items in all: a filter no index answers would otherwise read every job
        # ever kept to fill a page of rare matches (see `list`).
        self._filtered_read_budget = max(filtered_read_budget, filtered_page_size)
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
        """Jobs, newest first, read from the index whose key answers the most of the filters
        (`_Listing.of`). What an index key does not answer is a filter DynamoDB applies after it
        has read (and billed) the items, so a filtered page reads at most `filtered_read_budget`
        items: when rare matches are spread over many jobs, the page comes back short (even
        empty) with a cursor where the reading stopped, instead of reading every job ever kept."""
        listing = _Listing.of(status, operation, account)
        start_key = listing.start_key(cursor) if cursor is not None else None
        budget = self._filtered_read_budget if listing.filters else None

        items: list[AttributeValues] = []
        read = 0
        size = limit if budget is None else min(limit, budget)  # first, as if every item matched
        while True:
            answer = self._client.query(**self._listing_query(listing, size, start_key))
            items.extend(answer["Items"])
            read += answer.get("ScannedCount", len(answer["Items"]))
            start_key = answer.get("LastEvaluatedKey")
            if len(items) >= limit or start_key is None or (budget is not None and read >= budget):
                break
            size = self._next_read(limit - len(items), len(items) / read if read else 0.0, read, budget)

        returned = items[:limit]
        next_cursor: dict[str, str] | None = None
        if len(items) > limit or (len(items) == limit and start_key is not None):
            # Resume after the last job returned, not after DynamoDB's last evaluated key: a filtered
            # page may have read (and matched) items past the ones that fitted in `limit`.
            next_cursor = listing.cursor_after(returned[-1])
        elif start_key is not None:
            # The read budget ran out before the page filled: resume after the last item read
            # (the index's LastEvaluatedKey has exactly the cursor's keys).
            next_cursor = listing.cursor_after(start_key)
        return self._page(listing, returned, next_cursor)

    def _next_read(self, wanted: int, matched_share: float, read: int, budget: int | None) -> int:
        """How many items to read next for `wanted` more jobs. Unfiltered, every item read is one;
        filtered, as many as the share that matched so far says, at most the filtered page size
        (no match yet: that size), never past the budget."""
        if budget is None:
            return wanted
        size = self._filtered_page_size if matched_share == 0 else math.ceil(wanted / matched_share)
        return max(1, min(size, self._filtered_page_size, budget - read))

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

    def _page(self, listing: _Listing, items: Sequence[AttributeValues], cursor: dict[str, str] | None) -> JobPage:
        """The page of jobs `items` are, in their order. An index that projects every attribute has them whole;
        by_account projects only what its filters need (so job updates do not rewrite it), and its
        jobs are read from the table with BatchGetItem (eventually consistent, as the index is).
        A job gone since the index saw it (TTL), or whose status has moved off a status filter,
        is left out."""
        if listing.projects_all or not items:
            return JobPage(jobs=[_job_from_item(item) for item in items], cursor=cursor)
        keys: list[AttributeValues] = [{"pk": item["pk"], "sk": item["sk"]} for item in items]
        found: dict[str, AttributeValues] = {}
        for first in range(0, len(keys), _BATCH_GET_MAX):
            pending: Sequence[Mapping[str, Any]] = keys[first : first + _BATCH_GET_MAX]
            for attempt in range(_BATCH_GET_ATTEMPTS):
                answer = self._client.batch_get_item(RequestItems={self._table: {"Keys": pending, "ConsistentRead": False}})
                for item in answer.get("Responses", {}).get(self._table, []):
                    found[item["pk"]["S"]] = item
                unprocessed = answer.get("UnprocessedKeys", {}).get(self._table)
                pending = unprocessed["Keys"] if unprocessed else []
                if not pending:
                    break
                time.sleep(_CONFLICT_PAUSE_SECONDS * (attempt + 1))  # throttled: DynamoDB asks us to slow down
            else:
                raise RuntimeError(f"DynamoDB left {len(pending)} jobs of a listing unread after {_BATCH_GET_ATTEMPTS} attempts")
        wanted = {listing.partition: listing.partition_value, **listing.filters}
        jobs = [_job_from_item(found[key["pk"]["S"]]) for key in keys if key["pk"]["S"] in found]
        matching = [job for job in jobs if all(_job_attribute(job, name) == value for name, value in wanted.items())]
        return JobPage(jobs=matching, cursor=cursor)

    # --- writing -------------------------------------------------------------------------------

    def create(self, job: Job, event: TimelineEvent, claim: IdempotencyClaim | None = None) -> None:
        put_job: PutTypeDef = {
            "TableName": self._table,
            "Item": self._job_item(job),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        writes: list[TransactWriteItemTypeDef] = [{"Put": put_job}, {"Put": self._put_event(job.job_id, event)}]
        if claim is not None:
            writes.insert(0, {"Put": self._put_claim(claim)})
        try:
            self._transact(*writes)
        except _GuardFailed as lost:
            if claim is not None and lost.index == 0 and lost.current is not None:
                raise IdempotencyKeyTaken(_claim_from_item(lost.current, claim.key)) from None
            raise JobConflict(f"job {job.job_id} already exists") from None
        except ClientError as exc:
            # Requests racing on one key can keep cancelling each other's transactions
            # (TransactionConflict) past our attempts: if a claim has landed meanwhile, this
            # request is not the first, as a failed condition would have said.
            if claim is None or not _conflicted(exc) or (held := self.find_claim(claim.account, claim.key)) is None:
                raise
            raise IdempotencyKeyTaken(held) from None

    def find_claim(self, account: str, key: str) -> IdempotencyClaim | None:
        answer = self._client.get_item(TableName=self._table, Key=_claim_key(account, key), ConsistentRead=True)
        item = answer.get("Item")
        if item is None:
            return None
        claim = _claim_from_item(item, key)
        # DynamoDB's TTL deletes an expired item within days, not at once: until then it is no claim.
        return claim if claim.is_live(self._clock()) else None

    def release(self, claim: IdempotencyClaim) -> None:
        expr = _Expression()
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=_claim_key(claim.account, claim.key),
                ConditionExpression=f"{expr.name('job_id')} = {expr.value(claim.job_id)}",
                **expr.params(),
            )
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise  # else: the key has moved on to another job (or nothing): that claim is not ours to remove

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

    def _transact(self, *writes: TransactWriteItemTypeDef) -> None:
        """One all-or-nothing write. If a write's condition fails, nothing is written and
        _GuardFailed holds that write's position and its item as the condition saw it."""
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                self._client.transact_write_items(TransactItems=list(writes))
                return
            except ClientError as exc:
                if _error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons", [])
                codes = [reason.get("Code") for reason in reasons]
                if "ConditionalCheckFailed" in codes:
                    index = codes.index("ConditionalCheckFailed")
                    # botocore-stubs types a reason's Item as {key, value}: it is the item's attribute map.
                    raise _GuardFailed(cast("AttributeValues | None", reasons[index].get("Item")), index) from None
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

    def _put_claim(self, claim: IdempotencyClaim) -> PutTypeDef:
        """The claim's Put: it lands only where no live claim holds the key (an expired one that
        DynamoDB's TTL has not removed yet is overwritten); if not, the holder comes back with the error."""
        expr = _Expression()
        item = {
            **_claim_key(claim.account, claim.key),
            **_to_attribute_values(
                {
                    "kind": CLAIM_KIND,
                    "account": claim.account,
                    "fingerprint": claim.fingerprint,
                    "job_id": claim.job_id,
                    "expires_at": int(claim.expires_at.timestamp()),
                }
            ),
        }
        now = int(self._clock().timestamp())
        return {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": f"attribute_not_exists({expr.name('pk')}) OR {expr.name('expires_at')} <= {expr.value(now)}",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **expr.params(),
        }

    def _expires_at(self, ended_at: datetime) -> int:
        return int((ended_at + self._retention).timestamp())


class _GuardFailed(Exception):
    """A transaction's condition failed: the `index`th write's; `current` is its item as it was
    (None: absent)."""

    def __init__(self, current: AttributeValues | None, index: int = 0):
        super().__init__("condition failed")
        self.current = current
        self.index = index


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
    # Attributes the index is not keyed on: filtered after DynamoDB reads the items (and bills them).
    filters: dict[str, str] = field(default_factory=dict)
    projects_all: bool = True  # the index holds whole jobs (else: keys and the filters' attributes)

    @classmethod
    def of(cls, status: JobStatus | None, operation: str | None, account: str | None = None) -> _Listing:
        """The index whose partition holds the fewest jobs the filters do not want. An open status
        first: its partition holds only open jobs, so the sweeper's and the queue's reads (and any
        listing of open jobs) grow with open jobs, never with the finished ones kept for `retention`.
        Then the account (by_account): without it, a listing of one account's jobs would read
        every other account's. The remaining filters are read through, under the read budget."""
        wanted = {"status": status.value if status else None, "operation": operation, "account": account}
        if status is not None and not status.is_terminal:
            return cls("by_status", "status", status.value, _given(wanted, "operation", "account"))
        if account is not None:
            return cls("by_account", "account", account, _given(wanted, "status", "operation"), projects_all=False)
        if status is not None:
            return cls("by_status", "status", status.value, _given(wanted, "operation"))
        if operation is not None:
            return cls("by_operation", "operation", operation)
        return cls("by_created", "kind", JOB_KIND)

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


def _given(wanted: Mapping[str, str | None], *names: str) -> dict[str, str]:
    return {name: value for name in names if (value := wanted[name]) is not None}


def _job_attribute(job: Job, name: str) -> str:
    value = getattr(job, name)
    return value.value if isinstance(value, JobStatus) else value


def _pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def _job_key(job_id: str) -> AttributeValues:
    return {"pk": {"S": _pk(job_id)}, "sk": {"S": JOB_SK}}


def _claim_key(account: str, key: str) -> AttributeValues:
    return {"pk": {"S": f"IDEMPOTENCY#{claim_key(account, key)}"}, "sk": {"S": CLAIM_SK}}


def _claim_from_item(item: AttributeValues, key: str) -> IdempotencyClaim:
    """The claim an item holds; the key itself is not stored (only its hash, in pk): the caller has it."""
    record = _from_attribute_values(item)
    return IdempotencyClaim(
        account=record["account"],
        key=key,
        fingerprint=record["fingerprint"],
        job_id=record["job_id"],
        expires_at=datetime.fromtimestamp(record["expires_at"], UTC),
    )


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


def _conflicted(exc: ClientError) -> bool:
    """A transaction cancelled because another one held one of its items."""
    reasons = exc.response.get("CancellationReasons", [])
    return _error_code(exc) == "TransactionCanceledException" and any(r.get("Code") == "TransactionConflict" for r in reasons)
