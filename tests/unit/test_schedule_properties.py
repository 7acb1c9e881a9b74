"""Property tests of schedule expressions (jobrelay.domain.schedule_expressions) and of the date
placeholders in a schedule's params (jobrelay.domain.placeholders). The times a schedule shows and
fires at are those its cron names, read in its own time zone, across DST changes as EventBridge
Scheduler has it (a wall time the clocks skip never fires, one they repeat fires once); a rate is a
fixed interval; and text that is no expression, or a placeholder that is none, is refused with the
modules' own errors, never a crash (a 500 in the API)."""

import copy
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobrelay.domain.placeholders import MAX_DAYS_AGO, PlaceholderError, resolve
from jobrelay.domain.schedule_expressions import parse_expression, parse_timezone, upcoming

FAST = settings(max_examples=60, deadline=None)

# UTC; two zones with the usual one-hour changes at 02:00 (New York) and 02:00/03:00 (Berlin); Lord Howe
# moves by half an hour; Santiago changes at midnight (a day with no 00:00); Kolkata never changes.
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]
MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
WEEKDAYS = "SUN MON TUE WED THU FRI SAT".split()  # EventBridge numbers them 1 (SUN) to 7 (SAT)


@cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """The first whole UTC hours at which `zone` has a new offset, 2025 to 2027 (none: mid-2026)."""
    tz, hour = ZoneInfo(zone), datetime(2025, 1, 1, tzinfo=UTC)
    found, offset = [], hour.astimezone(tz).utcoffset()
    while hour.year < 2028:
        hour += timedelta(hours=1)
        if (now := hour.astimezone(tz).utcoffset()) != offset:
            found.append(hour)
            offset = now
    return tuple(found) or (datetime(2026, 6, 1, tzinfo=UTC),)


def moments(zone: str) -> st.SearchStrategy[datetime]:
    """Instants (UTC), most within a day and a half of one of the zone's DST changes, many within minutes."""
    near = st.builds(
        lambda change, minutes, seconds, micro: change + timedelta(minutes=minutes, seconds=seconds, microseconds=micro),
        st.sampled_from(transitions(zone)),
        st.integers(-90, 90) | st.integers(-36 * 60, 36 * 60),  # often in the very hour the clocks skip or repeat
        st.sampled_from([0, 0, 30, 59]),
        st.sampled_from([0, 0, 1, 999_999]),
    )
    anywhere = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))
    return st.one_of(near, near, anywhere)


# --- cron expressions, and the values each field names -------------------------------------------------


@dataclass(frozen=True)
class CronCase:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: "?"
    months: frozenset[int]
    weekdays: frozenset[int] | None  # EventBridge numbering; None: "?"
    years: frozenset[int]

    def names(self, local: datetime) -> bool:
        """Whether the wall time `local` is one the fields name (read independently of the parser)."""
        weekday = (local.weekday() + 1) % 7 + 1  # weekday(): Monday 0 ... Sunday 6; EventBridge: SUN 1, MON 2 ... SAT 7
        return (
            local.minute in self.minutes
            and local.hour in self.hours
            and local.month in self.months
            and local.year in self.years
            and (self.days is None or local.day in self.days)
            and (self.weekdays is None or weekday in self.weekdays)
        )


@st.composite
def cron_field(
    draw, low: int, high: int, names: tuple[str, ...] = (), *, stars: float = 0.2, likely: tuple[int, ...] = ()
) -> tuple[str, frozenset[int]]:
    """A field as EventBridge writes one (`*`, values, ranges, steps, lists, names) and what it names:
    `*` with about the chance `stars`, and values often from `likely`."""
    if draw(st.integers(0, 99)) < stars * 100:
        return "*", frozenset(range(low, high + 1))

    def spelled(value: int) -> str:
        return names[value - low] if names and draw(st.booleans()) else str(value)

    parts, values = [], set()
    for _ in range(draw(st.integers(1, 3))):
        first = draw(st.sampled_from(likely) if likely and draw(st.booleans()) else st.integers(low, high))
        last = draw(st.integers(first, high))
        step = draw(st.integers(1, high - low))
        form = draw(st.sampled_from(["value", "value", "range", "range/step", "start/step", "*/step"]))
        if form == "value":
            parts.append(spelled(first))
            values.add(first)
        elif form == "range":
            parts.append(f"{spelled(first)}-{spelled(last)}")
            values.update(range(first, last + 1))
        elif form == "range/step":
            parts.append(f"{first}-{last}/{step}")
            values.update(range(first, last + 1, step))
        elif form == "start/step":
            parts.append(f"{first}/{step}")
            values.update(range(first, high + 1, step))
        else:
            parts.append(f"*/{step}")
            values.update(range(low, high + 1, step))
    return ",".join(parts), frozenset(values)


@st.composite
def year_field(draw) -> tuple[str, frozenset[int]]:
    form = draw(st.sampled_from(["*", "*", "*", "one", "range"]))
    if form == "*":
        return "*", frozenset(range(1970, 2200))
    first = draw(st.integers(2020, 2040))
    if form == "one":
        return str(first), frozenset([first])
    last = draw(st.integers(first, 2199))
    return f"{first}-{last}", frozenset(range(first, last + 1))


@st.composite
def crons(draw) -> CronCase:
    # Often `*` in the date fields, and the hours the clocks change at (1-3, midnight): DST days come up.
    minutes, minute_set = draw(cron_field(0, 59))
    hours, hour_set = draw(cron_field(0, 23, likely=(0, 1, 2, 3, 23)))
    months, month_set = draw(cron_field(1, 12, tuple(MONTHS), stars=0.6))
    years, year_set = draw(year_field())
    if draw(st.booleans()):
        days, day_set = draw(cron_field(1, 31, stars=0.6))
        weekdays, weekday_set = "?", None
    else:
        days, day_set = "?", None
        weekdays, weekday_set = draw(cron_field(1, 7, tuple(WEEKDAYS), stars=0.6))
    text = f"cron({minutes} {hours} {days} {months} {weekdays} {years})"
    return CronCase(text, minute_set, hour_set, day_set, month_set, weekday_set, year_set)


def firings(cron: CronCase, zone: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    """The reference: every whole UTC minute in (after, until] whose wall time in `zone` the fields name,
    a repeated wall time only the first time (fold 0). Wall times the clocks skip never come up."""
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    found = []
    while minute <= until:
        local = minute.astimezone(zone)
        if local.fold == 0 and cron.names(local):
            found.append(minute)
        minute += timedelta(minutes=1)
    return found


@FAST
@given(data=st.data(), cron=crons(), zone=st.sampled_from(ZONES))
def test_cron_times_are_after_the_start_rising_and_exactly_those_the_fields_name_in_the_zone(data, cron, zone):
    after = data.draw(moments(zone))
    tz = ZoneInfo(zone)
    times = upcoming(parse_expression(cron.text, zone), after, 6)

    assert all(earlier < later for earlier, later in zip([after, *times], times, strict=False))
    for moment in times:
        assert moment.utcoffset() == timedelta(0) and (moment.second, moment.microsecond) == (0, 0)
        local = moment.astimezone(tz)
        assert cron.names(local), (cron.text, zone, local)
        assert local.fold == 0, (cron.text, zone, local)  # a repeated wall time fires the first time only
    # None missed, and no skipped or repeated wall time: brute force over (at most) the next two days.
    until = min(times[-1] if len(times) == 6 else after + timedelta(days=2), after + timedelta(days=2))
    assert [moment for moment in times if moment <= until] == firings(cron, tz, after, until), (cron.text, zone, after)
    # The zone the start is given in is no matter: it is an instant.
    assert upcoming(parse_expression(cron.text, zone), after.astimezone(tz), 6) == times


@FAST
@given(
    zone=st.sampled_from(ZONES),
    when=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2199, 12, 31, 23, 59)),
    after=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
)
def test_a_cron_naming_one_minute_fires_then_however_far_off_and_never_again(zone, when, after):
    tz = ZoneInfo(zone)
    local = when.replace(second=0, microsecond=0, tzinfo=tz)  # fold 0: the first, if the wall time repeats
    instant = local.astimezone(UTC)
    exists = instant.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None)
    text = f"cron({local.minute} {local.hour} {local.day} {local.month} ? {local.year})"

    times = upcoming(parse_expression(text, zone), after, 3)

    assert times == ([instant] if exists and instant > after else []), (text, zone)


DST_CHANGES = [
    # zone; the spring change (UTC) and the wall hour it skips; the fall change and the wall hour it repeats
    ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC), 2, datetime(2026, 11, 1, 6, tzinfo=UTC), 1),
    ("Europe/Berlin", datetime(2026, 3, 29, 1, tzinfo=UTC), 2, datetime(2026, 10, 25, 1, tzinfo=UTC), 2),
]


@pytest.mark.parametrize(("zone", "spring", "skipped", "fall", "repeated"), DST_CHANGES)
@FAST
@given(
    minute=st.integers(0, 59),
    offset=st.integers(-90, 90) | st.integers(-26 * 60, 3 * 60),
    seconds=st.integers(0, 59),
)
def test_a_daily_run_at_a_wall_time_the_clocks_skip_is_skipped_and_one_they_repeat_runs_once(
    zone, spring, skipped, fall, repeated, minute, offset, seconds
):
    tz = ZoneInfo(zone)
    for change, hour in ((spring, skipped), (fall, repeated)):
        after = change + timedelta(minutes=offset, seconds=seconds)
        change_day = change.astimezone(tz).date()
        days = [after.astimezone(tz).date() + timedelta(days=n) for n in range(-1, 5)]
        # The reference: that wall time each day it exists (not the spring change's day), its first
        # occurrence (fold 0) the day it repeats, if that instant is after the start.
        runs = [
            datetime.combine(day, time(hour, minute), tz).astimezone(UTC)
            for day in days
            if not (change is spring and day == change_day)
        ]
        expected = [run for run in runs if run > after][:3]

        assert upcoming(parse_expression(f"cron({minute} {hour} * * ? *)", zone), after, 3) == expected, (change, after)


@pytest.mark.parametrize(
    ("zone", "spring", "fall"),
    [
        # New York: 2 a.m. EST becomes 3 a.m. EDT on 8 March 2026; 2 a.m. EDT becomes 1 a.m. EST on 1 November.
        ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)),
        # Berlin: 2 a.m. becomes 3 a.m. on 29 March 2026; 3 a.m. becomes 2 a.m. on 25 October.
        ("Europe/Berlin", datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)),
    ],
)
@FAST
@given(step=st.sampled_from([1, 5, 15, 30]), hours_before=st.integers(1, 4), seconds=st.integers(0, 59))
def test_every_few_minutes_across_a_dst_change_skips_the_lost_hour_and_runs_the_repeated_one_once(
    zone, spring, fall, step, hours_before, seconds
):
    tz, every, hour_more = ZoneInfo(zone), timedelta(minutes=step), timedelta(hours=1, minutes=step)
    for change, forward in ((spring, True), (fall, False)):
        after = change - timedelta(hours=hours_before) + timedelta(seconds=seconds)
        times = upcoming(parse_expression(f"cron(*/{step} * * * ? *)", zone), after, 8 * 60 // step)  # 8 hours of them
        walls = [moment.astimezone(tz).replace(tzinfo=None) for moment in times]

        instant_gaps = Counter(later - earlier for earlier, later in zip(times, times[1:], strict=False))
        wall_gaps = Counter(later - earlier for earlier, later in zip(walls, walls[1:], strict=False))
        # Spring: `step` minutes apart throughout, but an hour of wall times is missing (it never was).
        # Fall: the wall times run on with no repeat, so the hour the clocks repeat has no run.
        steady, jumped = (instant_gaps, wall_gaps) if forward else (wall_gaps, instant_gaps)
        assert steady == Counter({every: len(times) - 1}), (change, steady)
        assert jumped == Counter({every: len(times) - 2, hour_more: 1}), (change, jumped)


# --- rates ------------------------------------------------------------------------------------------------


def rate_text(value: int, unit: str) -> str:
    return f"rate({value} {unit if value != 1 else unit.removesuffix('s')})"


@FAST
@given(
    value=st.integers(1, 1000),
    unit=st.sampled_from(["minutes", "hours", "days"]),
    zone=st.sampled_from(ZONES),
    after=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
    since=st.none() | st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2031, 1, 1), timezones=st.just(UTC)),
    count=st.integers(1, 8),
)
def test_a_rate_fires_exactly_its_interval_apart_whatever_the_zones_dst(value, unit, zone, after, since, count):
    interval = timedelta(**{unit: value})  # a day is 24 hours, even the day the clocks change

    times = upcoming(parse_expression(rate_text(value, unit), zone), after, count, since=since)

    assert len(times) == count
    assert all(later - earlier == interval for earlier, later in zip(times, times[1:], strict=False))
    assert times[0] > after
    if since is None:  # counting from the start
        assert times[0] == after + interval
    else:  # on the grid that starts at `since`: its first point after the start
        assert times[0] >= since and (times[0] - since) % interval == timedelta(0)
        assert times[0] == since or times[0] - interval <= after


@FAST
@given(value=st.integers(0, 10**60), unit=st.sampled_from(["minute", "minutes", "hour", "hours", "day", "days"]))
def test_a_rate_parses_when_eventbridge_would_and_its_times_never_crash(value, unit):
    text = f"rate({value} {unit})"
    valid = value >= 1 and (value == 1) == (not unit.endswith("s"))
    try:
        expression = parse_expression(text)
    except ValueError:
        assert not valid or value > 10**9  # refused: wrong, or longer than any date (a billion units and more)
        return
    assert valid
    now = datetime(2026, 11, 22, 10, tzinfo=UTC)
    times = upcoming(expression, now, 3, since=now - timedelta(hours=1))  # past the year 9999: no time, no crash
    assert all(time > now for time in times)


# --- text that is no expression ------------------------------------------------------------------------------

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
CRON_CHARACTERS = "0123456789*?,-/ #LWlw JANFEBMONSUN()²١７\t"


def parsed_or_refused(text: str, zone: str = "UTC") -> bool:
    """Parse `text`; anything but ValueError fails the test. A parsed expression's next times can be
    shown (the API shows five) without an error either."""
    try:
        expression = parse_expression(text, zone)
    except ValueError:
        return False
    assert all(moment > NOW for moment in upcoming(expression, NOW, 3))
    return True


@st.composite
def mutated(draw) -> str:
    """A valid expression with a few edits: a character put in, taken out or replaced, or a field swapped
    for something else."""
    if draw(st.booleans()):
        text = draw(crons()).text
    else:
        text = rate_text(draw(st.integers(1, 500)), draw(st.sampled_from(["minutes", "hours", "days"])))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "field"]))
        piece = draw(st.text(alphabet=CRON_CHARACTERS, max_size=4) | st.text(max_size=3))
        if edit == "insert":
            text = text[:where] + piece + text[where:]
        elif edit == "delete":
            text = text[:where] + text[where + 1 :]
        elif edit == "replace":
            text = text[:where] + piece + text[where + len(piece) :]
        else:
            head, _, body = text.partition("(")
            fields = body.rstrip(")").split(" ")
            fields[draw(st.integers(0, len(fields) - 1))] = piece
            text = f"{head}({' '.join(fields)})"
    return text


@FAST
@given(
    text=st.one_of(
        st.text(),
        st.text(alphabet=CRON_CHARACTERS).map(lambda body: f"cron({body})"),
        st.text(alphabet="0123456789 minuteshourday١²").map(lambda body: f"rate({body})"),
        mutated(),
    ),
    zone=st.sampled_from(ZONES),
)
def test_any_text_parses_or_is_refused_with_a_value_error(text, zone):
    parsed_or_refused(text, zone)


@FAST
@given(
    zone=st.one_of(
        st.text(max_size=30),
        st.sampled_from(["localtime", "posixrules", "Factory", "europe/berlin", "Europe/Berlin ", "../../etc/passwd", "UTC\x00"]),
        st.sampled_from(ZONES).map(lambda name: name + "/"),
    )
)
def test_any_time_zone_name_is_known_or_refused_with_a_value_error(zone):
    try:
        tz = parse_timezone(zone)
    except ValueError as refused:
        assert "not a known IANA time zone" in str(refused)
        with pytest.raises(ValueError):
            parse_expression("cron(0 9 * * ? *)", zone)
    else:
        assert tz.key == zone


@FAST
@given(
    cron=crons(),
    unsupported=st.sampled_from(
        [("L", "?"), ("15W", "?"), ("LW", "?"), ("L-3", "?"), ("?", "6L"), ("?", "2#1"), ("?", "FRI#3"), ("?", "L")]
    ),
)
def test_l_w_and_hash_are_refused_not_approximated(cron, unsupported):
    fields = cron.text.removeprefix("cron(").removesuffix(")").split(" ")
    fields[2], fields[4] = unsupported
    with pytest.raises(ValueError, match="does not support L, W or #"):
        parse_expression(f"cron({' '.join(fields)})")


@FAST
@given(when=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2199, 1, 1)), zone=st.sampled_from(ZONES))
def test_one_time_at_expressions_are_refused(when, zone):
    with pytest.raises(ValueError, match="neither rate"):
        parse_expression(f"at({when.replace(microsecond=0).isoformat()})", zone)


# --- placeholders ------------------------------------------------------------------------------------------

SIMPLE = ("today", "yesterday", "tomorrow", "month_start", "last_month_start", "now")
PLACEHOLDER_ZONES = st.sampled_from([*ZONES, "Pacific/Kiritimati", "Pacific/Pago_Pago", "Pacific/Chatham"]).map(ZoneInfo)
PLACEHOLDER_MOMENTS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC))
NAMES = st.one_of(st.sampled_from(SIMPLE), st.integers(0, MAX_DAYS_AGO).map(lambda days: f"days_ago:{days}"))
LITERALS = st.text(alphabet=st.characters(exclude_characters="{}"), max_size=8)


def reference(name: str, moment: datetime, zone: ZoneInfo) -> str:
    """What a placeholder stands for, computed plainly from the wall time in the zone."""
    local = moment.astimezone(zone)
    today = local.date()
    if name.startswith("days_ago:"):
        return date.fromordinal(today.toordinal() - int(name.removeprefix("days_ago:"))).isoformat()
    if name == "now":
        offset = int(local.utcoffset().total_seconds()) // 60
        sign = "-" if offset < 0 else "+"
        return f"{local:%Y-%m-%dT%H:%M:%S}{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    previous_month = (today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)
    return {
        "today": today,
        "yesterday": date.fromordinal(today.toordinal() - 1),
        "tomorrow": date.fromordinal(today.toordinal() + 1),
        "month_start": date(today.year, today.month, 1),
        "last_month_start": date(*previous_month, 1),
    }[name].isoformat()


@st.composite
def templates(draw) -> list[tuple[str, str | None]]:
    """A string param as pieces: literal text, and placeholders (name, spelling with optional spaces)."""
    pieces: list[tuple[str, str | None]] = [(draw(LITERALS), None)]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(NAMES)
        space = st.sampled_from(["", "", " ", "  ", "\t"])
        pieces.append(("{{" + draw(space) + name + draw(space) + "}}", name))
        pieces.append((draw(LITERALS), None))
    return pieces


def template_text(pieces) -> str:
    return "".join(text for text, _ in pieces)


def template_expected(pieces, moment: datetime, zone: ZoneInfo) -> str:
    return "".join(text if name is None else reference(name, moment, zone) for text, name in pieces)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False))
KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)
# params as JSON holds them: the string leaves as templates, kept with what they should become
PARAMS = st.recursive(
    st.one_of(SCALARS.map(lambda scalar: ("scalar", scalar)), templates().map(lambda pieces: ("template", pieces))),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)


def params_text(tree):
    if isinstance(tree, list):
        return [params_text(item) for item in tree]
    if isinstance(tree, dict):
        return {key: params_text(item) for key, item in tree.items()}
    kind, leaf = tree
    return template_text(leaf) if kind == "template" else leaf


def params_expected(tree, moment: datetime, zone: ZoneInfo):
    if isinstance(tree, list):
        return [params_expected(item, moment, zone) for item in tree]
    if isinstance(tree, dict):
        return {key: params_expected(item, moment, zone) for key, item in tree.items()}
    kind, leaf = tree
    return template_expected(leaf, moment, zone) if kind == "template" else leaf


@FAST
@given(tree=PARAMS, moment=PLACEHOLDER_MOMENTS, zone=PLACEHOLDER_ZONES)
def test_params_keep_their_shape_and_each_placeholder_becomes_its_date_in_the_zone(tree, moment, zone):
    params = params_text(tree)
    untouched = copy.deepcopy(params)

    resolved = resolve(params, moment, zone)

    assert resolved == params_expected(tree, moment, zone)
    assert params == untouched  # resolving changes a copy, not the schedule's own params


@FAST
@given(tree=PARAMS, moment=PLACEHOLDER_MOMENTS, zone=PLACEHOLDER_ZONES, other=PLACEHOLDER_ZONES)
def test_resolving_is_the_same_for_the_same_instant_and_zone(tree, moment, zone, other):
    params = params_text(tree)
    first = resolve(params, moment, zone)
    assert resolve(params, moment, zone) == first
    assert resolve(params, moment.astimezone(other), zone) == first  # the zone the moment is written in is no matter


@FAST
@given(
    value=st.recursive(
        st.one_of(SCALARS, st.text().filter(lambda text: "{{" not in text)),
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
        max_leaves=8,
    ),
    moment=PLACEHOLDER_MOMENTS,
    zone=PLACEHOLDER_ZONES,
)
def test_params_without_placeholders_come_back_unchanged(value, moment, zone):
    assert resolve(value, moment, zone) == value


def known(name: str) -> bool:
    """Whether `name`, as written between the braces, is a placeholder (the module docstring's table)."""
    name = name.strip()
    if name in SIMPLE:
        return True
    count = name.removeprefix("days_ago:").strip() if name.startswith("days_ago:") else ""
    if not count or any(c not in "0123456789" for c in count):
        return False
    significant = count.lstrip("0") or "0"
    return len(significant) <= 4 and int(significant) <= MAX_DAYS_AGO


NEAR_NAMES = [
    "",
    " ",
    "Today",
    "TODAY",
    "to day",
    "now()",
    "days_ago",
    "days_ago:",
    "days_ago: ",
    "days_ago:-1",
    "days_ago:+1",
    "days_ago:1.5",
    "days_ago:1e3",
    "days_ago:0x10",
    "days_ago:3661",
    "days_ago:3660",
    "days_ago:00007",
    "days_ago:000000000000000000000",
    "days_ago : 7",
    "days_ago:7 days",
    "days_ago:²",
    "days_ago:١٢",
    "days_ago:７",
    "days_ago:1_000",
    "days-ago:7",
    "weeks_ago:1",
]
PLACEHOLDER_NAMES = st.one_of(
    st.sampled_from(NEAR_NAMES),
    st.text(alphabet=st.characters(exclude_characters="{}"), max_size=12),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Zs"]), max_size=5).map(lambda count: f"days_ago:{count}"),
    st.integers(4000, 6000).map(lambda length: "days_ago:" + "1" * length),  # past int()'s 4300 digits
    st.integers(0, 10**12).map(lambda days: f"days_ago:{days}"),
    NAMES,
)


@FAST
@given(name=PLACEHOLDER_NAMES, before=LITERALS, after=LITERALS, moment=PLACEHOLDER_MOMENTS, zone=PLACEHOLDER_ZONES)
def test_anything_else_between_double_braces_is_a_placeholder_error_never_another(name, before, after, moment, zone):
    text = before + "{{" + name + "}}" + after
    try:
        resolved = resolve({"startdate": text}, moment, zone)
    except PlaceholderError as refused:
        assert not known(name), name
        assert refused.path == "params.startdate"
    else:
        assert known(name), name
        stripped = name.strip()
        if stripped.startswith("days_ago:"):
            stripped = "days_ago:" + str(int(stripped.removeprefix("days_ago:").strip().lstrip("0") or "0"))
        assert resolved == {"startdate": before + reference(stripped, moment, zone) + after}


@FAST
@given(text=st.text(), moment=PLACEHOLDER_MOMENTS, zone=PLACEHOLDER_ZONES)
def test_any_text_resolves_or_is_a_placeholder_error(text, moment, zone):
    try:
        resolved = resolve(text, moment, zone)
    except PlaceholderError:
        assert "{{" in text
    else:
        assert isinstance(resolved, str)
        if "{{" not in text:
            assert resolved == text


@st.composite
def nested(draw, leaf: str) -> tuple[object, str]:
    """`leaf` somewhere inside dicts and lists, and the path PlaceholderError should name."""
    value, path = leaf, []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            key = draw(KEYS)
            value = {**draw(st.dictionaries(KEYS, st.integers(), max_size=2)), key: value}
            path.insert(0, key)
        else:
            before = draw(st.lists(st.integers() | st.just("{{today}}"), max_size=3))
            value = [*before, value, *draw(st.lists(st.integers(), max_size=2))]
            path.insert(0, str(len(before)))
    return value, ".".join(["params", *path])


@FAST
@given(data=st.data(), name=PLACEHOLDER_NAMES.filter(lambda name: not known(name)))
def test_a_placeholder_error_names_where_the_placeholder_is(data, name):
    value, path = data.draw(nested("x-{{" + name + "}}"))
    with pytest.raises(PlaceholderError) as refused:
        resolve(value, datetime(2026, 11, 22, 2, tzinfo=UTC), ZoneInfo("Europe/Dublin"))
    assert refused.value.path == path
    assert re.search(r"unknown placeholder|days_ago takes", refused.value.message)
