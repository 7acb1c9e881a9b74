"""The template's schedules, fired by a local timer (moto records schedules and rules but never fires them).

Expressions are EventBridge's: `rate(5 minutes)` and the six-field `cron(minutes hours
day-of-month month day-of-week year)` with `*`, `?`, lists, ranges, steps and month/day names.
The `L`, `W` and `#` forms are refused rather than approximated. Flexible time windows are
ignored: the timer fires on the expression's exact times.
"""

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)


class Expression(Protocol):
    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after `moment` (aware, UTC), or None if it never fires again."""
        ...


@dataclass(frozen=True)
class Rate:
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


_RATE = re.compile(r"rate\(\s*(\d+)\s+(minutes?|hours?|days?)\s*\)")
_CRON = re.compile(r"cron\(([^)]*)\)")
_MONTHS = {name: number for number, name in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
_WEEKDAYS = {name: number for number, name in enumerate("SUN MON TUE WED THU FRI SAT".split(), 1)}


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None: "?", the day is chosen by days_of_week
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # EventBridge numbering: 1 = Sunday ... 7 = Saturday
    years: frozenset[int]
    timezone: ZoneInfo

    # Searching further than this without a match means the expression never fires again.
    _HORIZON_DAYS = 366 * 5

    def next_after(self, moment: datetime) -> datetime | None:
        start = (moment.astimezone(self.timezone) + timedelta(minutes=1)).replace(second=0, microsecond=0)
        day = start.date()
        for _ in range(self._HORIZON_DAYS):
            if self._runs_on(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime.combine(day, time(hour, minute), self.timezone)
                        if candidate >= start:
                            return candidate.astimezone(UTC)
            day += timedelta(days=1)
        return None

    def _runs_on(self, day: date) -> bool:
        if day.year not in self.years or day.month not in self.months:
            return False
        if self.days_of_month is not None:
            return day.day in self.days_of_month
        assert self.days_of_week is not None
        return day.isoweekday() % 7 + 1 in self.days_of_week  # isoweekday: Monday 1 ... Sunday 7


def parse_expression(text: str, timezone: str = "UTC") -> Expression:
    """Parse an EventBridge schedule expression; ValueError says what is wrong with it."""
    if match := _RATE.fullmatch(text.strip()):
        value, unit = int(match.group(1)), match.group(2).rstrip("s")
        if value < 1:
            raise ValueError(f"{text!r}: a rate must be at least 1")
        return Rate(timedelta(**{f"{unit}s": value}))
    if match := _CRON.fullmatch(text.strip()):
        return _parse_cron(match.group(1).split(), ZoneInfo(timezone), text)
    raise ValueError(f"{text!r} is neither rate(...) nor cron(...)")


def _parse_cron(fields: list[str], timezone: ZoneInfo, text: str) -> Cron:
    if len(fields) != 6:
        raise ValueError(f"{text!r}: cron takes six fields (minutes hours day-of-month month day-of-week year)")
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError(f"{text!r}: exactly one of day-of-month and day-of-week must be '?'")
    return Cron(
        minutes=_field(minutes, 0, 59, {}, text),
        hours=_field(hours, 0, 23, {}, text),
        days_of_month=None if day_of_month == "?" else _field(day_of_month, 1, 31, {}, text),
        months=_field(month, 1, 12, _MONTHS, text),
        days_of_week=None if day_of_week == "?" else _field(day_of_week, 1, 7, _WEEKDAYS, text),
        years=_field(year, 1970, 2199, {}, text),
        timezone=timezone,
    )


def _field(spec: str, low: int, high: int, names: dict[str, int], text: str) -> frozenset[int]:
    def number(token: str, smallest: int = low, largest: int = high) -> int:
        if token.upper() in names:
            value = names[token.upper()]
        elif token.isdigit():
            value = int(token)
        elif any(marker in token.upper() for marker in "LW#"):
            raise ValueError(f"{text!r}: the local timer does not support L, W or # ({token})")
        else:
            raise ValueError(f"{text!r}: cannot read {token!r}")
        if not smallest <= value <= largest:
            raise ValueError(f"{text!r}: {token} is outside {smallest}-{largest}")
        return value

    values: set[int] = set()
    for part in spec.split(","):
        body, _, step_text = part.partition("/")
        step = number(step_text, 1, high) if step_text else 1
        if body == "*":
            first, last = low, high
        elif "-" in body:
            first, last = (number(bound) for bound in body.split("-", 1))
        else:
            first = number(body)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """One schedule of the template, pointed at a function of the template."""

    name: str  # the schedule's or rule's physical name
    arn: str
    expression: str
    timezone: str
    function_name: str  # physical name of the target function
    input: str | None  # the target's Input, sent as is

    def parsed(self) -> Expression:
        return parse_expression(self.expression, self.timezone)

    def payload(self, moment: datetime) -> str:
        """What the target receives: its Input, else EventBridge's "Scheduled Event" notice."""
        if self.input is not None:
            return self.input
        _, _, service, region, account, _ = self.arn.split(":", 5)
        return json.dumps(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": f"aws.{service}",
                "account": account,
                "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": region,
                "resources": [self.arn],
                "detail": {},
            }
        )


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time on this clock (aware)."""
        ...

    def sleep_until(self, moment: datetime, stop: threading.Event) -> bool:
        """Block until this clock reaches `moment`; True if `stop` was set meanwhile."""
        ...


class ScheduleTimer:
    """A thread that fires each schedule at its times, as read on `clock`."""

    def __init__(self, schedules: Sequence[Schedule], fire: Callable[[Schedule, datetime], None], clock: Clock):
        self._schedules = schedules
        self._fire = fire
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devstack-schedules", daemon=True)

    def start(self) -> None:
        if self._schedules:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        expressions = {schedule: schedule.parsed() for schedule in self._schedules}
        now = self._clock.now()
        due = {schedule: expressions[schedule].next_after(now) for schedule in self._schedules}
        while pending := {schedule: moment for schedule, moment in due.items() if moment is not None}:
            schedule, moment = min(pending.items(), key=lambda item: item[1])
            if self._clock.sleep_until(moment, self._stop):
                return
            try:
                self._fire(schedule, moment)
            except Exception:  # one failing target must not stop the other schedules
                log.exception("schedule %s failed to fire", schedule.name)
            due[schedule] = expressions[schedule].next_after(moment)
