"""Date placeholders in a schedule's params, resolved when the schedule fires.

A string in `params` (at any depth) may hold placeholders, `{{name}}`, each replaced by a value
computed from the run's scheduled time read in the schedule's time zone:

| placeholder        | value                                                            | e.g. (fired 2026-11-22 02:00 Europe/Dublin) |
|--------------------|------------------------------------------------------------------|---------------------------------------------|
| `{{today}}`        | the day it fires, `YYYY-MM-DD`                                   | `2026-11-22`                                |
| `{{yesterday}}`    | the day before                                                   | `2026-11-21`                                |
| `{{tomorrow}}`     | the day after                                                    | `2026-11-23`                                |
| `{{days_ago:N}}`   | N days before (N from 0 to 3660)                                 | `{{days_ago:7}}` → `2026-11-15`             |
| `{{month_start}}`  | the first day of its month                                       | `2026-11-01`                                |
| `{{last_month_start}}` | the first day of the month before                            | `2026-10-01`                                |
| `{{now}}`          | the scheduled time, ISO 8601 with the zone's offset (seconds)    | `2026-11-22T02:00:00+00:00`                 |

Dates are `YYYY-MM-DD`, which every date param of the catalogue accepts (Pinpointe reads a date
as midnight UTC at the start of that day, so `{"startdate": "{{yesterday}}", "enddate":
"{{today}}"}` is "the whole of yesterday"). A placeholder may stand alone or inside a longer
string (`"export-{{today}}"`); spaces inside the braces are allowed. Anything else between double
braces is an error, found when the schedule is created.
"""

import re
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
MAX_DAYS_AGO = 3660
NAMES = ("today", "yesterday", "tomorrow", "days_ago:N", "month_start", "last_month_start", "now")


class PlaceholderError(ValueError):
    """A placeholder that is not one of NAMES; `path` is where it is in params (e.g. "params.startdate")."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def resolve(value: Any, moment: datetime, timezone: tzinfo, path: str = "params") -> Any:
    """`value` (params, or any part of them) with every placeholder replaced, for a run scheduled at
    `moment` (aware) in `timezone`. Raises PlaceholderError for an unknown placeholder."""
    local = moment.astimezone(timezone)
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda match: _value(match.group(1), local, path), value)
    if isinstance(value, dict):
        return {key: resolve(inner, moment, timezone, f"{path}.{key}") for key, inner in value.items()}
    if isinstance(value, list):
        return [resolve(inner, moment, timezone, f"{path}.{index}") for index, inner in enumerate(value)]
    return value


def _value(name: str, local: datetime, path: str) -> str:
    today = local.date()
    match name:
        case "today":
            return _day(today)
        case "yesterday":
            return _day(today - timedelta(days=1))
        case "tomorrow":
            return _day(today + timedelta(days=1))
        case "month_start":
            return _day(today.replace(day=1))
        case "last_month_start":
            return _day((today.replace(day=1) - timedelta(days=1)).replace(day=1))
        case "now":
            return local.replace(microsecond=0).isoformat()
    if name.startswith("days_ago:"):
        count = name.removeprefix("days_ago:").strip()
        # ASCII digits, at most four after leading zeros: int() refuses '²' (which isdigit() takes) and a
        # number of 4301 digits with a bare ValueError, not the PlaceholderError callers catch.
        digits = re.fullmatch(r"0*([0-9]{1,4})", count)
        if digits and int(digits.group(1)) <= MAX_DAYS_AGO:
            return _day(today - timedelta(days=int(digits.group(1))))
        raise PlaceholderError(path, f"days_ago takes a whole number of days from 0 to {MAX_DAYS_AGO}, e.g. {{{{days_ago:7}}}}")
    known = ", ".join("{{" + known + "}}" for known in NAMES)
    raise PlaceholderError(path, f"unknown placeholder {{{{{name}}}}} (known: {known})")


def _day(day: date) -> str:
    return day.isoformat()
