"""What AWS would bill, counted call by call while the local stack runs in this process.

The local stack (devstack.LocalStack) runs every function in this process (devstack/lambdas.py),
so every AWS call a function makes passes through botocore here. While a `Meter` is on, it wraps:

- `botocore.client.BaseClient._make_api_call`: every call, with its request and its answer. DynamoDB
  calls are priced in request units by AWS's documented rules (see `DynamoCapacity`), from the real
  items: moto's own ConsumedCapacity is a constant, not a measure. S3 calls by their price class,
  EventBridge entries, Secrets Manager calls;
- `devstack.lambdas._run`, the handler's run: the invocation (function, memory, event, duration:
  the handler's own time, less the meter's work within it) that every call its thread makes belongs
  to, and every call of work it hands to a thread pool (`ThreadPoolExecutor.submit` is wrapped too:
  an import's stage window, S3 transfers);
- `devstack.lambdas.InProcessLambdas.invoke`: the invocation's log lines, as CloudWatch Logs would
  ingest them;
- `httpx.Client.send`: the HTTP requests a function makes (to the vendors, a callback): AWS does
  not bill them, but the function waits for each answer, and a real vendor answers slower than the
  local sandboxes.

Lambda Invoke calls themselves (the front door's, Step Functions') are not counted as calls: each
invocation is. Calls from no invocation (the bench's setup and checks) are kept apart (`outside`).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

import botocore.client
import httpx
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

# DynamoDB bills reads in 4 KB units (half a unit for an eventually consistent read) and writes in
# 1 KB units; a transaction's reads and writes cost twice (the DynamoDB Developer Guide, "Read/write
# capacity mode" and "Item sizes and formats").
READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024
# CloudWatch Logs bills each log event's message plus 26 bytes.
LOG_EVENT_OVERHEAD_BYTES = 26

_S3_FREE = frozenset({"DeleteObject", "DeleteObjects", "AbortMultipartUpload"})
_S3_PUT_CLASS = ("Put", "Copy", "Post", "List", "Create", "Upload", "Complete", "Restore")
_DYNAMO_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


@dataclass
class Usage:
    """What some work used of everything that is billed per use (a modelled mean may be fractional)."""

    transitions: float = 0  # Step Functions state transitions
    invocations: float = 0  # Lambda requests
    gb_seconds: float = 0.0  # Lambda duration x memory (billed: whole milliseconds)
    read_units: float = 0.0  # DynamoDB read request units
    write_units: float = 0.0  # DynamoDB write request units, the indexes' included
    index_write_units: float = 0.0  # of which the global secondary indexes'
    items_read: float = 0  # DynamoDB items read (a Query's ScannedCount, each key got)
    s3_put: float = 0  # S3 PUT, COPY, POST and LIST requests
    s3_get: float = 0  # S3 GET, HEAD and other requests
    events: float = 0  # EventBridge custom events
    secret_calls: float = 0  # Secrets Manager API calls
    log_bytes: float = 0  # CloudWatch Logs ingested
    api_requests: float = 0  # API Gateway HTTP API requests
    outbound_requests: float = 0  # HTTP requests a function made (vendors, callbacks): not billed, waited for

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def times(self, factor: float) -> Usage:
        return Usage(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


@dataclass
class InvocationRecord:
    function: str  # the function's name in the stack
    memory_mb: int
    request_id: str
    event: Any
    started: float  # time.monotonic()
    seconds: float = 0.0
    payload: str | None = None  # the handler's answer, JSON
    usage: Usage = field(default_factory=Usage)
    meter_seconds: float = 0.0  # the meter's own work during the invocation (item images): not the function's

    @property
    def step(self) -> str | None:
        """The state machine's step, for the steps function's invocations."""
        return self.event.get("step") if isinstance(self.event, dict) else None

    @property
    def route(self) -> str | None:
        """`METHOD /path` for an HTTP API invocation."""
        if not isinstance(self.event, dict) or "requestContext" not in self.event:
            return None
        http = self.event["requestContext"].get("http", {})
        return f"{http.get('method')} {self.event.get('rawPath')}"

    def settle(self, seconds: float) -> None:
        self.seconds = max(0.0, seconds - self.meter_seconds)
        billed_seconds = math.ceil(seconds * 1000) / 1000  # Lambda bills whole milliseconds
        self.usage.invocations += 1
        self.usage.gb_seconds += self.memory_mb / 1024 * billed_seconds


class Meter:
    def __init__(self) -> None:
        self.invocations: list[InvocationRecord] = []
        self.outside = Usage()  # calls made by no invocation
        self._by_request: dict[str, InvocationRecord] = {}
        self._local = threading.local()  # .record: the invocation this thread works for
        self._quiet = threading.local()  # the meter's own calls (item images) are not counted
        self._lock = threading.Lock()
        self.dynamodb = DynamoCapacity(self._quietly)

    @contextmanager
    def on(self) -> Iterator[Meter]:
        """Count, within the block, every AWS call and every invocation of the local stack's functions."""
        from devstack import lambdas

        original_call = _original(botocore.client.BaseClient, "_make_api_call")
        original_run = _original(lambdas, "_run")
        original_invoke = _original(lambdas.InProcessLambdas, "invoke")
        original_submit = _original(ThreadPoolExecutor, "submit")
        original_send = _original(httpx.Client, "send")
        meter = self

        def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if getattr(meter._quiet, "on", False):
                return original_call(client, operation, params)
            return meter._metered(lambda: original_call(client, operation, params), client, operation, params)

        def run(handler: Any, event: Any, context: Any) -> tuple[str, bool]:
            record = InvocationRecord(
                function=context.function_name,
                memory_mb=int(context.memory_limit_in_mb),
                request_id=context.aws_request_id,
                event=event,
                started=time.monotonic(),
            )
            meter._local.record = record
            started = time.perf_counter()
            try:
                payload, errored = original_run(handler, event, context)
                record.payload = payload
                return payload, errored
            finally:
                record.settle(time.perf_counter() - started)
                meter._local.record = None
                with meter._lock:
                    meter.invocations.append(record)
                    meter._by_request[record.request_id] = record

        def invoke(lambdas_self: Any, function_name: str, event: Any) -> Any:
            invocation = original_invoke(lambdas_self, function_name, event)
            found = re.search(r"REPORT RequestId: (\S+)", invocation.logs)
            if found and (record := meter._by_request.get(found.group(1))) is not None:
                lines = invocation.logs.splitlines()
                record.usage.log_bytes += sum(len(line.encode()) + LOG_EVENT_OVERHEAD_BYTES for line in lines)
            return invocation

        def submit(executor: Any, work: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            owner = getattr(meter._local, "record", None)
            if owner is None:
                return original_submit(executor, work, *args, **kwargs)

            def on_behalf(*inner_args: Any, **inner_kwargs: Any) -> Any:
                meter._local.record = owner
                try:
                    return work(*inner_args, **inner_kwargs)
                finally:
                    meter._local.record = None

            return original_submit(executor, on_behalf, *args, **kwargs)

        def send(http: Any, request: Any, **options: Any) -> Any:
            if (owner := getattr(meter._local, "record", None)) is not None:
                with meter._lock:
                    owner.usage.outbound_requests += 1
            return original_send(http, request, **options)

        replacements = [
            (httpx.Client, "send", original_send, send),
            (botocore.client.BaseClient, "_make_api_call", original_call, make_api_call),
            (lambdas, "_run", original_run, run),
            (lambdas.InProcessLambdas, "invoke", original_invoke, invoke),
            (ThreadPoolExecutor, "submit", original_submit, submit),
        ]
        for owner, name, _, replacement in replacements:
            setattr(owner, name, replacement)
        try:
            yield self
        finally:
            for owner, name, original, _ in replacements:
                setattr(owner, name, original)

    def since(self, mark: int) -> list[InvocationRecord]:
        """The invocations that ended after `mark` (a len(invocations) taken earlier)."""
        with self._lock:
            return list(self.invocations[mark:])

    def mark(self) -> int:
        with self._lock:
            return len(self.invocations)

    # --- one call ----------------------------------------------------------------------------------

    def _metered(self, call: Any, client: Any, operation: str, params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        if service == "lambda" and operation == "Invoke":
            return call()  # the invocation is counted, not the request for it
        record: InvocationRecord | None = getattr(self._local, "record", None)
        usage = self.outside if record is None else record.usage
        if service == "dynamodb":

            def overhead(seconds: float) -> None:
                if record is not None:
                    with self._lock:
                        record.meter_seconds += seconds

            return self.dynamodb.metered(call, client, operation, params, usage, self._lock, overhead)
        answer = call()
        with self._lock:
            if service == "s3":
                if operation in _S3_FREE:
                    pass
                elif operation.startswith(_S3_PUT_CLASS):
                    usage.s3_put += 1
                else:
                    usage.s3_get += 1
            elif service == "events" and operation == "PutEvents":
                usage.events += sum(_event_chunks(entry) for entry in params.get("Entries", []))
            elif service == "secretsmanager":
                usage.secret_calls += 1
        return answer

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        previous = getattr(self._quiet, "on", False)
        self._quiet.on = True
        try:
            yield
        finally:
            self._quiet.on = previous


def _original(owner: Any, name: str) -> Any:
    """What `name` is on `owner` before the meter replaces it."""
    return getattr(owner, name)


def _event_chunks(entry: Mapping[str, Any]) -> int:
    """EventBridge bills each 64 KB of an entry as one event."""
    size = sum(len(str(entry.get(key, "")).encode()) for key in ("Source", "DetailType", "Detail", "Resources", "Time"))
    return max(1, math.ceil(size / (64 * 1024)))


# --- DynamoDB -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY, INCLUDE
    included: frozenset[str]


@dataclass(frozen=True)
class _Table:
    keys: tuple[str, ...]
    indexes: tuple[_Index, ...]

    def key_of(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {name: item[name] for name in self.keys}

    def projected(self, index: _Index, item: Mapping[str, Any]) -> dict[str, Any]:
        if index.projection == "ALL":
            return dict(item)
        kept = {*self.keys, *index.keys, *index.included}
        return {name: value for name, value in item.items() if name in kept}


class DynamoCapacity:
    """Request units of each DynamoDB call, by the rules AWS documents, from the real items:

    - GetItem: the item's size in 4 KB units (at least one), half for an eventually consistent read;
      BatchGetItem: each key so; TransactGetItems: twice.
    - Query and Scan: the size of every item read (filtered out or not: re-read here without the
      filter) summed, then in 4 KB units; half when eventually consistent.
    - PutItem, UpdateItem, DeleteItem: the larger of the item before and after, in 1 KB units (at
      least one); a failed condition: the item as it was. TransactWriteItems: twice each item.
    - Every global secondary index the item is in, before or after: one write of its projected item
      when what it projects changed, two (a delete and a put) when its key changed; none otherwise.

    The item before and after a write are read here, from moto's own tables in this process (over
    HTTP, not counted, for a moto elsewhere); the time it takes is not the function's."""

    def __init__(self, quietly: Any):
        self._quietly = quietly
        self._tables: dict[tuple[str, str], _Table] = {}

    def metered(
        self,
        call: Any,
        client: Any,
        operation: str,
        params: dict[str, Any],
        usage: Usage,
        lock: Any,
        overhead: Callable[[float], None],
    ) -> Any:
        started = time.perf_counter()
        writes = self._write_targets(client, operation, params) if operation in _DYNAMO_WRITES else []
        before = [self._image(client, table, key) for table, key, _ in writes]
        overhead(time.perf_counter() - started)
        try:
            answer = call()
        except ClientError:
            if writes:
                # A failed condition (or a cancelled transaction) still bills the items it read.
                factor = 2 if operation == "TransactWriteItems" else 1
                with lock:
                    usage.write_units += sum(factor * _write_units(_size(old)) for old in before)
            raise
        started = time.perf_counter()
        try:
            self._charge(client, operation, params, answer, writes, before, usage, lock)
        finally:
            overhead(time.perf_counter() - started)
        return answer

    def _charge(
        self,
        client: Any,
        operation: str,
        params: dict[str, Any],
        answer: dict[str, Any],
        writes: list[tuple[str, dict[str, Any], str]],
        before: list[dict[str, Any] | None],
        usage: Usage,
        lock: Any,
    ) -> None:
        if writes:
            after = [self._image(client, table, key) for table, key, _ in writes]
            units = index_units = 0.0
            for (table_name, _, kind), old, new in zip(writes, before, after, strict=True):
                table = self._table(client, table_name)
                factor = 2 if operation == "TransactWriteItems" else 1
                units += factor * _write_units(max(_size(old), _size(new)))
                if kind != "ConditionCheck":
                    index_units += sum(_index_writes(table, index, old, new) for index in table.indexes)
            with lock:
                usage.write_units += units + index_units
                usage.index_write_units += index_units
        else:
            read_units, items = self._read_units(client, operation, params, answer)
            with lock:
                usage.read_units += read_units
                usage.items_read += items

    # --- reads ---------------------------------------------------------------------------------------

    def _read_units(self, client: Any, operation: str, params: dict[str, Any], answer: dict[str, Any]) -> tuple[float, int]:
        if operation == "GetItem":
            item = answer.get("Item")
            if item is not None and "ProjectionExpression" in params:
                item = self._image(client, params["TableName"], params["Key"])
            return _read_units(_size(item), params.get("ConsistentRead", False)), 1
        if operation == "BatchGetItem":
            units, items = 0.0, 0
            for table_name, wanted in params["RequestItems"].items():
                got = answer.get("Responses", {}).get(table_name, [])
                unprocessed = len(answer.get("UnprocessedKeys", {}).get(table_name, {}).get("Keys", []))
                asked = len(wanted["Keys"]) - unprocessed
                sizes = [_size(item) for item in got] + [0] * max(0, asked - len(got))  # a missing key: the least
                units += sum(_read_units(size, wanted.get("ConsistentRead", False)) for size in sizes)
                items += asked
            return units, items
        if operation == "TransactGetItems":
            sizes = [_size(response.get("Item")) for response in answer.get("Responses", [])]
            return sum(2 * _read_units(size, True) for size in sizes), len(sizes)
        if operation in ("Query", "Scan"):
            read = answer.get("Items", [])
            if any(name in params for name in ("FilterExpression", "ProjectionExpression", "Select")):
                read = self._evaluated(client, operation, params)
            total = sum(_size(item) for item in read)
            units = max(1, math.ceil(total / READ_UNIT_BYTES)) * (1.0 if params.get("ConsistentRead") else 0.5)
            return units, answer.get("ScannedCount", len(read))
        return 0.0, 0  # DescribeTable and the like: free

    def _evaluated(self, client: Any, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item a filtered or projected Query/Scan read: the same request without the filter
        and the projection (same Limit and start key, so the same items)."""
        request = {k: v for k, v in params.items() if k not in ("FilterExpression", "ProjectionExpression", "Select")}
        used = str(request.get("KeyConditionExpression", ""))  # DynamoDB refuses placeholders left unused
        for placeholders in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            if placeholders in request:
                kept = {k: v for k, v in request[placeholders].items() if re.search(re.escape(k) + r"(?!\w)", used)}
                if kept:
                    request[placeholders] = kept
                else:
                    del request[placeholders]
        with self._quietly():
            answer = getattr(client, "query" if operation == "Query" else "scan")(**request)
        return list(answer.get("Items", []))

    # --- writes --------------------------------------------------------------------------------------

    def _write_targets(self, client: Any, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
        """(table, key, kind) of every item a write touches."""
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], _attribute_values(params["Key"]), operation)]
        if operation == "PutItem":
            table = self._table(client, params["TableName"])
            return [(params["TableName"], table.key_of(_attribute_values(params["Item"])), operation)]
        targets = []
        if operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                key = body.get("Key") or self._table(client, body["TableName"]).key_of(_attribute_values(body["Item"]))
                targets.append((body["TableName"], _attribute_values(key), kind))
        elif operation == "BatchWriteItem":
            for table_name, requests in params["RequestItems"].items():
                table = self._table(client, table_name)
                for request in requests:
                    if "PutRequest" in request:
                        targets.append((table_name, table.key_of(_attribute_values(request["PutRequest"]["Item"])), "Put"))
                    else:
                        targets.append((table_name, _attribute_values(request["DeleteRequest"]["Key"]), "Delete"))
        return targets

    def _image(self, client: Any, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        backend = _moto_backend(table)
        if backend is not None:
            found = backend.get_item(table, dict(key))
            return None if found is None else dict(found.to_json()["Attributes"])
        with self._quietly():
            item: dict[str, Any] | None = client.get_item(TableName=table, Key=dict(key), ConsistentRead=True).get("Item")
        return item

    def _table(self, client: Any, name: str) -> _Table:
        cache_key = (client.meta.endpoint_url, name)
        if cache_key not in self._tables:
            with self._quietly():
                described = client.describe_table(TableName=name)["Table"]
            indexes = tuple(
                _Index(
                    name=index["IndexName"],
                    keys=tuple(key["AttributeName"] for key in index["KeySchema"]),
                    projection=index["Projection"]["ProjectionType"],
                    included=frozenset(index["Projection"].get("NonKeyAttributes", [])),
                )
                for index in described.get("GlobalSecondaryIndexes", [])
            )
            self._tables[cache_key] = _Table(tuple(key["AttributeName"] for key in described["KeySchema"]), indexes)
        return self._tables[cache_key]


def _moto_backend(table: str) -> Any:
    """The moto DynamoDB backend in this process that holds `table` (the local stack's moto server
    runs in this process), or None."""
    from moto.dynamodb.models import dynamodb_backends

    for regions in list(dynamodb_backends.values()):
        for backend in list(regions.values()):
            if table in backend.tables:
                return backend
    return None


def _index_writes(table: _Table, index: _Index, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> float:
    was_in = old is not None and all(name in old for name in index.keys)
    is_in = new is not None and all(name in new for name in index.keys)
    before = table.projected(index, old) if was_in and old is not None else None
    after = table.projected(index, new) if is_in and new is not None else None
    if before is None and after is None:
        return 0
    if before is None:
        return _write_units(_size(after))
    if after is None:
        return _write_units(_size(before))
    if any(before[name] != after[name] for name in index.keys):
        return _write_units(_size(before)) + _write_units(_size(after))  # moved: a delete and a put
    return _write_units(max(_size(before), _size(after))) if before != after else 0


def _read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / READ_UNIT_BYTES)) * (1.0 if consistent else 0.5)


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


_serializer = TypeSerializer()
_TYPES = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})


def _attribute_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """Low-level attribute values, whether the caller used the client (already so) or a resource."""
    return {
        name: value
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TYPES
        else _serializer.serialize(value)
        for name, value in record.items()
    }


def _size(item: Mapping[str, Any] | None) -> int:
    """An item's size as DynamoDB counts it: each attribute's name and value."""
    if not item:
        return 0
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return _number_size(content)
    if kind == "B":
        return len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(member.encode()) for member in content)
    if kind == "NS":
        return sum(_number_size(member) for member in content)
    if kind == "BS":
        return sum(len(member) for member in content)
    if kind == "L":  # 3 bytes, and 1 byte per element
        return 3 + sum(1 + _value_size(member) for member in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(member) for name, member in content.items())
    raise ValueError(f"not a DynamoDB attribute value: {value!r}")


def _number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1."""
    digits = format(abs(Decimal(text)).normalize(), "f").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1
