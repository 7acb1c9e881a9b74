"""The state machine's steps (statemachines/job.asl.json): start, await_slot, await_webhook, poll,
collect, fail, notify, callback_failed.

Every step is safe to run again (Step Functions retries them): it reads the job first, does
nothing to a job that has already ended, and changes status only through the store's guarded
transitions. Each returns a `StepOutput`; its `next` is what the ASL's Route state follows.
"""

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from jobrelay.domain.backoff import bounded_wait, seconds_left
from jobrelay.domain.errors import (
    STEP_ERRORS,
    JobDeadlineExceeded,
    JobEndedMeanwhile,
    VendorJobFailed,
    VendorOutcomeUnknown,
    VendorProtocolError,
)
from jobrelay.domain.job import Job, JobError, JobPatch, JobResult, Progress, TimelineEvent, utcnow
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_calls import VENDOR_CALLS_CONTENT_TYPE, VENDOR_CALLS_FILE
from jobrelay.domain.vendor_outcomes import PollOutcome, VendorState
from jobrelay.drivers.base import Driver
from jobrelay.ports import JobStore, ResultStore, VendorCallLog, Workflow
from jobrelay.services import progress
from jobrelay.services.concurrency import AccountConcurrency
from jobrelay.services.notices import Notices
from jobrelay.services.vendor_calls import jsonl_chunks, recording
from jobrelay.settings import Settings
from jobrelay.telemetry import Metrics, bind_job

logger = logging.getLogger(__name__)

Next = Literal["stage", "wait_slot", "wait_webhook", "wait_poll", "collect", "notify", "done"]

# A job queued behind its account's concurrency limit parks (WaitForSlot) until a freed slot wakes
# it: waiting costs no state transitions. This is the parked task's timeout, the last fallback for a
# lost wake-up (the sweeper catches one within minutes); then Start looks again. An hour keeps a job
# queued for an hour within its budget of 5 transitions (docs/DESIGN.md, bench/transitions.py).
SLOT_WAIT_MAX_SECONDS = 3600


class StepInput(BaseModel):
    step: Literal["start", "stage", "await_slot", "await_webhook", "poll", "collect", "fail", "notify", "callback_failed"]
    job_id: str
    task_token: str | None = None
    woken_by: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class StepOutput(BaseModel):
    job_id: str
    status: JobStatus
    next: Next
    wait_seconds: int | None = None
    # Filled in by WaitForWebhook (ResultPath $.woken_by); present so Poll's "$.woken_by" always resolves.
    woken_by: dict[str, Any] | None = None


class StepRunner:
    def __init__(
        self,
        store: JobStore,
        workflow: Workflow,
        notices: Notices,
        driver_for: Callable[[Job], Driver[Any]],
        settings: Settings,
        now: Callable[[], datetime] = utcnow,
        concurrency: AccountConcurrency | None = None,
        calls: VendorCallLog | None = None,
        results: ResultStore | None = None,
        metrics: Metrics | None = None,
    ):
        """`driver_for(job)`: the driver of the job's kind of operation (jobrelay.drivers.directory).
        `calls`: the vendor call log each step's vendor calls go to, written as `vendor_calls.jsonl`
        into `results` when the job's result is collected (none: no log is kept)."""
        self._store = store
        self._workflow = workflow
        self._notices = notices
        self._driver_for = driver_for
        self._settings = settings
        self._now = now
        self._concurrency = concurrency
        self._calls = calls
        self._results = results
        self._metrics = metrics or Metrics()
        self._seconds_left: Callable[[], float] = lambda: float("inf")

    def run(self, step: StepInput, seconds_left: Callable[[], float] | None = None) -> StepOutput | None:
        """Run one step; `seconds_left` is the Lambda's remaining time (long steps stop early)."""
        self._seconds_left = seconds_left or (lambda: float("inf"))
        try:
            with recording(step.job_id, step.step, self._calls, self._now):
                return getattr(self, f"_{step.step}")(step)
        except (VendorProtocolError, VendorOutcomeUnknown) as unreadable:
            self._keep_unreadable_answer(step, unreadable)
            raise

    def _keep_unreadable_answer(self, step: StepInput, error: VendorProtocolError | VendorOutcomeUnknown) -> None:
        """Put what the vendor said (a bounded, redacted excerpt) on the timeline before the error
        leaves: the operator sees the real answer where the docs left its shape open."""
        detail: dict[str, Any] = {"step": step.step, "error": type(error).__name__, "message": str(error)}
        if error.answer is not None:
            detail["answer"] = error.answer
        self._store.append_event(step.job_id, TimelineEvent(at=self._now(), event="vendor_answer_unreadable", detail=detail))

    # --- start ----------------------------------------------------------------------------------

    def _start(self, step: StepInput) -> StepOutput:
        job = self._job(step.job_id)
        if job.is_terminal:
            return self._ended(job)
        self._check_deadline(job)
        driver = self._driver_for(job)
        if job.status is JobStatus.SUBMITTED:
            ahead = self._admit(job, driver)
            if ahead:
                return self._queued(job, ahead)
            # `polls` counted the looks for a slot while queued: the vendor's polling starts afresh.
            moved = self._store.transition(
                job.job_id,
                JobStatus.STARTING,
                TimelineEvent(at=self._now(), event="starting"),
                JobPatch(polls=0, progress=progress.starting(driver.starting_note(job))),
            )
            job = moved.job
            if not moved.changed and job.is_terminal:
                return self._ended(job)
        job, after = driver.start(job)
        if job.is_terminal:
            return self._ended(job)
        if after == "wait":
            return self._wait(job, driver)
        return StepOutput(job_id=job.job_id, status=job.status, next=after)

    def _admit(self, job: Job, driver: Driver[Any]) -> int:
        """0 when the job may go to the vendor; else how many jobs are ahead of it (its account's
        concurrency limit, services/concurrency.py)."""
        if self._concurrency is None:
            return 0
        return self._concurrency.admit(job, driver.max_concurrent_jobs)

    def _queued(self, job: Job, ahead: int) -> StepOutput:
        first = job.progress.phase != "queued"
        self._metrics.queued(job.vendor, ahead)
        event = TimelineEvent(at=self._now(), event="queued", detail={"ahead": ahead}) if first else None
        self._store.update(job.job_id, JobPatch(progress=progress.queued(job, ahead, self._now()), polls=job.polls + 1), event)
        return StepOutput(
            job_id=job.job_id,
            status=job.status,
            next="wait_slot",
            wait_seconds=bounded_wait(SLOT_WAIT_MAX_SECONDS, job.deadline_at, self._now()),
        )

    def _await_slot(self, step: StepInput) -> None:
        """Runs as the WaitForSlot task: park the job's task token at its place in its account's
        queue, where a freed slot wakes it (services/concurrency.py). A job with nothing to wait
        for any more (ended, past its deadline, its account's limit lifted) is resumed at once:
        Start settles it."""
        if not step.task_token:
            raise ValueError("await_slot needs the task token")
        job = self._job(step.job_id)
        limit = None
        if not job.is_terminal and seconds_left(job.deadline_at, self._now()) > 0:
            limit = self._driver_for(job).max_concurrent_jobs
        if limit is None or self._concurrency is None:
            self._workflow.resume(step.task_token, {"via": "recheck"})
        else:
            self._concurrency.park(job, limit, step.task_token)
        return None

    # --- stage (bulk imports) --------------------------------------------------------------------

    def _stage(self, step: StepInput) -> StepOutput:
        job = self._job(step.job_id)
        if job.is_terminal:
            return self._ended(job)
        self._check_deadline(job)
        driver = self._driver_for(job)
        try:
            finished = driver.stage(job, self._seconds_left)
        except JobEndedMeanwhile:
            return self._ended(self._job(job.job_id))
        if not finished:
            return StepOutput(job_id=job.job_id, status=job.status, next="stage")
        return self._wait(self._job(job.job_id), driver)

    # --- wait -----------------------------------------------------------------------------------

    def _wait(self, job: Job, driver: Driver[Any]) -> StepOutput:
        now = self._now()
        next_step: Next
        if driver.waiting_on == "webhook":
            wanted, next_step = self._settings.webhook_fallback_seconds, "wait_webhook"
        else:
            wanted, next_step = self._settings.backoff.delay(job.polls), "wait_poll"
        return StepOutput(
            job_id=job.job_id, status=job.status, next=next_step, wait_seconds=bounded_wait(wanted, job.deadline_at, now)
        )

    def _await_webhook(self, step: StepInput) -> None:
        """Runs as the WaitForWebhook task: keep the task token where the webhook receiver finds it.
        If a webhook already came (newer than the last poll), or the job ended meanwhile, resume at
        once instead of waiting for the fallback timeout."""
        if not step.task_token:
            raise ValueError("await_webhook needs the task token")
        job = self._store.update(step.job_id, JobPatch(task_token=step.task_token))
        if job is None:
            self._workflow.resume(step.task_token, {"via": "job_ended"})
        elif job.webhook_pending:
            self._workflow.resume(step.task_token, {"via": "webhook", "early": True})
        return None

    # --- poll -----------------------------------------------------------------------------------

    def _poll(self, step: StepInput) -> StepOutput:
        job = self._job(step.job_id)
        if job.is_terminal:
            return self._ended(job)
        self._check_deadline(job)
        driver = self._driver_for(job)
        polled_at = self._now()
        outcome = driver.poll(job)
        changes: dict[str, Any] = {
            "vendor_status": outcome.raw_status,
            "last_polled_at": polled_at,
            "polls": job.polls + 1,
            "progress": self._polled_progress(job, driver, outcome),
        }
        patch = outcome.vendor_ref.patch(**changes) if outcome.vendor_ref is not None else JobPatch(**changes)
        event = self._status_event(job, outcome, step.woken_by)

        if outcome.state is VendorState.FAILED:
            self._store.update(job.job_id, patch, event)
            raise VendorJobFailed(outcome.message or f"the vendor reports the job failed (status {outcome.raw_status!r})")
        updated = self._store.update(job.job_id, patch, event)
        if updated is None:  # ended while we were asking the vendor (cancelled)
            return self._ended(self._job(job.job_id))
        if outcome.state is VendorState.DONE:
            self._metrics.vendor_waited(job, polled_at)
            return StepOutput(job_id=job.job_id, status=updated.status, next="collect")
        return self._wait(updated, driver)

    def _polled_progress(self, job: Job, driver: Driver[Any], outcome: PollOutcome) -> Progress:
        """The vendor's numbers where it gave them (our own counts stay beside its new ones), and a
        note for what follows: still waiting, or collecting once it says it is done."""
        reported = outcome.progress
        base = job.progress
        if reported is not None:
            base = base.model_copy(
                update={
                    "percent": reported.percent if reported.percent is not None else base.percent,
                    "counts": reported.counts,
                    "records": reported.records or base.records,
                }
            )
        if outcome.state is VendorState.DONE:
            return progress.collecting(base.model_copy(update={"vendor_status": outcome.raw_status}), driver.collecting_note(job))
        since = base.waiting_since if base.phase == "waiting" and base.waiting_since else self._now()
        return progress.waiting(
            job,
            base,
            since=since,
            on=driver.waiting_on,
            vendor_status=outcome.raw_status,
            vendor_words=reported.note if reported is not None else None,
        )

    def _status_event(self, job: Job, outcome: PollOutcome, woken_by: dict[str, Any] | None) -> TimelineEvent | None:
        """A timeline entry when the vendor's status word changes (not for every poll). A word not in
        the vendor's table comes with an excerpt of the answer that carried it."""
        if outcome.raw_status == job.vendor_status:
            return None
        detail: dict[str, Any] = {"status": outcome.raw_status, "woken_by": _wake_reason(woken_by)}
        if outcome.unknown_status_answer is not None:
            detail["answer"] = outcome.unknown_status_answer
            return TimelineEvent(at=self._now(), event="vendor_status_unknown", detail=detail)
        return TimelineEvent(at=self._now(), event="vendor_status", detail=detail)

    # --- collect --------------------------------------------------------------------------------

    def _collect(self, step: StepInput) -> StepOutput:
        job = self._job(step.job_id)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.PARTIAL):
            # A retry after the result was stored: announce again (at-least-once) and move on.
            self._release(job)
            self._notices.announce(job)
            return StepOutput(job_id=job.job_id, status=job.status, next="notify")
        if job.is_terminal:
            return self._ended(job)
        driver = self._driver_for(job)
        if job.status is JobStatus.RUNNING:
            moved = self._store.transition(
                job.job_id,
                JobStatus.COLLECTING,
                TimelineEvent(at=self._now(), event="collecting"),
                JobPatch(progress=progress.collecting(job.progress, driver.collecting_note(job))),
            )
            job = moved.job
            if job.is_terminal:
                return self._ended(job)
        outcome = driver.collect(job)
        result = self._with_vendor_calls(job.job_id, outcome.result)
        reconciliation = outcome.reconciliation
        target = JobStatus.PARTIAL if outcome.partial else JobStatus.SUCCEEDED
        moved = self._store.transition(
            job.job_id,
            target,
            TimelineEvent(
                at=self._now(),
                event=target.value.lower(),
                detail={
                    "s3_uri": outcome.result.s3_uri,
                    "size": outcome.result.size,
                    "sha256": outcome.result.sha256,
                    "reconciled": reconciliation.reconciled,
                    "shortfall": reconciliation.shortfall,
                },
            ),
            JobPatch(
                result=result,
                reconciliation=reconciliation,
                progress=progress.succeeded(
                    job.progress.model_copy(update={"records": reconciliation.ours or job.progress.records}), reconciliation
                ),
            ),
        )
        self._release(moved.job)
        if moved.changed:
            self._metrics.job_ended(moved.job, self._now())
            self._notices.announce(moved.job)
        return StepOutput(job_id=job.job_id, status=moved.job.status, next="notify" if moved.changed else "done")

    def _with_vendor_calls(self, job_id: str, result: JobResult) -> JobResult:
        """The result with the job's vendor call log as one more file (every call up to now: Collect's
        own included). A log that cannot be written is left out, logged: it never fails the job."""
        if self._calls is None or self._results is None:
            return result
        try:
            stored = self._results.put_stream(
                job_id, VENDOR_CALLS_FILE, jsonl_chunks(self._calls.all(job_id)), VENDOR_CALLS_CONTENT_TYPE
            )
        except Exception as exc:
            logger.warning("the vendor call log of job %s was not written as a result file (%s)", job_id, type(exc).__name__)
            return result
        return result.model_copy(update={"files": [*result.files, stored]})

    # --- failure --------------------------------------------------------------------------------

    def _fail(self, step: StepInput) -> StepOutput:
        status, error = describe_failure(step.error or {})
        job = self._job(step.job_id)
        if job.is_terminal:
            return self._ended(job)
        moved = self._store.transition(
            job.job_id,
            status,
            TimelineEvent(at=self._now(), event=status.value.lower(), detail=error.model_dump()),
            JobPatch(error=error, progress=progress.ended(job, status, error)),
        )
        self._release(moved.job)
        if moved.changed:
            self._metrics.job_ended(moved.job, self._now())
            self._notices.announce(moved.job)
            return StepOutput(job_id=job.job_id, status=moved.job.status, next="notify")
        return StepOutput(job_id=job.job_id, status=moved.job.status, next="done")

    # --- callbacks ------------------------------------------------------------------------------

    def _notify(self, step: StepInput) -> StepOutput:
        job = self._job(step.job_id)
        if job.callback_url:
            from jobrelay.domain.callback_targets import CallbackTargetRefused  # with the first callback (cold start)

            try:
                status_code = self._notices.deliver_callback(job)
            except CallbackTargetRefused as refused:
                # Where the URL leads is refused for good: given up now, not after every retry.
                self._metrics.callback("given_up")
                self._store.append_event(
                    job.job_id, TimelineEvent(at=self._now(), event="callback_failed", detail={"reason": str(refused)})
                )
                return StepOutput(job_id=job.job_id, status=job.status, next="done")
            self._metrics.callback("delivered")
            self._store.append_event(
                job.job_id, TimelineEvent(at=self._now(), event="callback_delivered", detail={"http_status": status_code})
            )
        return StepOutput(job_id=job.job_id, status=job.status, next="done")

    def _callback_failed(self, step: StepInput) -> StepOutput:
        job = self._job(step.job_id)
        _, error = describe_failure(step.error or {})
        self._metrics.callback("given_up")
        self._store.append_event(
            job.job_id, TimelineEvent(at=self._now(), event="callback_failed", detail={"reason": error.message})
        )
        return StepOutput(job_id=job.job_id, status=job.status, next="done")

    # --- helpers --------------------------------------------------------------------------------

    def _job(self, job_id: str) -> Job:
        job = self._store.get(job_id)
        if job is None:
            raise LookupError(f"job {job_id} does not exist")
        bind_job(job)  # its id, operation, vendor and correlation id on every log line, metric and trace of the step
        return job

    def _check_deadline(self, job: Job) -> None:
        if seconds_left(job.deadline_at, self._now()) <= 0:
            raise JobDeadlineExceeded(
                f"the vendor did not finish before the job's deadline ({job.deadline_at.isoformat(timespec='seconds')})"
            )

    def _ended(self, job: Job) -> StepOutput:
        """The job ended outside this execution's steps (cancelled, swept): its slot goes too."""
        self._release(job)
        return StepOutput(job_id=job.job_id, status=job.status, next="done")

    def _release(self, job: Job) -> None:
        if self._concurrency is not None and job.is_terminal:
            self._concurrency.release(job)


def _wake_reason(woken_by: dict[str, Any] | None) -> str:
    if not woken_by:
        return "schedule"
    if woken_by.get("Error") == "States.Timeout":
        return "fallback_timeout"
    return str(woken_by.get("via", "webhook"))


def describe_failure(error: dict[str, Any]) -> tuple[JobStatus, JobError]:
    """Turn a Catch's {Error, Cause} into the job's terminal status and a readable error.

    Our own step errors carry their message in the Lambda error payload (Cause); anything else is
    an internal failure, reported by its type only (a raw message could carry input or internals)."""
    name = str(error.get("Error", "States.Runtime"))
    try:
        cause = json.loads(error.get("Cause") or "{}")
    except (TypeError, ValueError):
        cause = {}
    message = cause.get("errorMessage") if isinstance(cause, dict) else None
    step_error = STEP_ERRORS.get(name)
    if step_error is JobDeadlineExceeded:
        return JobStatus.TIMED_OUT, JobError(code=step_error.code, message=message or "the job's deadline passed")
    if step_error is not None:
        return JobStatus.FAILED, JobError(code=step_error.code, message=message or name)
    if name == "States.Timeout":
        return JobStatus.FAILED, JobError(code="STEP_TIMEOUT", message="a step of the job timed out")
    return JobStatus.FAILED, JobError(code="INTERNAL", message=f"the job failed on an internal error ({name})")
