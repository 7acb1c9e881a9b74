"""A recurring job's schedule as the scheduler keeps it, and one of its runs."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobrelay.domain.job import JobError


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as the scheduler keeps it: when it fires, and the Input its target receives, which
    holds the job to submit (jobrelay.services.schedules.ScheduledInvocation). The scheduler is the
    only place a schedule's definition lives."""

    name: str
    expression: str  # rate(...) or cron(...)
    timezone: str
    enabled: bool
    target_input: dict[str, Any]
    description: str | None = None
    created_at: datetime | None = None  # set by the scheduler
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ScheduleRun:
    """One firing of a schedule: the job it submitted, or why it submitted none."""

    scheduled_time: datetime
    fired_at: datetime
    job_id: str | None
    error: JobError | None = None
