"""A recurring job's schedule as the scheduler keeps it, one of its runs, and the rule for its name."""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from jobrelay.domain.job import JobError

# A schedule's name is the last segment of its URL (/schedules/{name}), so it must stay one plain
# segment: no '/', '%' or whitespace, and not '.' or '..', which clients and proxies resolve away
# before the request is sent (a schedule of that name could be made, then never reached). Within
# EventBridge Scheduler's own rule (1 to 64 of letters, digits, '.', '_', '-').
SCHEDULE_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SCHEDULE_NAME_RULE: Final = "1 to 64 letters, digits, '.', '_' or '-', the first a letter or a digit"
_SCHEDULE_NAME = re.compile(SCHEDULE_NAME_PATTERN)


def check_schedule_name(name: str) -> str:
    """`name` if it is one (pydantic's AfterValidator); ValueError naming the rule if not."""
    if not _SCHEDULE_NAME.fullmatch(name):
        raise ValueError(f"a schedule name is {SCHEDULE_NAME_RULE} (it is a segment of the schedule's URL)")
    return name


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
