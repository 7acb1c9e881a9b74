"""What follows a job's ending outside its execution (a cancel, the sweeper): stop the execution,
free its slot, announce it, call back. Each is best effort: the job has ended whatever happens
here, so an outcome, or a failure, goes on its timeline rather than to the caller."""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.ports import JobStore, Workflow

if TYPE_CHECKING:
    from jobrelay.services.notices import Notices

logger = logging.getLogger(__name__)

CALLBACK_TIMEOUT_SECONDS = 3.0  # the caller (an API request, the sweeper's run) is waiting


def follow_up(store: JobStore, job: Job, what: str, action: Callable[[], dict[str, Any] | None], now: datetime) -> None:
    """Run `action`; a dict it returns is recorded as the event `what`, a failure as `<what>_failed`."""
    try:
        outcome = action()
    except Exception as exc:
        logger.warning("follow-up %s failed for job %s: %s", what, job.job_id, type(exc).__name__)
        store.append_event(job.job_id, TimelineEvent(at=now, event=f"{what}_failed", detail={"reason": str(exc)[:300]}))
        return
    if outcome is not None:
        store.append_event(job.job_id, TimelineEvent(at=now, event=what, detail=outcome))


def settle_outside_execution(
    store: JobStore,
    workflow: Workflow,
    notices: "Notices",
    job: Job,
    now: Callable[[], datetime],
    *,
    stop_reason: str | None,
    cancel_at_vendor: Callable[[Job], Any] | None = None,
    release_slot: Callable[[Job], Any] | None = None,
    count_callback: Callable[[str], None] | None = None,
) -> None:
    """The follow-ups of `job`, which has just ended outside its execution, in this order: stop its
    execution (when `stop_reason` is given and it has one), abort it at the vendor, free its
    account's concurrency slot, announce it, call back. Each is best effort (`follow_up`).
    `count_callback("delivered" | "given_up")` counts the callback's outcome (there is no retry here)."""

    def best_effort(what: str, action: Callable[[], dict[str, Any] | None]) -> None:
        follow_up(store, job, what, action, now())

    execution_arn = job.execution_arn
    if stop_reason is not None and execution_arn:

        def stop() -> dict[str, Any]:
            workflow.stop(execution_arn, stop_reason)
            return {"execution_arn": execution_arn}

        best_effort("execution_stop", stop)
    if cancel_at_vendor:
        best_effort("vendor_cancel", lambda: {"aborted": cancel_at_vendor(job)})
    if release_slot:  # its account's slot, if it held one (the sweeper's release_orphans is the backstop)
        best_effort("slot_release", lambda: release_slot(job))
    best_effort("announce", lambda: notices.announce(job))
    if job.callback_url:

        def callback() -> dict[str, Any]:
            try:
                status = notices.deliver_callback(job, timeout=CALLBACK_TIMEOUT_SECONDS)
            except Exception:
                if count_callback:
                    count_callback("given_up")
                raise
            if count_callback:
                count_callback("delivered")
            return {"http_status": status}

        best_effort("callback", callback)
