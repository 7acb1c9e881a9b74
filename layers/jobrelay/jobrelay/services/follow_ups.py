"""What follows a job's ending outside its execution (a cancel, the sweeper): stop the execution,
free its slot, announce it, call back. Each is best effort: the job has ended whatever happens
here, so an outcome, or a failure, goes on its timeline rather than to the caller."""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.ports import JobStore

logger = logging.getLogger(__name__)


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
