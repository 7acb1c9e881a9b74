"""The sweeper: no job stays non-terminal forever, whatever crashed.

Run on a schedule (template.yaml: SweeperFunction), it looks at every job that is not terminal and
settles the ones nothing else will settle any more:

- past its deadline by more than DEADLINE_GRACE (the state machine ends jobs at their deadline
  itself; this is for an execution that could not): TIMED_OUT, and the execution is stopped;
- its execution has ended (stopped behind our back, failed in a way no Catch caught, FailJob itself
  failing) or does not exist: FAILED, with what became of the execution;
- never given an execution START_GRACE after it was submitted: FAILED.

Each settlement is one guarded transition (a job that ends meanwhile by its own path wins, and the
sweeper changes nothing), with a timeline event, the EventBridge event, the signed callback (best
effort) and the release of its concurrency slot. Then every slot whose holder has ended is freed,
and parked jobs a lost wake-up left behind are woken (`_wake_parked`).
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jobrelay.domain.job import Job, JobError, JobPatch, TimelineEvent, utcnow
from jobrelay.domain.status import ACTIVE, JobStatus
from jobrelay.ports import JobStore, Workflow
from jobrelay.services import progress
from jobrelay.services.concurrency import AccountConcurrency
from jobrelay.services.follow_ups import settle_outside_execution
from jobrelay.services.notices import Notices
from jobrelay.telemetry import Metrics

logger = logging.getLogger(__name__)

DEADLINE_GRACE = timedelta(minutes=5)
START_GRACE = timedelta(minutes=10)
PAGE_SIZE = 100


@dataclass
class SweepReport:
    examined: int = 0
    settled: list[dict[str, str]] = field(default_factory=list)  # job_id, status, reason
    slots_freed: int = 0
    woken: int = 0  # parked jobs woken for free slots nobody had woken them for


class Sweeper:
    def __init__(
        self,
        store: JobStore,
        workflow: Workflow,
        notices: Notices,
        concurrency: AccountConcurrency | None = None,
        now: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ):
        self._store = store
        self._workflow = workflow
        self._notices = notices
        self._concurrency = concurrency
        self._now = now
        self._metrics = metrics or Metrics()

    def sweep(self) -> SweepReport:
        report = SweepReport()
        for job in self._active_jobs():
            report.examined += 1
            verdict = self._verdict(job)
            if verdict is not None and self._settle(job, *verdict):
                report.settled.append({"job_id": job.job_id, "status": verdict[0].value, "reason": verdict[2]})
        if self._concurrency is not None:
            report.slots_freed = len(self._concurrency.release_orphans(self._has_ended))
            if report.slots_freed:
                self._metrics.slots_freed(report.slots_freed)
            report.woken = self._wake_parked()
        if report.settled or report.slots_freed:
            logger.warning("sweeper settled %d jobs and freed %d slots", len(report.settled), report.slots_freed)
        return report

    def _active_jobs(self) -> Iterator[Job]:
        for status in sorted(ACTIVE):
            cursor = None
            while True:
                page = self._store.list(status=status, operation=None, limit=PAGE_SIZE, cursor=cursor)
                yield from page.jobs
                if page.cursor is None:
                    break
                cursor = page.cursor

    def _verdict(self, job: Job) -> tuple[JobStatus, str, str] | None:
        """(status, error code, reason) for a job to settle, None for one that is fine."""
        now = self._now()
        if now > job.deadline_at + DEADLINE_GRACE:
            deadline = job.deadline_at.isoformat(timespec="seconds")
            return (
                JobStatus.TIMED_OUT,
                "DEADLINE_EXCEEDED",
                f"the job passed its deadline ({deadline}) without ending; settled by the sweeper",
            )
        if job.execution_arn is None:
            if now > job.created_at + START_GRACE:
                return JobStatus.FAILED, "NOT_STARTED", "the job's execution never started; settled by the sweeper"
            return None
        execution = self._workflow.status(job.execution_arn)
        if execution == "RUNNING":
            return None
        current = self._store.get(job.job_id)  # an execution ends after its job: is the job still open?
        if current is None or current.is_terminal:
            return None
        what = "does not exist" if execution is None else f"ended ({execution})"
        return JobStatus.FAILED, "EXECUTION_ENDED", f"the job's execution {what} without settling the job; settled by the sweeper"

    def _settle(self, job: Job, status: JobStatus, code: str, reason: str) -> bool:
        error = JobError(code=code, message=reason)
        moved = self._store.transition(
            job.job_id,
            status,
            TimelineEvent(at=self._now(), event=status.value.lower(), detail={"code": code, "reason": reason, "by": "sweeper"}),
            JobPatch(error=error, progress=progress.ended(job, status, error)),
        )
        if not moved.changed:
            return False  # it ended by its own path meanwhile
        self._metrics.sweeper_settled(code)
        self._metrics.job_ended(moved.job, self._now())
        settle_outside_execution(
            self._store,
            self._workflow,
            self._notices,
            moved.job,
            self._now,
            stop_reason=reason if status is JobStatus.TIMED_OUT else None,
            release_slot=self._concurrency.release if self._concurrency is not None else None,
            count_callback=self._metrics.callback,
        )
        return True

    def _wake_parked(self) -> int:
        """Lost wake-ups: in every pool with parked jobs and free slots (the function that freed a
        slot died before it woke anyone, a lease expired, the slots freed just above), wake the
        first parked jobs, one per free slot (services/concurrency.py)."""
        if self._concurrency is None:
            return 0
        woken = self._concurrency.wake_stranded()
        if woken:
            logger.warning("sweeper woke %d parked jobs a lost wake-up left waiting", len(woken))
        return len(woken)

    def _has_ended(self, job_id: str) -> bool:
        job = self._store.get(job_id)
        return job is None or job.is_terminal
