"""Jobs run through the whole local stack (devstack.LocalStack, in this process) with a Meter on:
each job's own invocations (its steps, its API requests, the vendor's webhook) and what each used,
and its state transitions as its execution's history records them.

The stack runs with the `test` profile's time scale (every Step Functions wait 20 times shorter) and
the vendor sandboxes' short jobs, so a job takes seconds; the waiting a real vendor's time would add
is modelled (bench/cost_model.py), everything else is counted here. StageStepSeconds is template.yaml's
own, so an import takes as many Stage steps as deployed.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.cost_model import QUEUED_START, REPO, Shape, Waits
from bench.metering import InvocationRecord, Meter, Usage
from devstack.stack import VENDORS, LocalStack
from devstack.template import load_yaml
from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.domain.job import Job
from jobrelay.domain.status import JobStatus
from jobrelay.operations import get_operation

FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}  # an execution's, not a job's


@dataclass(frozen=True)
class Typical:
    """A typical job of one operation: its params, how its vendor's sandbox is told the job's size
    and pace (`/_sandbox/config`), and for an import how each line of its records file looks."""

    params: dict[str, Any]
    sandbox: Callable[[int, float | None], dict[str, Any]]  # (records, vendor seconds) -> config
    record: Callable[[int], dict[str, Any]] | None = None  # line n of the records file the client uploads


def _pinpointe(records: int, vendor_seconds: float | None) -> dict[str, Any]:
    """The exports' result size, the autoresponders' sends (grouping "send": a record a send, for
    each of the sandbox's three autoresponders), and how long an export takes."""
    return {"records": records, "autoresponder_sends": max(1, records // 3)} | (
        {"job_seconds": vendor_seconds} if vendor_seconds is not None else {}
    )


def _importer(records: int, vendor_seconds: float | None) -> dict[str, Any]:
    """How long an import takes once it runs (the records are the file's)."""
    return {"process_seconds": vendor_seconds} if vendor_seconds is not None else {}


def _preference(n: int) -> dict[str, Any]:
    return {
        "CustomerName": {"FirstName": "Ada", "LastName": f"Lovelace{n}"},
        "AlternateIds": [{"AlternateIdType": "CRM_ID", "AlternateId": f"C-{n}"}],
        "Emails": [{"EmailAddress": f"ada{n}@example.org", "IsDefault": True}],
    }


def _contact(n: int) -> dict[str, Any]:
    return {"Email": f"c{n}@bulk.example.org", "FirstName": f"Contact {n}"}


# Every operation of GET /operations, as a typical job of it is submitted.
OPERATIONS: dict[str, Typical] = {
    "pinpointe.newsletter_contact_data_summary": Typical({"stat": "4711"}, _pinpointe),
    "pinpointe.list_subscribers": Typical({"list": ["12"], "status": "active"}, _pinpointe),
    "pinpointe.segment_subscribers": Typical({"segmentid": ["3"]}, _pinpointe),
    "pinpointe.tag_subscribers": Typical({"tag": ["7"]}, _pinpointe),
    "pinpointe.autoresponder_results": Typical({"all": True, "grouping": "send", "limit": 1000}, _pinpointe),
    "mypreferences.bulk_import": Typical(
        {"format": "jsonl", "name": "bench", "match_criteria": "AlternateIdType", "match_value": "CRM_ID"},
        _importer,
        _preference,
    ),
    "which50.contact_import": Typical(
        {"format": "jsonl", "contact_list_id": 12, "field_names": ["Email", "FirstName"]}, _importer, _contact
    ),
}


@dataclass
class JobRun:
    """One job as the local stack ran it."""

    operation: str
    job_id: str
    status: str  # the job's final status
    transitions: int  # states entered in its execution's history (retries included)
    invocations: list[InvocationRecord]  # its own: steps, API requests, webhooks
    client_s3_put: int = 0  # the records file the client PUT to its presigned URL

    def by_part(self) -> dict[str, list[Usage]]:
        """Usage by part: each step's name ("start", "poll", ...; a Start that found no free slot,
        one before each park, is QUEUED_START), "api" for its API requests, "webhook" for the
        vendor's webhooks (each invocation behind the HTTP API is also one request)."""
        parts: dict[str, list[Usage]] = defaultdict(list)
        parks = sum(1 for record in self.invocations if record.step == "await_slot")
        starts = 0
        for record in sorted(self.invocations, key=lambda record: record.started):
            usage = record.usage + Usage(api_requests=1 if record.route else 0)
            if record.step == "start":
                starts += 1
                parts[QUEUED_START if starts <= parks else "start"].append(usage)
            elif record.step:
                parts[record.step].append(usage)
            elif record.route and record.route.startswith("POST /webhooks/"):
                parts["webhook"].append(usage)
            else:
                parts["api"].append(usage)
        return parts

    def usage(self) -> Usage:
        total = Usage(transitions=self.transitions, s3_put=self.client_s3_put)
        for usages in self.by_part().values():
            for usage in usages:
                total = total + usage
        return total

    def shape(self) -> Shape:
        parts = self.by_part()
        waits: Waits = "webhook" if "await_webhook" in parts else "polling" if "poll" in parts else "nothing"
        return Shape(waits=waits, stage_steps=len(parts.get("stage", [])), slot_parks=len(parts.get("await_slot", [])))


@dataclass
class StackRunner:
    stack: LocalStack
    meter: Meter
    api: httpx.Client = field(init=False)
    _functions: dict[str, str] = field(init=False)  # logical id -> name

    def __post_init__(self) -> None:
        self.api = httpx.Client(base_url=self.stack.api_url, timeout=60)
        self._functions = {function.logical_id: function.name for function in self.stack.template.functions}

    def function(self, logical_id: str) -> str:
        return self._functions[logical_id]

    # --- jobs ----------------------------------------------------------------------------------------

    def run(self, operation: str, records: int, count: int = 1, vendor_seconds: float | None = None) -> list[JobRun]:
        """`count` jobs of `operation` with `records` records each, submitted at once (their records
        files uploaded first); each job's run once every execution has ended, in the order their
        submissions were served. `vendor_seconds`: how long the sandbox takes over a job (else its
        profile's)."""
        self._prepare_vendor(operation, records, vendor_seconds)
        self.empty_table()
        start = self.meter.mark()
        sources: list[tuple[str | None, list[InvocationRecord]]] = []
        typical = OPERATIONS[operation]
        for _ in range(count):
            mark = self.meter.mark()
            source = self._upload(typical, records) if typical.record is not None else None
            sources.append((source, self._api_records(mark)))
        with ThreadPoolExecutor(max_workers=count) as pool:
            job_ids = list(pool.map(lambda source: self._submit(operation, source[0]), sources))
        self._wait_for_executions(job_ids)
        submissions = {_submitted(record): record for record in self._api_records(start) if record.route == "POST /jobs"}
        runs = []
        for job_id, (source, upload_records) in zip(job_ids, sources, strict=True):
            mark = self.meter.mark()
            job = self.api.get(f"/jobs/{job_id}").json()  # the client reads the result once
            own = [r for r in self.meter.since(start) if _job_of(r) == job_id]
            runs.append(
                JobRun(
                    operation=operation,
                    job_id=job_id,
                    status=job["status"],
                    transitions=self._transitions(job_id),
                    invocations=[*upload_records, submissions[job_id], *self._api_records(mark), *own],
                    client_s3_put=0 if source is None else 1,
                )
            )
        return sorted(runs, key=lambda run: submissions[run.job_id].started)

    def _submit(self, operation: str, source: str | None) -> str:
        params = OPERATIONS[operation].params | ({"source": source} if source is not None else {})
        answer = self.api.post("/jobs", json={"operation": operation, "params": params})
        if answer.status_code != 202:
            raise RuntimeError(f"POST /jobs answered {answer.status_code}: {answer.text}")
        return str(answer.json()["job_id"])

    def empty_table(self) -> None:
        """Every item of the jobs table deleted. moto copies the whole table in every transaction (to
        roll it back), so each step's writes would slow down as earlier jobs pile up: an artifact of
        moto, not DynamoDB, that would creep into the measured durations."""
        client = self.stack.client("dynamodb")
        table = self.stack.template.outputs["JobsTableName"]
        request: dict[str, Any] = {"TableName": table, "ProjectionExpression": "pk, sk"}
        while True:
            page = client.scan(**request)
            keys = [{"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}} for item in page["Items"]]
            for first in range(0, len(keys), 25):
                client.batch_write_item(RequestItems={table: keys[first : first + 25]})
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _api_records(self, mark: int) -> list[InvocationRecord]:
        api = self.function("ApiFunction")
        return [record for record in self.meter.since(mark) if record.function == api]

    def _prepare_vendor(self, operation: str, records: int, vendor_seconds: float | None) -> None:
        sandbox = self.stack.sandboxes[get_operation(operation).vendor]
        httpx.post(f"{sandbox}/_sandbox/reset").raise_for_status()
        if config := OPERATIONS[operation].sandbox(records, vendor_seconds):
            httpx.post(f"{sandbox}/_sandbox/config", json=config).raise_for_status()

    def _upload(self, typical: Typical, records: int) -> str:
        """A records file uploaded as a client does: POST /uploads, then a PUT to the presigned URL."""
        assert typical.record is not None  # an import's
        ticket = self.api.post("/uploads", json={"filename": "records.jsonl"}).json()
        body = "".join(json.dumps(typical.record(n), separators=(",", ":")) + "\n" for n in range(records)).encode()
        httpx.put(ticket["upload_url"], content=body, headers=ticket["headers"], timeout=60).raise_for_status()
        return str(ticket["s3_uri"])

    def _execution_arn(self, job_id: str) -> str:
        machine = self.stack.template.outputs["StateMachineArn"]
        return f"{machine.replace(':stateMachine:', ':execution:')}:{job_id}"

    def _wait_for_executions(self, job_ids: list[str], timeout: float = 300) -> None:
        sfn = self.stack.client("stepfunctions")
        deadline = time.monotonic() + timeout
        waiting = set(job_ids)
        while waiting:
            for job_id in list(waiting):
                if sfn.describe_execution(executionArn=self._execution_arn(job_id))["status"] in FINAL:
                    waiting.discard(job_id)
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"executions still running after {timeout:.0f} s: {sorted(waiting)}")
            time.sleep(0.05)

    def _transitions(self, job_id: str) -> int:
        """States entered, and each retry of a task (a second TaskScheduled in one state): what
        Step Functions Standard bills."""
        sfn = self.stack.client("stepfunctions")
        events: list[dict[str, Any]] = []
        request: dict[str, Any] = {"executionArn": self._execution_arn(job_id), "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**request)
            events.extend(page["events"])
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
        entered = sum(1 for event in events if event["type"].endswith("StateEntered"))
        tasks = sum(1 for event in events if event["type"] == "TaskStateEntered")
        scheduled = sum(1 for event in events if event["type"] == "TaskScheduled")
        return entered + max(0, scheduled - tasks)

    # --- the listings' and the sweeper's reads -------------------------------------------------------

    def seed(self, *, finished: int, open_jobs: int, rare_operation: str, account: str) -> None:
        """Jobs written straight into the table, as the store writes them: `finished` SUCCEEDED ones
        (one in ten of `rare_operation`) a month old, `open_jobs` RUNNING ones of `account` just
        submitted and not started (the sweeper leaves them be for START_GRACE)."""
        client = self.stack.client("dynamodb")
        table = self.stack.template.outputs["JobsTableName"]
        writer = DynamoJobStore(table, client)
        now = datetime.now(UTC)
        items = []
        for n in range(finished):
            created = now - timedelta(days=30, seconds=-n)
            operation = rare_operation if n % 10 == 0 else "pinpointe.list_subscribers"
            items.append(
                writer._job_item(
                    _job(f"job_seeded_done_{n:06d}_{now:%H%M%S%f}", operation, "history", JobStatus.SUCCEEDED, created)
                )
            )
        for n in range(open_jobs):
            created = now - timedelta(seconds=n)
            items.append(
                writer._job_item(
                    _job(
                        f"job_seeded_open_{n:06d}_{now:%H%M%S%f}",
                        "pinpointe.list_subscribers",
                        account,
                        JobStatus.RUNNING,
                        created,
                    )
                )
            )
        for first in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[first : first + 25]]
            if client.batch_write_item(RequestItems={table: batch}).get("UnprocessedItems"):
                raise RuntimeError("moto left seeded jobs unwritten")

    def sweep(self) -> InvocationRecord:
        """One run of the sweeper function, as its schedule runs it."""
        mark = self.meter.mark()
        answer = self.stack.client("lambda").invoke(FunctionName=self.function("SweeperFunction"), Payload=b'{"bench": "sweep"}')
        if answer.get("FunctionError"):
            raise RuntimeError(f"the sweeper failed: {answer['Payload'].read().decode()}")
        (record,) = [r for r in self.meter.since(mark) if isinstance(r.event, dict) and r.event.get("bench") == "sweep"]
        return record

    def list_jobs(self, query: dict[str, Any]) -> tuple[InvocationRecord, dict[str, Any]]:
        """GET /jobs with `query`: its invocation and its answer."""
        mark = self.meter.mark()
        answer = self.api.get("/jobs", params=query)
        if answer.status_code != 200:
            raise RuntimeError(f"GET /jobs answered {answer.status_code}: {answer.text}")
        (record,) = self._api_records(mark)
        return record, answer.json()


def _submitted(record: InvocationRecord) -> str | None:
    """The job a POST /jobs invocation submitted, from its answer."""
    answer = json.loads(record.payload or "{}")
    return json.loads(answer.get("body") or "{}").get("job_id") if isinstance(answer, dict) else None


def _job_of(record: InvocationRecord) -> str | None:
    """The job a step or a webhook invocation worked for."""
    if record.step:
        return record.event.get("job_id")
    if record.route and record.route.startswith("POST /webhooks/"):
        return record.route.split("/")[3]
    return None


def _job(job_id: str, operation: str, account: str, status: JobStatus, created: datetime) -> Job:
    return Job(
        job_id=job_id,
        operation=operation,
        vendor=operation.split(".")[0],
        account=account,
        status=status,
        created_at=created,
        updated_at=created,
        deadline_at=datetime.now(UTC) + timedelta(hours=6),
    )


@contextlib.contextmanager
def metered_stack() -> Iterator[StackRunner]:
    """The local stack in this process, every port free, with a Meter on; its console output (the
    functions' logs, moto's) kept in a file, whose end a failure shows."""
    stage_step = str(load_yaml(REPO / "template.yaml")["Parameters"]["StageStepSeconds"]["Default"])
    meter = Meter()
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as folder:
        log_path = Path(folder) / "stack.log"
        with log_path.open("w") as log:
            try:
                with meter.on(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    stack = LocalStack(
                        profile="test",
                        api_port=0,
                        moto_port=0,
                        sandbox_ports={name: 0 for name in VENDORS},
                        parameter_overrides={"StageStepSeconds": stage_step},
                    )
                    with stack:
                        yield StackRunner(stack, meter)
            except Exception as error:
                log.flush()
                raise RuntimeError(f"{error}\n--- the local stack's log, its end:\n{log_path.read_text()[-4000:]}") from error


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    return work(), time.perf_counter() - started
