"""EventBridge schedule expressions: `rate(5 minutes)` and the six-field `cron(minutes hours
day-of-month month day-of-week year)` with `*`, `?`, lists, ranges, steps and month/day names.

One parser for the whole system: the API checks a schedule with it and shows its next times
(`upcoming`), and the local stack
(devstack/local_scheduler.py) fires schedules at the times it computes. The `L`, `W` and `#` forms are
refused rather than approximated (the local stack could not fire them faithfully), and so are
one-time `at(...)` expressions (a recurring job recurs). Flexible time windows are not modelled:
the times are the expression's exact ones.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


class Expression(Protocol):
    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after `moment` (aware, UTC), or None if it never fires again."""
        ...


@dataclass(frozen=True)
class Rate:
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime | None:
        try:
            return moment + self.interval
        except OverflowError:  # past the year 9999 (rate(9999999 days)): it never fires again, not a crash
            return None


def upcoming(expression: Expression, after: datetime, count: int, *, since: datetime | None = None) -> list[datetime]:
    """The next `count` firings strictly after `after` (fewer if it stops firing), in UTC.

    A rate has no times of its own: it fires at `since` and every interval after (for EventBridge
    Scheduler, `since` is when the schedule started counting). Without `since` the first firing
    is one interval after `after`, as Rate.next_after has it."""
    times: list[datetime] = []
    moment = after
    if isinstance(expression, Rate) and since is not None:
        if since > after:
            times.append(since)
            moment = since
        else:  # the last firing at or before `after`: the next is one interval on
            moment = since + (after - since) // expression.interval * expression.interval
    while len(times) < count and (following := expression.next_after(moment)) is not None:
        times.append(following)
        moment = following
    return times[:count]


# [0-9], not \d: EventBridge reads ASCII digits, not rate(١ minute).
_RATE = re.compile(r"rate\(\s*([0-9]+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
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
        start = (moment.astimezone(self.timezone) + timedelta(minutes=1)).replace(second=0, microsecond=0, tzinfo=None)
        day = start.date()
        searched = 0
        while searched < self._HORIZON_DAYS:
            if day.year not in self.years:  # straight to the next year it names: cron(0 9 1 1 ? 2035) does fire
                later = [year for year in self.years if year > day.year]
                if not later:
                    return None
                day = date(min(later), 1, 1)
                continue
            if self._runs_on(day):
                for hour in sorted(self.hours):
                    if datetime.combine(day, time(hour, 59)) < start:
                        continue
                    for minute in sorted(self.minutes):
                        wall = datetime.combine(day, time(hour, minute))
                        if wall < start:
                            continue
                        # As EventBridge Scheduler does, a wall time the clocks skip (spring forward) does not
                        # fire, and one they repeat fires once, the first time (fold 0). The instant is what
                        # counts: in the hour a fall-back repeats, a later wall time can be an earlier instant.
                        instant = wall.replace(tzinfo=self.timezone).astimezone(UTC)
                        if instant > moment and instant.astimezone(self.timezone).replace(tzinfo=None) == wall:
                            return instant
            day += timedelta(days=1)
            searched += 1
        return None

    def _runs_on(self, day: date) -> bool:
        if day.year not in self.years or day.month not in self.months:
            return False
        if self.days_of_month is not None:
            return day.day in self.days_of_month
        assert self.days_of_week is not None
        return day.isoweekday() % 7 + 1 in self.days_of_week  # isoweekday: Monday 1 ... Sunday 7


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - {"localtime"}  # a host's own file, not a zone


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA time zone (`Europe/Dublin`, `UTC`); ValueError names the problem. Only the names of
    the time zone database count, not every file zoneinfo would open (`localtime`, `posixrules`)."""
    try:
        if name in _zone_names():
            return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    raise ValueError(f"{name!r} is not a known IANA time zone (e.g. UTC, Europe/Dublin, America/New_York)")


def parse_expression(text: str, timezone: str = "UTC") -> Expression:
    """Parse an EventBridge schedule expression; ValueError says what is wrong with it (or with the
    time zone, which cron expressions are read in)."""
    if match := _RATE.fullmatch(text.strip()):
        value, unit = int(match.group(1)), match.group(2)
        if value < 1:
            raise ValueError(f"{text!r}: a rate must be at least 1")
        if (value == 1) != (not unit.endswith("s")):  # EventBridge: rate(1 hour), rate(2 hours)
            raise ValueError(f"{text!r}: the unit is singular for 1 and plural otherwise (rate(1 day), rate(2 days))")
        parse_timezone(timezone)
        try:
            return Rate(timedelta(**{unit.rstrip("s") + "s": value}))
        except OverflowError:  # more than timedelta holds (a billion days): a ValueError like any other refusal
            raise ValueError(f"{text!r}: the rate is too long") from None
    if match := _CRON.fullmatch(text.strip()):
        return _parse_cron(match.group(1).split(), parse_timezone(timezone), text)
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
        elif token.isascii() and token.isdigit():  # not '²', which isdigit() takes and int() refuses
            value = int(token)
        elif any(marker in token.upper() for marker in "LW#"):
            raise ValueError(f"{text!r}: jobrelay does not support L, W or # ({token}): the local stack could not fire them")
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
    if not values:
        raise ValueError(f"{text!r}: {spec!r} matches no value (a range runs from low to high)")
    return frozenset(values)
