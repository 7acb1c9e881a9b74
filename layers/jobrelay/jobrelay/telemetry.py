"""What the services tell an operator: metrics, and the context a job's work runs in.

`Metrics` is the recorder the services call (`job_submitted(operation)`, `job_ended(job, at)`, ...):
every metric name and dimension is decided here, in one place, and README.md ("Operating jobrelay")
lists them. It writes through a `MetricSink`: CloudWatch EMF through Powertools in the functions
(jobrelay.adapters.emf_metrics, wired in jobrelay.wiring), a `MemorySink` in tests, nothing by default.
Dimensions are low-cardinality only (operation, vendor, status, status class, error code, outcome):
never a job id, an account or a URL.

The job context (`bind_job`) is the job a step works on and the request that submitted it (its
correlation id): the vendor-call meter and the tracer read it, and the handlers add it to every log
line through a listener (`on_bind`). Nothing here imports more than the standard library and the
domain, so a handler module stays cheap to load.
"""

import re
from collections.abc import Callable, Collection, Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the domain (pydantic) is not loaded by a handler that only sets the correlation id
    from jobrelay.domain.job import Job

NAMESPACE = "jobrelay"  # POWERTOOLS_METRICS_NAMESPACE in template.yaml; `service` (jobrelay) is on every dimension set

# Metric names (CloudWatch), in one place: the dashboard and the alarms of template.yaml use them.
JOBS_SUBMITTED = "JobsSubmitted"
JOBS_FINISHED = "JobsFinished"
JOB_ERRORS = "JobErrors"
JOB_DURATION = "JobDuration"
VENDOR_WAIT = "VendorWait"
RECORDS = {"read": "RecordsRead", "sent": "RecordsSent", "written": "RecordsWritten", "failed": "RecordsFailed"}
VENDOR_CALLS = "VendorCalls"
VENDOR_CALL_LATENCY = "VendorCallLatency"
WEBHOOKS = "Webhooks"
CALLBACKS = "Callbacks"
QUEUE_DEPTH = "QueueDepth"
SWEEPER_SETTLED = "SweeperSettled"
SLOTS_FREED = "SlotsFreed"

COUNT, SECONDS, MILLISECONDS = "Count", "Seconds", "Milliseconds"
OTHER = "other"  # a vendor name we do not know (a webhook URL anyone can call) is never a dimension value

Dimensions = dict[str, str]


class MetricSink(Protocol):
    def put(self, name: str, unit: str, value: float, dimension_sets: list[Dimensions]) -> None:
        """Emit one value of metric `name` under each of `dimension_sets` (the first one holds every
        dimension; the others are roll-ups of it)."""


class NoSink:
    def put(self, name: str, unit: str, value: float, dimension_sets: list[Dimensions]) -> None:
        return None


class Recorded:
    """One value a MemorySink kept."""

    def __init__(self, name: str, unit: str, value: float, dimension_sets: list[Dimensions]):
        self.name, self.unit, self.value, self.dimension_sets = name, unit, value, dimension_sets

    @property
    def dimensions(self) -> Dimensions:
        return self.dimension_sets[0]


class MemorySink:
    """Keeps what was emitted (tests). (Plain classes here, not dataclasses: this module is on
    every handler's cold start.)"""

    def __init__(self) -> None:
        self.recorded: list[Recorded] = []

    def put(self, name: str, unit: str, value: float, dimension_sets: list[Dimensions]) -> None:
        self.recorded.append(Recorded(name, unit, value, [dict(d) for d in dimension_sets]))

    def named(self, name: str) -> list[Recorded]:
        return [r for r in self.recorded if r.name == name]


def status_class(status: int | None) -> str:
    """A vendor answer's status class: 2xx, 3xx, 4xx, 5xx, `throttled` (429) or `no_answer` (a timeout,
    a dropped connection). 5xx, throttled and no_answer are the vendor's errors; a 4xx is a refusal."""
    if status is None:
        return "no_answer"
    if status == 429:
        return "throttled"
    return f"{min(max(status // 100, 1), 5)}xx"


VENDOR_ERROR_CLASSES = ("5xx", "throttled", "no_answer")


class Metrics:
    """The metrics jobrelay emits. `vendors`: the vendor names a dimension may carry (others become
    "other"); None trusts the caller (every vendor name then comes from a stored job)."""

    def __init__(self, sink: MetricSink | None = None, vendors: Collection[str] | None = None):
        self._sink = sink or NoSink()
        self._vendors = frozenset(vendors) if vendors is not None else None

    def for_vendors(self, vendors: Collection[str]) -> "Metrics":
        """The same sink, with vendor dimensions limited to `vendors`."""
        return Metrics(self._sink, vendors)

    def _put(self, name: str, unit: str, value: float, *dimension_sets: Dimensions) -> None:
        try:
            self._sink.put(name, unit, value, list(dimension_sets))
        except Exception:  # a metric never breaks the work it measures
            import logging

            logging.getLogger(__name__).warning("metric %s not emitted", name, exc_info=True)

    def _vendor(self, vendor: str) -> str:
        return vendor if self._vendors is None or vendor in self._vendors else OTHER

    # --- jobs -----------------------------------------------------------------------------------

    def job_submitted(self, operation: str) -> None:
        self._put(JOBS_SUBMITTED, COUNT, 1, {"operation": operation}, {})

    def job_ended(self, job: "Job", at: datetime) -> None:
        """A job reached its terminal status (count by operation and status, its error code, its
        duration from submission, the records it counted)."""
        status = job.status.value
        self._put(JOBS_FINISHED, COUNT, 1, {"operation": job.operation, "status": status}, {"status": status})
        if job.error is not None:
            self._put(JOB_ERRORS, COUNT, 1, {"code": job.error.code})
        self._put(JOB_DURATION, SECONDS, max(0.0, (at - job.created_at).total_seconds()), {"operation": job.operation})
        for key, name in RECORDS.items():
            if (count := job.progress.records.get(key)) is not None:
                self._put(name, COUNT, count, {"operation": job.operation})

    def vendor_waited(self, job: "Job", at: datetime) -> None:
        """The vendor said the job is done: how long it took there (from its start)."""
        if job.vendor_started_at is not None:
            seconds = max(0.0, (at - job.vendor_started_at).total_seconds())
            self._put(VENDOR_WAIT, SECONDS, seconds, {"operation": job.operation})

    def queued(self, vendor: str, ahead: int) -> None:
        """A job waits behind its account's concurrency limit, `ahead` jobs before it."""
        self._put(QUEUE_DEPTH, COUNT, ahead, {"vendor": self._vendor(vendor)})

    # --- vendors --------------------------------------------------------------------------------

    def vendor_call(self, vendor: str, call: str, status: int | None, milliseconds: float) -> None:
        """One HTTP exchange with a vendor (`status` None: no answer came)."""
        vendor, klass = self._vendor(vendor), status_class(status)
        full = {"vendor": vendor, "call": call, "status_class": klass}
        self._put(VENDOR_CALLS, COUNT, 1, full, {"vendor": vendor, "status_class": klass}, {"vendor": vendor})
        self._put(VENDOR_CALL_LATENCY, MILLISECONDS, milliseconds, {"vendor": vendor, "call": call}, {"vendor": vendor})

    def webhook(self, vendor: str, outcome: str) -> None:
        """A vendor's webhook: `accepted` (it woke or will wake its job), `ignored` (late, early or
        a duplicate) or `refused` (unknown job, wrong token, too large)."""
        self._put(WEBHOOKS, COUNT, 1, {"vendor": self._vendor(vendor), "outcome": outcome})

    # --- callbacks and the sweeper --------------------------------------------------------------

    def callback(self, outcome: str) -> None:
        """The submitter's callback: `delivered`, or `given_up` (after the state machine's retries; at
        once for a job settled outside its execution: a cancel, the sweeper)."""
        self._put(CALLBACKS, COUNT, 1, {"outcome": outcome})

    def sweeper_settled(self, code: str) -> None:
        """The sweeper settled a job nothing else would (code: DEADLINE_EXCEEDED, NOT_STARTED, EXECUTION_ENDED)."""
        self._put(SWEEPER_SETTLED, COUNT, 1, {"code": code}, {})

    def slots_freed(self, count: int) -> None:
        self._put(SLOTS_FREED, COUNT, count, {})


# --- the job context ------------------------------------------------------------------------------

_job: ContextVar["Job | None"] = ContextVar("jobrelay_job", default=None)
_correlation_id: ContextVar[str | None] = ContextVar("jobrelay_correlation_id", default=None)
_listeners: list[Callable[[Mapping[str, Any]], None]] = []


def on_bind(listener: Callable[[Mapping[str, Any]], None]) -> None:
    """`listener(fields)` is called with the log fields of every job bound (a handler adds them to
    its logger: job_id, operation, vendor, correlation_id)."""
    if listener not in _listeners:
        _listeners.append(listener)


def bind_job(job: "Job") -> None:
    """The job the current work is about (a step binds the job it read)."""
    _job.set(job)
    if job.correlation_id:
        _correlation_id.set(job.correlation_id)
    fields = {"job_id": job.job_id, "operation": job.operation, "vendor": job.vendor}
    if job.correlation_id:
        fields["correlation_id"] = job.correlation_id
    for listener in _listeners:
        listener(fields)


def current_job() -> "Job | None":
    return _job.get()


def set_correlation_id(value: str | None) -> None:
    """The id of the request being served (the API's request id): a job submitted now keeps it."""
    _correlation_id.set(value)


def correlation_id() -> str | None:
    return _correlation_id.get()


def reset() -> None:
    """Forget the context (each invocation starts afresh)."""
    _job.set(None)
    _correlation_id.set(None)


# --- naming a vendor call -------------------------------------------------------------------------

_NAMED_SEGMENT = re.compile(r"[A-Za-z][A-Za-z._-]{0,39}")
_MAX_SEGMENTS = 8


def call_name(method: str, path: str, rpc_method: str | None = None) -> str:
    """A low-cardinality name for a vendor call: an RPC method the body names (Pinpointe's JSON API
    names its call in `requestmethod`), else the method and the path with every segment that could
    be an id or a token (any digit, over 40 characters) as {}."""
    if rpc_method and _NAMED_SEGMENT.fullmatch(rpc_method):
        return rpc_method
    segments = [s if _NAMED_SEGMENT.fullmatch(s) else "{}" for s in path.strip("/").split("/") if s][:_MAX_SEGMENTS]
    return f"{method.upper()} /" + "/".join(segments)
