"""In-memory fakes of the ports, with the adapters' semantics, for unit tests of the services.

InMemoryJobStore is held to DynamoJobStore's behaviour by tests/integration/test_jobstore_contract.py,
which runs the same tests against both; the other fakes mirror their adapters' documented answers
(KeyError for a missing secret, False for a token nobody waits on, ValueError for a foreign URI).
"""

import copy
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from jobrelay.domain.errors import IdempotencyKeyTaken, InvalidRequest, JobConflict, JobNotFound, ScheduleExists
from jobrelay.domain.idempotency import IdempotencyClaim
from jobrelay.domain.job import Job, JobPage, JobPatch, StoredFile, TimelineEvent, Transition, utcnow
from jobrelay.domain.lease import Lease
from jobrelay.domain.schedule import ScheduleRun, ScheduleSpec
from jobrelay.domain.status import ALLOWED_PREDECESSORS, JobStatus
from jobrelay.domain.vendor_calls import VendorCall, VendorCallPage

_BACKEND_ONLY_FIELDS = tuple(name for name, info in Job.model_fields.items() if info.exclude)


class InMemoryJobStore:
    """JobStore in a dict. Every method is atomic (one lock), like DynamoDB's conditional writes,
    and hands out copies, so a caller's edits never reach the stored state."""

    def __init__(self, clock: Callable[[], datetime] = utcnow):
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._events: dict[str, list[TimelineEvent]] = {}
        self._claims: dict[tuple[str, str], IdempotencyClaim] = {}  # (account, key) -> its claim

    def create(self, job: Job, event: TimelineEvent, claim: IdempotencyClaim | None = None) -> None:
        with self._lock:
            if claim is not None:
                held = self._claims.get((claim.account, claim.key))
                if held is not None and held.is_live(self._clock()):
                    raise IdempotencyKeyTaken(held)
            if job.job_id in self._jobs:
                raise JobConflict(f"job {job.job_id} already exists")
            self._jobs[job.job_id] = _copy(job)
            self._events[job.job_id] = [event.model_copy(deep=True)]
            if claim is not None:
                self._claims[(claim.account, claim.key)] = claim

    def find_claim(self, account: str, key: str) -> IdempotencyClaim | None:
        with self._lock:
            held = self._claims.get((account, key))
            return held if held is not None and held.is_live(self._clock()) else None

    def release(self, claim: IdempotencyClaim) -> None:
        with self._lock:
            held = self._claims.get((claim.account, claim.key))
            if held is not None and held.job_id == claim.job_id:
                del self._claims[(claim.account, claim.key)]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return _copy(job) if job else None

    def timeline(self, job_id: str) -> list[TimelineEvent]:
        with self._lock:
            events = self._events.get(job_id, [])
            return [event.model_copy(deep=True) for event in sorted(events, key=lambda event: event.at)]

    def list(
        self,
        *,
        status: JobStatus | None,
        operation: str | None,
        limit: int,
        cursor: dict[str, Any] | None,
        account: str | None = None,
    ) -> JobPage:
        after = _position(cursor) if cursor is not None else None
        with self._lock:
            matching = [
                job
                for job in self._jobs.values()
                if (status is None or job.status == status)
                and (operation is None or job.operation == operation)
                and (account is None or job.account == account)
            ]
        newest_first = sorted(matching, key=_order, reverse=True)
        remaining = [job for job in newest_first if after is None or _order(job) < after]
        page = remaining[:limit]
        next_cursor = _cursor(page[-1]) if len(remaining) > limit else None
        return JobPage(jobs=[_copy(job) for job in page], cursor=next_cursor)

    def transition(self, job_id: str, target: JobStatus, event: TimelineEvent, patch: JobPatch | None = None) -> Transition:
        if not ALLOWED_PREDECESSORS[target]:
            raise ValueError(f"{target} is a starting status, never the target of a transition")
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise JobNotFound(f"job {job_id} does not exist")
            if job.status not in ALLOWED_PREDECESSORS[target]:
                return Transition(job=_copy(job), changed=False)
            changes = {"status": target, "version": job.version + 1, **(patch.fields() if patch else {})}
            written = self._write(job, changes, event)
            return Transition(job=_copy(written), changed=True)

    def update(self, job_id: str, patch: JobPatch, event: TimelineEvent | None = None) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.is_terminal:
                return None
            return _copy(self._write(job, patch.fields(), event))

    def append_event(self, job_id: str, event: TimelineEvent) -> None:
        with self._lock:
            self._events.setdefault(job_id, []).append(event.model_copy(deep=True))

    def _write(self, job: Job, changes: dict[str, Any], event: TimelineEvent | None) -> Job:
        """The job with `changes` and a new updated_at, validated as the adapter's read-back is."""
        written = Job.model_validate(_record(job) | changes | {"updated_at": self._clock()})
        self._jobs[job.job_id] = written
        if event is not None:
            self._events.setdefault(job.job_id, []).append(event.model_copy(deep=True))
        return written


def _record(job: Job) -> dict[str, Any]:
    return job.model_dump() | {name: getattr(job, name) for name in _BACKEND_ONLY_FIELDS}


def _copy(job: Job) -> Job:
    return job.model_copy(deep=True)


def _order(job: Job) -> tuple[datetime, str]:
    return (job.created_at, job.job_id)


def _cursor(job: Job) -> dict[str, Any]:
    return {"created_at": job.created_at.isoformat(), "job_id": job.job_id}


def _position(cursor: Any) -> tuple[datetime, str]:
    try:
        return (datetime.fromisoformat(cursor["created_at"]), cursor["job_id"])
    except (TypeError, KeyError, ValueError):
        raise InvalidRequest("next token is not valid") from None


# --- results -----------------------------------------------------------------------------------


class InMemoryVendorCallLog:
    """VendorCallLog in a dict: each job's calls, oldest first (by `at`, then as written); held to
    DynamoVendorCallLog by tests/integration/test_vendor_call_log_contract.py. `fail` makes every
    write raise (a log that cannot be written)."""

    def __init__(self) -> None:
        self._calls: dict[str, list[tuple[tuple[datetime, int], VendorCall]]] = {}
        self._written = 0
        self._lock = threading.Lock()
        self.fail = False

    def record(self, job_id: str, call: VendorCall) -> None:
        if self.fail:
            raise RuntimeError("the call log is not available")
        with self._lock:
            self._written += 1
            calls = self._calls.setdefault(job_id, [])
            calls.append(((call.at, self._written), call.model_copy(deep=True)))
            calls.sort(key=lambda entry: entry[0])

    def page(self, job_id: str, *, limit: int, cursor: dict[str, Any] | None) -> VendorCallPage:
        with self._lock:
            calls = list(self._calls.get(job_id, []))
        start = 0
        if cursor is not None:
            position = cursor.get("position") if isinstance(cursor, dict) and cursor.keys() == {"position"} else None
            if not isinstance(position, int) or not 0 < position <= len(calls):
                raise InvalidRequest("next token is not valid")
            start = position
        shown = calls[start : start + limit]
        more = start + limit < len(calls)
        return VendorCallPage(
            calls=[call.model_copy(deep=True) for _, call in shown], cursor={"position": start + limit} if more else None
        )

    def all(self, job_id: str) -> Iterator[VendorCall]:
        if self.fail:
            raise RuntimeError("the call log is not available")
        with self._lock:
            calls = list(self._calls.get(job_id, []))
        for _, call in calls:
            yield call.model_copy(deep=True)


class InMemoryResultStore:
    """ResultStore in a dict of key -> bytes, under the same keys as S3ResultStore."""

    def __init__(self, bucket: str = "fake-results"):
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}

    def put_stream(self, job_id: str, name: str, chunks: Iterable[bytes], content_type: str) -> StoredFile:
        return self.put_bytes(job_id, name, b"".join(chunks), content_type)

    def put_bytes(self, job_id: str, name: str, data: bytes, content_type: str) -> StoredFile:
        return self.put_object_at(f"results/{job_id}/{name}", data, content_type)

    def put_object_at(self, key: str, data: bytes, content_type: str) -> StoredFile:
        self.objects[key] = bytes(data)
        self.content_types[key] = content_type
        return StoredFile(
            name=key.rsplit("/", 1)[-1],
            s3_uri=f"s3://{self.bucket}/{key}",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content_type=content_type,
        )

    def download_url(self, s3_uri: str) -> str:
        return f"https://{self.bucket}.s3.example.test/{self._result_key_of(s3_uri)}?signature=fake"

    def read(self, s3_uri: str) -> bytes:
        """What a test would download from `s3_uri`."""
        return self.objects[s3_uri.removeprefix(f"s3://{self.bucket}/")]

    def _result_key_of(self, s3_uri: str) -> str:
        key = s3_uri.removeprefix(f"s3://{self.bucket}/")
        if key == s3_uri or not key.startswith("results/"):
            raise ValueError(f"not a result of this store: {s3_uri}")
        return key


# --- orchestration and notices -----------------------------------------------------------------


@dataclass
class FakeWorkflow:
    """Workflow that records what was asked. A test marks a task token as waiting with `wait`;
    `resume` succeeds once per waiting token, as SendTaskSuccess does."""

    state_machine_arn: str = "arn:aws:states:us-east-1:123456789012:stateMachine:jobrelay-jobs"
    started: list[str] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)  # execution ARN -> reason
    waiting: set[str] = field(default_factory=set)
    resumed: dict[str, dict[str, Any]] = field(default_factory=dict)  # task token -> output
    ended: dict[str, str] = field(default_factory=dict)  # execution ARN -> final status, set by a test

    def start(self, job_id: str) -> str:
        if job_id not in self.started:  # a repeated start is the same execution
            self.started.append(job_id)
        return self.execution_arn(job_id)

    def stop(self, execution_arn: str, reason: str) -> None:
        self.stopped.setdefault(execution_arn, reason)

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        if task_token not in self.waiting:
            return False
        self.waiting.remove(task_token)
        self.resumed[task_token] = _json_round_trip(output)
        return True

    def status(self, execution_arn: str) -> str | None:
        """Started executions run until stopped (ABORTED) or ended by a test (`ended`)."""
        if execution_arn in self.ended:
            return self.ended[execution_arn]
        if execution_arn in self.stopped:
            return "ABORTED"
        return "RUNNING" if any(self.execution_arn(job_id) == execution_arn for job_id in self.started) else None

    def wait(self, task_token: str) -> None:
        self.waiting.add(task_token)

    def execution_arn(self, job_id: str) -> str:
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{job_id}"


@dataclass
class FakeEventPublisher:
    """EventPublisher that keeps (detail_type, detail), the detail as EventBridge would receive it."""

    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.published.append((detail_type, _json_round_trip(detail)))


class InMemorySecretStore:
    def __init__(self, secrets: dict[str, dict[str, Any]] | None = None):
        self.secrets = dict(secrets or {})

    def get_json(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.secrets[name])


def _json_round_trip(value: dict[str, Any]) -> dict[str, Any]:
    """What the AWS side receives: the adapters serialise with pydantic_core, so must the fakes
    (a detail that cannot be serialised fails here as it would there)."""
    return json.loads(to_json(value))


class InMemoryScratch:
    """ScratchStore in a dict."""

    def __init__(self):
        self.files: dict[tuple[str, str], bytes] = {}

    def put(self, job_id: str, name: str, data: bytes) -> None:
        self.files[(job_id, name)] = bytes(data)

    def get(self, job_id: str, name: str) -> bytes:
        return self.files[(job_id, name)]


@dataclass
class InMemorySlots:
    """Slots as the DynamoDB adapter keeps them: numbered per pool, free when absent or expired."""

    clock: Callable[[], datetime] = utcnow
    slots: dict[tuple[str, int], Lease] = field(default_factory=dict)

    def acquire(self, pool: str, holder: str, limit: int, until: datetime) -> bool:
        if any(lease.holder == holder for lease in self.leases(pool)):
            return True
        for n in range(limit):
            lease = self.slots.get((pool, n))
            if lease is None or lease.expires_at <= self.clock():
                self.slots[(pool, n)] = Lease(pool=pool, holder=holder, expires_at=until)
                return True
        return False

    def release(self, pool: str, holder: str) -> None:
        for key, lease in list(self.slots.items()):
            if key[0] == pool and lease.holder == holder:
                del self.slots[key]

    def leases(self, pool: str | None = None) -> list[Lease]:
        now = self.clock()
        return [lease for (p, _), lease in self.slots.items() if (pool is None or p == pool) and lease.expires_at > now]


# --- recurring jobs ----------------------------------------------------------------------------


class InMemoryScheduler:
    """Scheduler in a dict, keeping specs as EventBridgeScheduler reads them back (Input through JSON,
    creation and modification times set)."""

    def __init__(self, clock: Callable[[], datetime] = utcnow):
        self._clock = clock
        self.schedules: dict[str, ScheduleSpec] = {}

    def create(self, spec: ScheduleSpec) -> None:
        if spec.name in self.schedules:
            raise ScheduleExists(f"a schedule named {spec.name!r} already exists")
        now = self._clock()
        self.schedules[spec.name] = replace(
            spec, target_input=json.loads(json.dumps(spec.target_input)), created_at=now, updated_at=now
        )

    def get(self, name: str) -> ScheduleSpec | None:
        return self.schedules.get(name)

    def update(self, spec: ScheduleSpec) -> bool:
        """The whole definition replaced, as UpdateSchedule does; the creation time kept."""
        current = self.schedules.get(spec.name)
        if current is None:
            return False
        self.schedules[spec.name] = replace(
            spec,
            target_input=json.loads(json.dumps(spec.target_input)),
            created_at=current.created_at,
            updated_at=self._clock(),
        )
        return True

    def list(self) -> list[ScheduleSpec]:
        return [self.schedules[name] for name in sorted(self.schedules)]

    def delete(self, name: str) -> bool:
        return self.schedules.pop(name, None) is not None


class InMemoryScheduleRuns:
    """ScheduleRuns in a dict keyed by (schedule, scheduled time): a redelivered run overwrites its own."""

    def __init__(self):
        self.runs: dict[tuple[str, datetime], ScheduleRun] = {}

    def record(self, schedule: str, run: ScheduleRun) -> None:
        self.runs[(schedule, run.scheduled_time)] = run

    def latest(self, schedule: str, limit: int, since: datetime | None = None) -> list[ScheduleRun]:
        mine = [run for (name, moment), run in self.runs.items() if name == schedule and (since is None or moment >= since)]
        return sorted(mine, key=lambda run: run.scheduled_time, reverse=True)[:limit]


class SteppedClock:
    """Time moves only when the timer sleeps, jumping to the moment it waits for, until `until`:
    then the timer blocks until it is stopped. No test waits for the wall clock."""

    def __init__(self, start: datetime, until: datetime):
        self.current, self.until = start, until

    def now(self) -> datetime:
        return self.current

    def sleep_until(self, moment: datetime, stop: threading.Event) -> bool:
        if moment > self.until:
            return stop.wait()
        self.current = max(self.current, moment)
        return stop.is_set()
