"""The small interfaces the services depend on. Each has one AWS (or vendor) adapter, injected by
`jobrelay.wiring`; tests inject the in-memory fakes in tests/fakes.py instead."""

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol

from jobrelay.domain.bulk_import import BatchFormat, BatchLimits, ImportTotals, StagedBatch
from jobrelay.domain.idempotency import IdempotencyClaim
from jobrelay.domain.job import Job, JobPage, JobPatch, StoredFile, TimelineEvent, Transition
from jobrelay.domain.lease import Lease
from jobrelay.domain.reconciliation import Reconciler
from jobrelay.domain.schedule import ScheduleRun, ScheduleSpec
from jobrelay.domain.slot_queue import ParkedJob
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_calls import VendorCall, VendorCallPage
from jobrelay.domain.vendor_outcomes import CollectOutcome, PollOutcome, StartOutcome, WaitMode
from jobrelay.domain.vendor_ref import VendorRef

# --- job state ---------------------------------------------------------------------------------


class JobStore(Protocol):
    def create(self, job: Job, event: TimelineEvent, claim: IdempotencyClaim | None = None) -> None:
        """Store a new job and its first timeline event; raises JobConflict if the id exists. With
        `claim` (an Idempotency-Key's, naming this job), the claim is written in the same
        all-or-nothing write: while a live claim holds its (account, key), nothing is written and
        IdempotencyKeyTaken carries the claim that holds it."""

    def find_claim(self, account: str, key: str) -> IdempotencyClaim | None:
        """The live claim on (account, key); None when there is none or it has expired."""

    def release(self, claim: IdempotencyClaim) -> None:
        """Remove `claim` if it is still the one on its key (naming the same job); otherwise a no-op."""

    def get(self, job_id: str) -> Job | None: ...

    def timeline(self, job_id: str) -> list[TimelineEvent]:
        """The job's events, oldest first."""

    def list(
        self,
        *,
        status: JobStatus | None,
        operation: str | None,
        limit: int,
        cursor: dict[str, Any] | None,
        account: str | None = None,
    ) -> JobPage:
        """Jobs, newest first, optionally filtered (every filter given must match). A page may be
        cut short by `limit`, or by the store's read budget when filters no index answers rarely
        match (even empty, with a cursor): a cursor means more jobs may match."""

    def transition(self, job_id: str, target: JobStatus, event: TimelineEvent, patch: JobPatch | None = None) -> Transition:
        """Move the job to `target` if its current status is an allowed predecessor: one
        conditional write that also bumps `version`, sets `updated_at`, applies `patch` and appends
        `event` to the timeline. A failed guard changes nothing."""

    def update(self, job_id: str, patch: JobPatch, event: TimelineEvent | None = None) -> Job | None:
        """Apply `patch` (and append `event`) while the job is not terminal; returns the job as
        written, or None when it was terminal (nothing written) or does not exist."""

    def append_event(self, job_id: str, event: TimelineEvent) -> None: ...


# --- results -----------------------------------------------------------------------------------


class ResultStore(Protocol):
    def put_stream(self, job_id: str, name: str, chunks: Iterable[bytes], content_type: str) -> StoredFile:
        """Stream `chunks` into the job's result folder with constant memory; size and SHA-256 are
        computed on the way through."""

    def put_bytes(self, job_id: str, name: str, data: bytes, content_type: str) -> StoredFile: ...

    def download_url(self, s3_uri: str) -> str:
        """A presigned GET for one of our files."""


# --- the vendor call log ---------------------------------------------------------------------------


class VendorCallLog(Protocol):
    """Every exchange with a vendor during a job (and every webhook it received), kept with the job
    (jobrelay.domain.vendor_calls). Calls are already redacted when they get here."""

    def record(self, job_id: str, call: VendorCall) -> None: ...

    def page(self, job_id: str, *, limit: int, cursor: dict[str, Any] | None) -> VendorCallPage:
        """The job's calls, oldest first (by `at`, then as written); a cursor means more may follow.
        Raises InvalidRequest for a cursor it did not make."""

    def all(self, job_id: str) -> Iterator[VendorCall]:
        """Every call of the job, oldest first, read a page at a time."""


# --- per-account concurrency ----------------------------------------------------------------------


class Slots(Protocol):
    def acquire(self, pool: str, holder: str, limit: int, until: datetime) -> bool:
        """Take one of the pool's `limit` slots for `holder` until `until` (a lease that expires
        frees itself); True also when `holder` holds one already (a retried step)."""

    def release(self, pool: str, holder: str) -> None:
        """Give back `holder`'s slot, if it holds one."""

    def leases(self, pool: str | None = None) -> list[Lease]:
        """The live leases of one pool, or of every pool."""


# --- orchestration and notices -----------------------------------------------------------------


class Workflow(Protocol):
    def start(self, job_id: str) -> str:
        """Start the job's execution, named by the job id; returns its ARN."""

    def stop(self, execution_arn: str, reason: str) -> None: ...

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        """Complete a waiting task; False when the token is no longer waiting (stale, timed out)."""

    def status(self, execution_arn: str) -> str | None:
        """The execution's status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED), None if there is none."""


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class SecretStore(Protocol):
    def get_json(self, name: str) -> dict[str, Any]:
        """The secret's JSON value; raises KeyError when there is no such secret."""


# --- vendors -----------------------------------------------------------------------------------


class VendorSide(Protocol):
    """What every vendor adapter has, whatever the kind of its operation. Adapters raise the step
    errors of jobrelay.domain.errors: VendorTransientError (retried), VendorRejected, VendorJobFailed,
    VendorProtocolError, VendorOutcomeUnknown."""

    # The account's limit of jobs running at once (its secret's max_concurrent_jobs), None: no limit.
    max_concurrent_jobs: int | None

    def cancel(self, job: Job) -> bool:
        """Abort the job at the vendor where the vendor allows it; False when it cannot."""


class AsyncExports(VendorSide, Protocol):
    """An export the vendor runs in the background (OperationKind.ASYNC_EXPORT): start it, follow it,
    collect its result file."""

    wait_mode: WaitMode

    def start(self, job: Job, webhook_url: str | None) -> StartOutcome:
        """Create the work at the vendor (sent once: jobrelay.services.creating_calls). `webhook_url`
        is given when wait_mode is WEBHOOK."""

    def poll(self, job: Job) -> PollOutcome: ...

    def collect(self, job: Job, results: ResultStore) -> CollectOutcome: ...


class PagedReads(VendorSide, Protocol):
    """A read the vendor answers at once, page by page (OperationKind.PAGED_READ): nothing runs at the
    vendor between the steps, so there is nothing to wait for and nothing to cancel."""

    def check(self, job: Job) -> StartOutcome:
        """Make sure the read can succeed before any page is stored (e.g. the record asked for exists:
        VendorRejected if not): the call it will make, and a note on how the result will be read."""

    def collect(self, job: Job, results: ResultStore) -> CollectOutcome:
        """Read every page into the job's result files; a retried Collect starts again at page one."""


# --- bulk imports ------------------------------------------------------------------------------


class VendorImports(VendorSide, Protocol):
    """The vendor side of a bulk import (OperationKind.BULK_IMPORT): open it, stage batches, run it,
    follow it, list failures.

    A vendor that counts the records it has received reports them as `counts["received"]` when
    polled (before the run too): that is how a batch whose answer was lost is settled. One that
    does not is opened afresh instead, and everything staged again (its unrun import is dropped)."""

    def limits_for(self, job: Job) -> BatchLimits:
        """The vendor's limits, as the job's params may narrow them (a smaller request size)."""

    def validate(self, job: Job, record: dict[str, Any]) -> Any:
        """The record as the vendor will get it (a pydantic model), or raise pydantic's
        ValidationError / ValueError with a readable reason. Called before anything is sent."""

    def record_key(self, record: Any) -> str | None: ...

    def batch_format(self, job: Job) -> BatchFormat:
        """How a stage request body is made of validated records: each record's encoding, and the
        framing around and between them. Batches are cut to the byte from it."""

    def open(self, job: Job) -> VendorRef:
        """Create the import at the vendor; returns the adapter's reference to it (a per-import token
        is a secret field of it, never shown)."""

    def usable_until(self, job: Job) -> datetime | None:
        """When the opened import stops accepting calls (a per-import access token's expiry), None
        when it does not expire: staging that could not finish before then is not begun."""

    def stage_concurrency(self, job: Job) -> int:
        """How many stage requests of one import may be out at once (at least 1): the account's
        setting, else the vendor's default. `stage` is then called from that many threads."""

    def stage(self, job: Job, body: bytes, records: int) -> StagedBatch: ...

    def run_started(self, job: Job) -> bool:
        """Whether the import has been run: asked after a run whose answer never came, so that it is
        never run twice. A vendor answer that cannot tell raises VendorOutcomeUnknown."""

    def execute(self, job: Job) -> None:
        """Run the import: one request, sent at once (the engine has asked `run_started` first when
        an earlier run may have reached the vendor)."""

    def poll(self, job: Job) -> PollOutcome: ...

    def failures(self, job: Job) -> Iterable[tuple[int, list[str], str | None]]:
        """Vendor-side failures after the run: (1-based position among the records staged, reasons,
        key if the vendor echoes one). All pages, streamed."""

    def reconcile(self, job: Job, totals: ImportTotals, rec: Reconciler) -> None:
        """Check our totals against the vendor's final counts (job.progress.counts, from the poll that
        found the import finished; job.vendor_status is its status word): add to `rec`
        one check per count the vendor gives, and one shortfall per reason records did not make it
        (refused, failed, not honoured, finished "with errors", a count that does not add up)."""


class ScratchStore(Protocol):
    """Small working files of one job (per-batch line maps, failure parts), kept beside its results."""

    def put(self, job_id: str, name: str, data: bytes) -> None: ...

    def get(self, job_id: str, name: str) -> bytes:
        """Raises KeyError when there is no such file."""


class RecordsSource(Protocol):
    """A user's records file, read as a stream. `if_match` is the version (ETag) the import started
    with: a file replaced since is refused (RecordsFileChanged, jobrelay.domain.errors) rather than
    read from offsets that no longer fit it."""

    def etag(self, s3_uri: str) -> str: ...

    def first_bytes(self, s3_uri: str, n: int, *, if_match: str | None = None) -> bytes: ...

    def open(self, s3_uri: str, start_offset: int = 0, *, if_match: str | None = None) -> Iterable[bytes]: ...


# --- recurring jobs ----------------------------------------------------------------------------


class Scheduler(Protocol):
    """The schedules of this stack (one group), each pointed at the schedules function."""

    def create(self, spec: ScheduleSpec) -> None:
        """Raises ScheduleExists when the name is taken, InvalidRequest when the scheduler refuses
        the definition."""

    def get(self, name: str) -> ScheduleSpec | None: ...

    def update(self, spec: ScheduleSpec) -> bool:
        """Replace the definition of the schedule named `spec.name` (its creation time stays);
        False when there is no such schedule, InvalidRequest when the scheduler refuses it."""

    def list(self) -> list[ScheduleSpec]:
        """Every schedule of the group, by name."""

    def delete(self, name: str) -> bool:
        """False when there was no such schedule."""


class ScheduleRuns(Protocol):
    def record(self, schedule: str, run: ScheduleRun) -> None:
        """Store the run of `schedule` at `run.scheduled_time` (a redelivery overwrites it)."""

    def latest(self, schedule: str, limit: int, since: datetime | None = None) -> list[ScheduleRun]:
        """The schedule's runs scheduled at or after `since`, newest first."""


# --- users' records files ----------------------------------------------------------------------


class Uploads(Protocol):
    """Where users put their records files (the input of bulk imports): straight into our storage,
    each through a presigned PUT of its own, never through the API (its body limit is 256 KiB).
    Uploads land in a folder of their own, one a RecordsSource reads from."""

    def presign_put(self, path: str, content_type: str, now: datetime) -> tuple[str, str, datetime]:
        """(s3_uri, url, expires_at): a URL for one PUT, from `now` until expires_at, of a file with
        that Content-Type at `path` (relative, made unique by the caller) within the uploads folder;
        s3_uri names the file in a bulk import's `source`."""


# --- the queue for concurrency slots -----------------------------------------------------------


class SlotQueue(Protocol):
    """The jobs parked behind their accounts' concurrency limits (Slots), each with the task token
    that wakes it, in submission order per pool (jobrelay.domain.slot_queue)."""

    def park(self, parked: ParkedJob) -> None:
        """Keep `parked` at its place in its pool's queue, replacing the job's earlier entry (an
        older token, a wake-up mark): the job waits on this token now."""

    def parked(self, pool: str | None = None) -> list[ParkedJob]:
        """The live entries of one pool in submission order (read consistently), or of every pool
        (for the sweeper; in no particular order)."""

    def claim_wake(self, parked: ParkedJob, at: datetime) -> bool:
        """Mark the entry woken at `at`, only if it is still as `parked` read it (the same token
        and wake-up mark): of two callers racing to wake one job, exactly one gets True and sends
        its token."""

    def leave(self, pool: str, job_id: str, submitted_at: datetime, *, task_token: str | None = None) -> bool:
        """Take the job out of its pool's queue (it took a slot, or ended); with `task_token`, only
        if its entry still carries that token (not one the job parked with since). True when an
        entry was removed."""
