"""Schedules fired by a local timer (moto records schedules and rules but never fires them).

Two kinds: the template's (rules, SAM schedule events and AWS::Scheduler::Schedule resources that
are ENABLED), known when the stack starts, and whatever EventBridge Scheduler holds in moto, read
again every few seconds on the timer's clock: so a schedule created at run time (`POST
/schedules`) fires too, one deleted or disabled stops. A schedule in both (the template's
Scheduler schedules are also created in moto) fires once.

Expressions are read by the layer's parser (jobrelay.domain.schedule_expressions), the one the API
checks new schedules with, so whatever the API accepts the timer can fire. Flexible time windows
are ignored: the timer fires on the expression's exact times. A schedule found at run time starts
counting when the timer first sees it (a rate schedule fires one interval later).
"""

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from jobrelay.domain.schedule_expressions import Expression, parse_expression  # noqa: E402

__all__ = ["Clock", "Expression", "Schedule", "ScheduleTimer", "parse_expression", "scheduler_schedules"]

log = logging.getLogger(__name__)

# What EventBridge Scheduler replaces in a target's Input when it delivers a run.
_CONTEXT_SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
_CONTEXT_SCHEDULE_ARN = "<aws.scheduler.schedule-arn>"
_CONTEXT_EXECUTION_ID = "<aws.scheduler.execution-id>"
_CONTEXT_ATTEMPT = "<aws.scheduler.attempt-number>"


@dataclass(frozen=True)
class Schedule:
    """One schedule, pointed at a function of the template."""

    name: str  # the schedule's or rule's physical name
    arn: str
    expression: str
    timezone: str
    function_name: str  # physical name of the target function
    input: str | None  # the target's Input

    def parsed(self) -> Expression:
        return parse_expression(self.expression, self.timezone)

    def payload(self, moment: datetime) -> str:
        """What the target receives: its Input (for a Scheduler schedule with the context
        attributes filled in, as Scheduler does), else EventBridge's "Scheduled Event" notice."""
        _, _, service, region, account, _ = self.arn.split(":", 5)
        if self.input is not None:
            if service != "scheduler":
                return self.input
            return (
                self.input.replace(_CONTEXT_SCHEDULED_TIME, _utc_text(moment))
                .replace(_CONTEXT_SCHEDULE_ARN, self.arn)
                .replace(_CONTEXT_EXECUTION_ID, str(uuid.uuid4()))
                .replace(_CONTEXT_ATTEMPT, "1")
            )
        return json.dumps(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": f"aws.{service}",
                "account": account,
                "time": _utc_text(moment),
                "region": region,
                "resources": [self.arn],
                "detail": {},
            }
        )


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduler_schedules(client: Any, functions: Mapping[str, str]) -> Callable[[], list[Schedule]]:
    """A source for ScheduleTimer: the ENABLED schedules EventBridge Scheduler (moto, through
    `client`) holds in every group, whose target is one of `functions` (ARN -> physical name)."""

    def read() -> list[Schedule]:
        found = []
        for page in client.get_paginator("list_schedules").paginate():
            for summary in page["Schedules"]:
                if summary.get("State", "ENABLED") != "ENABLED":
                    continue
                try:
                    detail = client.get_schedule(Name=summary["Name"], GroupName=summary.get("GroupName", "default"))
                except client.exceptions.ResourceNotFoundException:  # deleted meanwhile
                    continue
                target = detail.get("Target", {})
                if detail.get("State") != "ENABLED" or target.get("Arn") not in functions:
                    continue
                found.append(
                    Schedule(
                        name=detail["Name"],
                        arn=detail["Arn"],
                        expression=detail["ScheduleExpression"],
                        timezone=detail.get("ScheduleExpressionTimezone") or "UTC",
                        function_name=functions[target["Arn"]],
                        input=target.get("Input"),
                    )
                )
        return found

    return read


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time on this clock (aware)."""
        ...

    def sleep_until(self, moment: datetime, stop: threading.Event) -> bool:
        """Block until this clock reaches `moment`; True if `stop` was set meanwhile."""
        ...


class ScheduleTimer:
    """A thread that fires each schedule at its times, as read on `clock`: the fixed `schedules`,
    and those `source` returns, read again every `refresh` of clock time (a schedule of `source`
    with the ARN of a fixed one is that one, not a second)."""

    def __init__(
        self,
        schedules: Sequence[Schedule],
        fire: Callable[[Schedule, datetime], None],
        clock: Clock,
        *,
        source: Callable[[], Sequence[Schedule]] | None = None,
        refresh: timedelta = timedelta(seconds=5),
    ):
        self._schedules = list(schedules)
        self._fire = fire
        self._clock = clock
        self._source = source
        self._refresh = refresh
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devstack-schedules", daemon=True)

    def start(self) -> None:
        if self._schedules or self._source is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _current(self) -> list[Schedule] | None:
        """The schedules to fire; None when the source could not be read."""
        if self._source is None:
            return self._schedules
        try:
            found = self._source()
        except Exception:  # moto going away at shutdown, say
            log.exception("could not read the schedules")
            return None
        fixed = {schedule.arn for schedule in self._schedules}
        return self._schedules + [schedule for schedule in found if schedule.arn not in fixed]

    def _run(self) -> None:
        expressions: dict[Schedule, Expression] = {}
        due: dict[Schedule, datetime | None] = {}

        def refresh(moment: datetime) -> None:
            current = self._current()
            if current is None:  # keep going with what was known
                return
            for gone in set(due) - set(current):  # deleted, disabled or changed (a changed one is new)
                del due[gone]
            for schedule in current:
                if schedule in due:
                    continue
                try:
                    expressions[schedule] = schedule.parsed()
                except (ValueError, KeyError) as error:
                    log.warning("schedule %s cannot be fired locally: %s", schedule.name, error)
                    due[schedule] = None
                    continue
                due[schedule] = expressions[schedule].next_after(moment)

        now = self._clock.now()
        refresh(now)
        next_refresh = now + self._refresh if self._source is not None else None
        while True:
            pending = {schedule: moment for schedule, moment in due.items() if moment is not None}
            earliest = min(pending.items(), key=lambda item: item[1]) if pending else None
            if earliest is None and next_refresh is None:
                return
            if earliest is not None and (next_refresh is None or earliest[1] <= next_refresh):
                schedule, moment = earliest
                if self._clock.sleep_until(moment, self._stop):
                    return
                try:
                    self._fire(schedule, moment)
                except Exception:  # one failing target must not stop the other schedules
                    log.exception("schedule %s failed to fire", schedule.name)
                if schedule in due:
                    due[schedule] = expressions[schedule].next_after(moment)
            else:
                assert next_refresh is not None
                if self._clock.sleep_until(next_refresh, self._stop):
                    return
                refresh(next_refresh)
                next_refresh += self._refresh
