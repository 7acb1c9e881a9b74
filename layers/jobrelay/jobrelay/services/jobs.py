"""Submitting, reading, listing and cancelling jobs: what the API function does."""

import base64
import binascii
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from jobrelay.api.models import JobList, JobSubmission, JobView, OperationList, OperationView, VendorCallList
from jobrelay.bulk_import.params import RecordsFileParams
from jobrelay.domain.errors import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyKeyTaken,
    InvalidRequest,
    JobConflict,
    JobNotFound,
    ServiceError,
)
from jobrelay.domain.idempotency import IN_FLIGHT_LIMIT, IdempotencyClaim, IdempotentRequest
from jobrelay.domain.ids import new_job_id, plausible_job_id
from jobrelay.domain.job import Job, JobError, JobPatch, ScheduleLink, TimelineEvent, utcnow
from jobrelay.domain.status import JobStatus
from jobrelay.operations import OPERATIONS, get_operation
from jobrelay.ports import JobStore, ResultStore, VendorCallLog, Workflow
from jobrelay.services.follow_ups import settle_outside_execution
from jobrelay.services.notices import Notices
from jobrelay.services.views import job_view
from jobrelay.settings import Settings

if TYPE_CHECKING:  # jobrelay.telemetry is loaded with the first job, not with the schedules function's module
    from jobrelay.telemetry import Metrics

logger = logging.getLogger(__name__)


class ServiceUnavailable(ServiceError):
    status = 503
    code = "UNAVAILABLE"


class InvalidNextToken(ServiceError):
    """A `next` token we did not make, or made for another query: a bad request as a whole (400),
    not a field whose value could be corrected (422)."""

    status = 400
    code = "INVALID_NEXT_TOKEN"


class RecordsFiles(Protocol):
    """Where a bulk import's records file is (jobrelay.adapters.s3_records.S3RecordsSource)."""

    def head(self, s3_uri: str) -> int:
        """The file's size; ValueError for a URI outside the upload folders, FileNotFoundError
        for a file that is not there."""


class JobService:
    def __init__(
        self,
        store: JobStore,
        results: ResultStore,
        workflow: Workflow,
        notices: Notices,
        settings: Settings,
        cancel_at_vendor: Callable[[Job], bool] | None = None,
        release_slot: Callable[[Job], None] | None = None,
        now: Callable[[], datetime] = utcnow,
        records: RecordsFiles | None = None,
        calls: VendorCallLog | None = None,
        metrics: "Metrics | None" = None,
    ):
        self._store = store
        self._results = results
        self._workflow = workflow
        self._notices = notices
        self._settings = settings
        self._cancel_at_vendor = cancel_at_vendor
        self._release_slot = release_slot
        self._now = now
        # None where the records files cannot be read (the schedules function): an import's step
        # checks its file again when it opens it, whoever submitted the job.
        self._records = records
        self._calls = calls  # the vendor call log (None: none is kept, every job's is empty)
        if metrics is None:
            from jobrelay.telemetry import Metrics

            metrics = Metrics()
        self._metrics = metrics

    # --- submit ---------------------------------------------------------------------------------

    def submit(
        self,
        submission: JobSubmission,
        *,
        idempotency_key: str | None = None,
        job_id: str | None = None,
        schedule: ScheduleLink | None = None,
    ) -> Job:
        """Validate, store the job, start its execution. Returns the stored job. A schedule's run
        gives its own `job_id` (the same for every delivery of the run: the store refuses a second
        job with JobConflict) and the `schedule` link the job keeps. With `idempotency_key`, only
        the account's first request with that key in 24 hours creates a job (`_submit_once`)."""
        if idempotency_key is not None:
            request = IdempotentRequest.of(submission.account, idempotency_key, submission.model_dump(mode="json"))
            return self._submit_once(request, lambda: self._new_job(submission, job_id, schedule))
        job, submitted = self._new_job(submission, job_id, schedule)
        self._store.create(job, submitted)
        self._metrics.job_submitted(job.operation)
        return self.start_execution(job, fail_if_not_started=True)

    def _new_job(self, submission: JobSubmission, job_id: str | None, schedule: ScheduleLink | None) -> tuple[Job, TimelineEvent]:
        """The job `submission` asks for, its params and records file checked (InvalidRequest), and
        its first timeline event."""
        operation = get_operation(submission.operation)
        params = operation.validate_params(submission.params)
        if isinstance(params, RecordsFileParams) and self._records is not None:
            self._check_records_file(params.source)
        now = self._now()
        timeout = submission.timeout_seconds or self._settings.default_job_timeout_seconds
        job = Job(
            job_id=job_id or new_job_id(),
            operation=operation.name,
            vendor=operation.vendor,
            account=submission.account,
            created_at=now,
            updated_at=now,
            deadline_at=now + timedelta(seconds=timeout),
            params=params.model_dump(mode="json", exclude_none=True),
            callback_url=submission.callback_url,
            schedule=schedule,
            correlation_id=_correlation_id(),
        )
        submitted = {"operation": job.operation} | ({"schedule": schedule.name} if schedule else {})
        return job, TimelineEvent(at=now, event="submitted", detail=submitted)

    def _submit_once(self, request: IdempotentRequest, new_job: Callable[[], tuple[Job, TimelineEvent]]) -> Job:
        """The job of the account's first request with this Idempotency-Key (within 24 h), created
        here if this is that request. The key's claim is stored with its job in one write, so
        requests racing with the same key create one job between them; each of the others gets
        IdempotencyKeyReused (409) for another body, IdempotencyInProgress (409, Retry-After) while
        the first is still starting the job, and otherwise the job. A first request that died
        before starting its job (a crash, a timeout) is taken over once IN_FLIGHT_LIMIT has passed.
        The key is checked before the body is: a retry gets its job even if, say, its records file
        has gone since."""
        for _ in range(2):  # a second round only after giving up a claim whose job never started
            held = self._store.find_claim(request.account, request.key)
            if held is None:
                job, submitted = new_job()
                claim = request.claim(job.job_id, job.created_at)
                try:
                    self._store.create(job, submitted, claim)
                except IdempotencyKeyTaken as taken:  # another request with the key stored its job first
                    held = taken.claim
                else:
                    self._metrics.job_submitted(job.operation)
                    return self._start_claimed(job, claim)
            if (claimed := self._claimed_job(held, request)) is not None:
                return claimed
        raise IdempotencyInProgress(
            "a request with this Idempotency-Key is still being processed",
            {"retry_after_seconds": IdempotencyInProgress.retry_after},
        )

    def _claimed_job(self, held: IdempotencyClaim, request: IdempotentRequest) -> Job | None:
        """What a request gets for a key another request holds; None when that request's job never
        started (its execution could not start, or the sweeper gave up on it): the claim is given
        up, so that sending the request again submits it again, as the 503 it got said."""
        if not held.asks_the_same_as(request):
            raise IdempotencyKeyReused("this Idempotency-Key was already used with a different request")
        job = self._store.get(held.job_id)
        if job is None or _never_started(job):
            self._store.release(held)
            return None
        if job.status is JobStatus.SUBMITTED and job.execution_arn is None:
            if self._now() < job.created_at + IN_FLIGHT_LIMIT:
                raise IdempotencyInProgress(
                    "a request with this Idempotency-Key is still being processed: ask again shortly for its job",
                    {"retry_after_seconds": IdempotencyInProgress.retry_after},
                )
            # The first request died before it started the job: start it, as that request would
            # have (a first request still running starts the same execution, named by the job id).
            return self._start_claimed(job, held)
        return job

    def _start_claimed(self, job: Job, claim: IdempotencyClaim) -> Job:
        try:
            return self.start_execution(job, fail_if_not_started=True)
        except ServiceUnavailable:
            # The job is FAILED (START_FAILED) and the answer says "submit it again": free the key
            # for that. Should this fail too, the next request with the key frees it (_claimed_job).
            try:
                self._store.release(claim)
            except Exception:
                logger.exception("could not release the Idempotency-Key of job %s", job.job_id)
            raise

    def start_execution(self, job: Job, *, fail_if_not_started: bool = False) -> Job:
        """Start the stored `job`'s execution, then record its ARN on the job; returns the job as
        stored. The execution is named by the job id, so starting one that an earlier call did
        start is that same execution. An execution that cannot be started: with
        `fail_if_not_started` the job is marked FAILED (START_FAILED) and ServiceUnavailable
        raised; without it, the workflow's error is raised and the job left as it was."""
        try:
            execution_arn = self._workflow.start(job.job_id)
        except Exception:
            if not fail_if_not_started:
                raise
            logger.exception("could not start the execution of job %s", job.job_id)
            failed = self._store.transition(
                job.job_id,
                JobStatus.FAILED,
                TimelineEvent(at=self._now(), event="failed", detail={"code": "START_FAILED"}),
                JobPatch(error=JobError(code="START_FAILED", message="the job's execution could not be started")),
            )
            if failed.changed:
                self._metrics.job_ended(failed.job, self._now())
            raise ServiceUnavailable("the job could not be started; it is marked FAILED, submit it again") from None
        return self._store.update(job.job_id, JobPatch(execution_arn=execution_arn)) or job

    def _check_records_file(self, source: str) -> None:
        """Refuse at once (422) an import whose file is outside the upload folders, missing or
        empty, rather than accept a job that can only fail later."""
        try:
            size = self._records.head(source)  # type: ignore[union-attr]
        except (ValueError, FileNotFoundError) as exc:
            raise InvalidRequest(
                "params are not valid: the records file cannot be imported",
                details=[{"field": "params.source", "message": str(exc)}],
            ) from None
        if size == 0:
            raise InvalidRequest(
                "params are not valid: the records file is empty",
                details=[{"field": "params.source", "message": f"{source} is empty (0 bytes)"}],
            )

    # --- read -----------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobView:
        job = self._require(job_id)
        return job_view(job, self._results, self._store.timeline(job_id), now=self._now())

    def list(
        self,
        *,
        status: str | None,
        operation: str | None,
        limit: int,
        next_token: str | None,
        account: str | None = None,
    ) -> JobList:
        """A page of jobs, newest first. `status` and `operation` are read in any casing (they
        name a fixed set); `account` is a name the submitter chose, so it is matched exactly."""
        status_filter = _parse_status(status)
        operation_filter = _parse_operation(operation)
        filters = [status_filter.value if status_filter else None, operation_filter]
        if account is not None:  # tokens from before the account filter existed stay valid
            filters.append(account)
        cursor = _decode_token(next_token, filters) if next_token else None
        try:
            page = self._store.list(status=status_filter, operation=operation_filter, account=account, limit=limit, cursor=cursor)
        except InvalidRequest:
            if cursor is None:
                raise
            raise InvalidNextToken("next token is not valid") from None  # the store did not make this cursor
        return JobList(
            jobs=[job_view(job, self._results, now=self._now()) for job in page.jobs],
            next=_encode_token(page.cursor, filters) if page.cursor else None,
        )

    def vendor_calls(self, job_id: str, *, limit: int, next_token: str | None) -> VendorCallList:
        """A page of the job's vendor call log, oldest first; NOT_FOUND for an unknown job."""
        self._require(job_id)
        if self._calls is None:
            return VendorCallList(calls=[], next=None)
        filters: list[str | None] = ["vendor-calls", job_id]
        cursor = _decode_token(next_token, filters) if next_token else None
        try:
            page = self._calls.page(job_id, limit=limit, cursor=cursor)
        except InvalidRequest:
            raise InvalidNextToken("next token is not valid") from None
        return VendorCallList(calls=page.calls, next=_encode_token(page.cursor, filters) if page.cursor else None)

    @staticmethod
    def operations() -> OperationList:
        return OperationList(
            operations=[
                OperationView(name=op.name, vendor=op.vendor, description=op.description, params_schema=op.params_schema())
                for op in OPERATIONS.values()
            ]
        )

    # --- cancel ---------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> JobView:
        """Cancel a job that has not ended: mark it CANCELLED (one conditional write, so it cannot
        overwrite a result that won the race), stop its execution, abort at the vendor where the
        vendor allows it, and announce it. Cancelling a cancelled job is a no-op."""
        job = self._require(job_id)
        if job.status is not JobStatus.CANCELLED:
            if job.is_terminal:
                raise JobConflict(f"the job has already ended ({job.status.value})", details={"status": job.status.value})
            transition = self._store.transition(
                job_id,
                JobStatus.CANCELLED,
                TimelineEvent(at=self._now(), event="cancelled", detail={"by": "api", "was": job.status.value}),
                JobPatch(error=JobError(code="CANCELLED", message="cancelled on request")),
            )
            if transition.changed:
                self._metrics.job_ended(transition.job, self._now())
                self._after_cancel(transition.job)
            elif transition.job.status is not JobStatus.CANCELLED:
                raise JobConflict(
                    f"the job ended ({transition.job.status.value}) before it could be cancelled",
                    details={"status": transition.job.status.value},
                )
        return self.get(job_id)

    def _after_cancel(self, job: Job) -> None:
        # The job is CANCELLED whatever happens here: each outcome (or failure) goes on its timeline.
        settle_outside_execution(
            self._store,
            self._workflow,
            self._notices,
            job,
            self._now,
            stop_reason="cancelled on request",
            cancel_at_vendor=self._cancel_at_vendor,
            release_slot=self._release_slot,
            count_callback=self._metrics.callback if self._metrics is not None else None,
        )

    def _require(self, job_id: str) -> Job:
        job = self._store.get(job_id) if plausible_job_id(job_id) else None
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job


def _never_started(job: Job) -> bool:
    """A job that ended without its execution ever starting: refused by Step Functions
    (START_FAILED), or left unstarted and settled by the sweeper (NOT_STARTED)."""
    return job.status is JobStatus.FAILED and job.error is not None and job.error.code in ("START_FAILED", "NOT_STARTED")


def _correlation_id() -> str | None:
    """The id of the request being served (jobrelay.telemetry), kept with the job it submits."""
    from jobrelay.telemetry import correlation_id

    return correlation_id()


def _parse_operation(operation: str | None) -> str | None:
    if operation is None:
        return None
    by_folded_name = {name.casefold(): name for name in OPERATIONS}
    try:
        return by_folded_name[operation.strip().casefold()]
    except KeyError:
        raise InvalidRequest(f"unknown operation {operation!r}", details={"known_operations": sorted(OPERATIONS)}) from None


def _parse_status(status: str | None) -> JobStatus | None:
    if status is None:
        return None
    try:
        return JobStatus(status.strip().upper())
    except ValueError:
        raise InvalidRequest(f"unknown status {status!r}", details={"statuses": [s.value for s in JobStatus]}) from None


# The `next` token is opaque to clients: base64url JSON of the store's cursor plus the filters it
# belongs to, so a token cannot be replayed against a different query.
def _encode_token(cursor: dict[str, Any], filters: list[str | None]) -> str:
    raw = json.dumps({"c": cursor, "f": filters}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, filters: list[str | None]) -> dict[str, Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor, token_filters = decoded["c"], decoded["f"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidNextToken("next token is not valid") from None
    if token_filters != filters or not isinstance(cursor, dict):
        raise InvalidNextToken("next token belongs to a different query (status/operation/account filters changed)")
    return cursor
