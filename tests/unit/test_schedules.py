"""Recurring jobs on the fakes: expressions, placeholders at a given time and time zone, what a new
or changed schedule must pass, when a schedule runs next, and what a schedule's runs submit (one
job per scheduled time, a run asked for now included)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from jobrelay.api.models import ScheduleRequest, ScheduleUpdate
from jobrelay.domain.errors import InvalidRequest, ScheduleExists, ScheduleNotFound
from jobrelay.domain.ids import new_job_id, plausible_job_id, scheduled_job_id
from jobrelay.domain.job import JobPatch
from jobrelay.domain.placeholders import PlaceholderError, resolve
from jobrelay.domain.schedule_expressions import parse_expression, parse_timezone, upcoming
from jobrelay.domain.status import JobStatus
from jobrelay.services.jobs import ServiceUnavailable
from jobrelay.services.schedules import (
    ScheduleDefinedInTemplate,
    ScheduledInvocation,
    ScheduleFirer,
    ScheduleService,
    target_input,
)
from tests.fakes import InMemoryScheduler, InMemoryScheduleRuns

NIGHTLY = {
    "name": "nightly-summary",
    "cron": "30 2 * * ? *",
    "timezone": "Europe/Dublin",
    "operation": "pinpointe.newsletter_contact_data_summary",
    "params": {"stat": "4711", "startdate": "{{yesterday}}", "enddate": "{{today}}"},
}


# --- placeholders -----------------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("moment", "zone", "expected"),
    [
        # 00:30 in Paris is still the day before in UTC: the schedule's zone decides "today".
        (datetime(2026, 1, 14, 23, 30, tzinfo=UTC), PARIS, ("2026-01-15", "2026-01-14", "2026-01-15T00:30:00+01:00")),
        (datetime(2026, 1, 14, 23, 30, tzinfo=UTC), ZoneInfo("UTC"), ("2026-01-14", "2026-01-13", "2026-01-14T23:30:00+00:00")),
        # The night Paris moves to summer time (29 March 2026, 02:00 -> 03:00): at 22:30 UTC on the
        # 29th it is already 00:30 on the 30th (UTC+2); a fixed +1 offset would say the 29th.
        (datetime(2026, 3, 29, 22, 30, tzinfo=UTC), PARIS, ("2026-03-30", "2026-03-29", "2026-03-30T00:30:00+02:00")),
        # New York falls back on 1 November 2026: 04:30 UTC is 00:30 EDT (UTC-4), 05:30 UTC is 01:30 EDT.
        (
            datetime(2026, 11, 1, 4, 30, tzinfo=UTC),
            ZoneInfo("America/New_York"),
            ("2026-11-01", "2026-10-31", "2026-11-01T00:30:00-04:00"),
        ),
        (
            datetime(2026, 11, 2, 4, 30, tzinfo=UTC),
            ZoneInfo("America/New_York"),
            ("2026-11-01", "2026-10-31", "2026-11-01T23:30:00-05:00"),
        ),
    ],
)
def test_placeholders_resolve_in_the_schedules_time_zone(moment, zone, expected):
    today, yesterday, now = expected
    params = {"enddate": "{{today}}", "startdate": "{{ yesterday }}", "note": "run at {{now}}"}

    assert resolve(params, moment, zone) == {"enddate": today, "startdate": yesterday, "note": f"run at {now}"}


def test_every_placeholder_and_where_they_may_stand():
    moment = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)  # 1 January: last month is last year's December
    params = {
        "dates": ["{{tomorrow}}", "{{days_ago:0}}", "{{days_ago:31}}"],
        "nested": {"from": "{{last_month_start}}", "to": "{{month_start}}"},
        "name": "export-{{today}}-{{yesterday}}",
        "count": 3,
        "flag": True,
        "plain": "no {braces} here",
    }

    assert resolve(params, moment, ZoneInfo("UTC")) == {
        "dates": ["2026-01-02", "2026-01-01", "2025-12-01"],
        "nested": {"from": "2025-12-01", "to": "2026-01-01"},
        "name": "export-2026-01-01-2025-12-31",
        "count": 3,
        "flag": True,
        "plain": "no {braces} here",
    }


@pytest.mark.parametrize(
    ("params", "path", "message"),
    [
        ({"startdate": "{{lastweek}}"}, "params.startdate", "unknown placeholder {{lastweek}}"),
        ({"list": ["1", "{{days_ago:x}}"]}, "params.list.1", "days_ago takes a whole number"),
        ({"a": {"b": "{{days_ago:99999}}"}}, "params.a.b", "from 0 to 3660"),
    ],
)
def test_an_unknown_placeholder_is_named_with_where_it_is(params, path, message):
    with pytest.raises(PlaceholderError) as raised:
        resolve(params, datetime(2026, 1, 1, tzinfo=UTC), ZoneInfo("UTC"))
    assert raised.value.path == path and message in raised.value.message


@pytest.mark.parametrize("count", ["²", "٣", "1" * 5000])
def test_a_days_ago_count_that_is_not_ascii_digits_or_is_huge_is_a_placeholder_error(count):
    # isdigit() took '²', which int() refuses, and int() refuses 4301 digits or more: both were a bare
    # ValueError, not the PlaceholderError the API answers 400 with (a 500). Only ASCII digits count now.
    with pytest.raises(PlaceholderError, match="days_ago takes a whole number"):
        resolve({"startdate": "{{days_ago:" + count + "}}"}, datetime(2026, 1, 1, tzinfo=UTC), ZoneInfo("UTC"))


# --- expressions and ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("expression", ["rate(1 minutes)", "rate(5 minute)", "cron(5-2 * * * ? *)", "cron(0 12 ? * 2#1 *)"])
def test_expressions_eventbridge_would_refuse_or_the_timer_could_not_fire_are_refused(expression):
    with pytest.raises(ValueError):
        parse_expression(expression)


def test_a_cron_is_read_in_its_time_zone_across_a_dst_change():
    nightly = parse_expression("cron(30 2 * * ? *)", "Europe/Dublin")
    # Dublin is UTC+0 in winter and UTC+1 from 29 March 2026 (01:00 UTC).
    assert nightly.next_after(datetime(2026, 3, 28, 3, 0, tzinfo=UTC)) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert nightly.next_after(datetime(2026, 3, 27, 3, 0, tzinfo=UTC)) == datetime(2026, 3, 28, 2, 30, tzinfo=UTC)


def test_a_cron_at_a_wall_time_the_spring_change_skips_does_not_run_that_day():
    # New York skips 02:00-02:59 on 8 March 2026, and EventBridge Scheduler skips a run at a time that
    # does not exist (it used to be shown, and fired by the local stack, at 03:30 EDT).
    nightly = parse_expression("cron(30 2 * * ? *)", "America/New_York")
    assert upcoming(nightly, datetime(2026, 3, 7, 12, 0, tzinfo=UTC), 2) == [
        datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT
        datetime(2026, 3, 10, 6, 30, tzinfo=UTC),
    ]


def test_a_cron_in_the_hour_the_fall_change_repeats_runs_once_and_never_before_its_start():
    # New York repeats 01:00-01:59 on 1 November 2026, first as EDT, then as EST. The 01:45 run is at
    # 01:45 EDT (05:45 UTC) only; from 01:10 EST (06:10 UTC) the next is the next day's, not 05:45 UTC,
    # which was earlier than the start.
    nightly = parse_expression("cron(45 1 * * ? *)", "America/New_York")
    assert nightly.next_after(datetime(2026, 11, 1, 5, 0, tzinfo=UTC)) == datetime(2026, 11, 1, 5, 45, tzinfo=UTC)
    assert nightly.next_after(datetime(2026, 11, 1, 6, 10, tzinfo=UTC)) == datetime(2026, 11, 2, 6, 45, tzinfo=UTC)


def test_a_cron_for_a_year_more_than_five_years_off_fires_then():
    # The search gave up after five years of days: "cron(0 9 1 1 ? 2035) never fires after now".
    expression = parse_expression("cron(0 9 1 1 ? 2035)")
    assert upcoming(expression, datetime(2026, 11, 22, tzinfo=UTC), 3) == [datetime(2035, 1, 1, 9, 0, tzinfo=UTC)]


@pytest.mark.parametrize("expression", ["rate(99999999999999999999 minutes)", "cron(² * * * ? *)", "rate(١ minute)"])
def test_a_rate_longer_than_a_timedelta_and_digits_that_are_not_ascii_are_a_value_error_naming_it(expression):
    # The first was an OverflowError (a 500), the second int()'s own ValueError, the third accepted.
    with pytest.raises(ValueError) as raised:
        parse_expression(expression)
    assert expression in str(raised.value)


def test_a_rate_whose_next_time_is_past_the_year_9999_never_fires_again():
    assert upcoming(parse_expression("rate(9999999 days)"), datetime(2026, 11, 22, tzinfo=UTC), 5) == []  # not OverflowError


@pytest.mark.parametrize("name", ["Mars/Olympus", "localtime", "", "Europe/Paris "])
def test_only_time_zones_of_the_database_are_accepted(name):
    with pytest.raises(ValueError, match="not a known IANA time zone"):
        parse_timezone(name)


def test_a_runs_job_id_is_the_same_for_every_delivery_and_looks_like_any_job_id():
    moment = datetime(2026, 11, 22, 2, 30, tzinfo=UTC)
    job_id = scheduled_job_id("nightly", moment)

    assert job_id == scheduled_job_id("nightly", moment.astimezone(ZoneInfo("Europe/Paris")))  # the same instant
    assert job_id != scheduled_job_id("nightly", moment + timedelta(days=1))
    assert job_id != scheduled_job_id("nightly-2", moment)
    assert plausible_job_id(job_id) and len(job_id) == len(new_job_id())
    assert job_id[:14] == new_job_id(int(moment.timestamp() * 1000))[:14]  # sorts by its time like the others


# --- creating schedules -----------------------------------------------------------------------------


@pytest.fixture
def schedules(world):
    scheduler, runs = InMemoryScheduler(clock=world.clock), InMemoryScheduleRuns()
    firer = ScheduleFirer(world.jobs, world.store, runs, now=world.clock)
    service = ScheduleService(scheduler, runs, world.store, now=world.clock, firer=lambda: firer)
    return service, firer, scheduler, runs


def request(**changes) -> ScheduleRequest:
    return ScheduleRequest.model_validate(NIGHTLY | changes)


def test_a_schedule_keeps_its_job_in_the_targets_input(schedules):
    service, _, scheduler, _ = schedules

    view = service.create(request(description="for the newsletter team"))

    spec = scheduler.get("nightly-summary")
    assert (spec.expression, spec.timezone, spec.enabled) == ("cron(30 2 * * ? *)", "Europe/Dublin", True)
    assert spec.target_input == {
        "schedule": "nightly-summary",
        "timezone": "Europe/Dublin",
        "job": {"operation": NIGHTLY["operation"], "params": NIGHTLY["params"], "account": "default"},
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    assert (view.cron, view.rate, view.expression) == ("30 2 * * ? *", None, "cron(30 2 * * ? *)")
    assert view.params == NIGHTLY["params"] and view.description == "for the newsletter team"
    assert view.last_runs == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cron": "30 2 * * *"}, "cron", "six fields"),
        ({"cron": "61 2 * * ? *"}, "cron", "outside 0-59"),
        ({"cron": "0 0 1 1 ? 2020"}, "cron", "never fires after now"),
        ({"cron": None, "rate": "5 weeks"}, "rate", "neither rate"),
        ({"cron": None, "rate": "1 hours"}, "rate", "singular"),
        ({"timezone": "Europe/Atlantis"}, "timezone", "not a known IANA time zone"),
        ({"params": {"stat": "4711", "startdate": "{{someday}}"}}, "params.startdate", "unknown placeholder"),
        (
            {"params": {"stat": "4711", "startdate": "{{today}}", "enddate": "{{yesterday}}"}},
            "params",
            "enddate must be after startdate",
        ),
        ({"params": {"startdate": "{{yesterday}}"}}, "params.stat", "Field required"),
    ],
)
def test_what_a_schedule_could_never_run_is_refused_with_the_field(schedules, changes, field, message):
    service, _, scheduler, _ = schedules

    with pytest.raises(InvalidRequest) as raised:
        service.create(request(**changes))

    assert any(d["field"] == field and message in d["message"] for d in raised.value.details), raised.value.details
    assert scheduler.schedules == {}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cron": None, "rate": "99999999999999999999 minutes"}, "rate", "too long"),
        ({"cron": None, "rate": "9999999 days"}, "rate", "never fires after now"),
        ({"params": {"stat": "4711", "startdate": "{{days_ago:²}}"}}, "params.startdate", "days_ago takes"),
    ],
)
def test_a_rate_past_any_date_and_a_days_ago_int_cannot_read_are_refused_not_a_500(schedules, changes, field, message):
    service, _, scheduler, _ = schedules  # each was an OverflowError or a bare ValueError the service let through

    with pytest.raises(InvalidRequest) as raised:
        service.create(request(**changes))

    assert any(d["field"] == field and message in d["message"] for d in raised.value.details), raised.value.details
    assert scheduler.schedules == {}


def test_an_unknown_operation_and_a_taken_name_are_refused(schedules):
    service, *_ = schedules
    with pytest.raises(InvalidRequest) as raised:
        service.create(request(operation="pinpointe.everything"))
    assert "pinpointe.newsletter_contact_data_summary" in raised.value.details["known_operations"]

    service.create(request())
    with pytest.raises(ScheduleExists):
        service.create(request(cron="0 3 * * ? *"))


def test_deleting_and_reading_a_missing_schedule_is_not_found(schedules):
    service, *_ = schedules
    service.create(request())
    service.delete("nightly-summary")

    with pytest.raises(ScheduleNotFound):
        service.get("nightly-summary")
    with pytest.raises(ScheduleNotFound):
        service.delete("nightly-summary")
    assert service.list().schedules == []


# --- runs ---------------------------------------------------------------------------------------------


def invocation(moment: datetime, name: str = "nightly-summary") -> ScheduledInvocation:
    job = request().job()
    event = target_input(name, "Europe/Dublin", job) | {"scheduled_time": moment.isoformat().replace("+00:00", "Z")}
    return ScheduledInvocation.model_validate(event)


def test_two_runs_make_two_jobs_and_a_redelivered_run_makes_none(schedules, world):
    service, firer, _, _ = schedules
    service.create(request())
    first, second = datetime(2026, 11, 23, 2, 30, tzinfo=UTC), datetime(2026, 11, 24, 2, 30, tzinfo=UTC)

    runs = [firer.fire(invocation(first)), firer.fire(invocation(second)), firer.fire(invocation(first))]

    assert runs[0].job_id == runs[2].job_id != runs[1].job_id
    assert len(world.store.list(status=None, operation=None, limit=10, cursor=None).jobs) == 2
    assert world.workflow.started == [runs[0].job_id, runs[1].job_id]
    job = world.store.get(runs[0].job_id)
    assert job.params == {"stat": "4711", "startdate": "2026-11-22", "enddate": "2026-11-23"}
    assert (job.schedule.name, job.schedule.scheduled_time) == ("nightly-summary", first)
    assert world.store.timeline(job.job_id)[0].detail == {"operation": NIGHTLY["operation"], "schedule": "nightly-summary"}

    shown = service.get("nightly-summary").last_runs
    assert [(run.scheduled_time, run.job_id, run.status) for run in shown] == [
        (second, runs[1].job_id, JobStatus.SUBMITTED),
        (first, runs[0].job_id, JobStatus.SUBMITTED),
    ]


def test_a_run_whose_job_was_stored_but_never_started_is_started_by_the_redelivery(schedules, world):
    service, firer, _, _ = schedules
    moment = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
    job_id = firer.fire(invocation(moment)).job_id
    world.store.update(job_id, JobPatch(execution_arn=None))  # as if the first delivery died before starting it
    world.workflow.started.clear()

    assert firer.fire(invocation(moment)).job_id == job_id
    assert world.workflow.started == [job_id]
    assert world.store.get(job_id).execution_arn == world.workflow.execution_arn(job_id)


def test_a_run_whose_job_is_refused_records_why_and_submits_nothing(schedules, world):
    service, firer, _, runs = schedules
    bad = invocation(datetime(2026, 11, 23, 2, 30, tzinfo=UTC))
    bad = bad.model_copy(update={"job": bad.job.model_copy(update={"params": {"startdate": "{{today}}"}})})

    run = firer.fire(bad)

    assert run.job_id is None and run.error.code == "INVALID_REQUEST"
    assert "params.stat" in run.error.message
    assert world.store.list(status=None, operation=None, limit=10, cursor=None).jobs == []
    assert runs.latest("nightly-summary", 10) == [run]


def test_runs_of_an_earlier_schedule_with_the_same_name_are_not_shown(schedules, world):
    service, firer, _, _ = schedules
    service.create(request())
    firer.fire(invocation(datetime(2026, 11, 22, 10, 30, tzinfo=UTC)))
    world.clock.advance(3600)
    service.delete("nightly-summary")
    service.create(request())

    assert service.get("nightly-summary").last_runs == []


# --- when it runs next ----------------------------------------------------------------------------------


def test_a_schedule_shows_its_next_five_times_in_its_own_time_zone(schedules):
    service, *_ = schedules  # the clock: 2026-11-22 10:00 UTC

    view = service.create(request())

    assert [moment.isoformat() for moment in view.next_run_at] == [
        f"2026-11-{day}T02:30:00+00:00"
        for day in (23, 24, 25, 26, 27)  # Dublin is on UTC in November
    ]
    assert '"2026-11-23T02:30:00+00:00"' in view.model_dump_json()  # with its offset, not "Z"
    paris = service.create(request(name="paris", cron="30 2 ? * MON *", timezone="Europe/Paris", params={"stat": "1"}))
    assert paris.next_run_at[0].isoformat() == "2026-11-23T02:30:00+01:00"
    assert [s.next_run_at[0] for s in service.list().schedules] == [view.next_run_at[0], paris.next_run_at[0]]


def test_a_disabled_schedule_has_no_next_times_and_a_foreign_expression_has_unknown_ones(schedules):
    service, _, scheduler, _ = schedules
    assert service.create(request(enabled=False)).next_run_at == []

    spec = scheduler.schedules["nightly-summary"]
    scheduler.schedules["nightly-summary"] = replace(spec, enabled=True, expression="cron(0 12 L * ? *)")  # made with the CLI
    assert service.get("nightly-summary").next_run_at is None


def test_a_rate_counts_from_the_schedules_last_change(schedules, world):
    service, *_ = schedules
    service.create(request(cron=None, rate="1 hour"))  # at 10:00
    world.clock.advance(2.5 * 3600)

    assert [t.strftime("%H:%M") for t in service.get("nightly-summary").next_run_at] == [
        "13:00",
        "14:00",
        "15:00",
        "16:00",
        "17:00",
    ]

    service.update("nightly-summary", ScheduleUpdate(rate="2 hours"))  # at 12:30
    assert [t.strftime("%H:%M") for t in service.get("nightly-summary").next_run_at][:2] == ["14:30", "16:30"]


def test_upcoming_stops_where_the_expression_does():
    once = parse_expression("cron(0 9 1 1 ? 2027)")
    assert upcoming(once, datetime(2026, 11, 22, tzinfo=UTC), 5) == [datetime(2027, 1, 1, 9, 0, tzinfo=UTC)]
    later = datetime(2026, 12, 1, tzinfo=UTC)  # a rate that starts later fires first then
    assert upcoming(parse_expression("rate(1 day)"), datetime(2026, 11, 22, tzinfo=UTC), 2, since=later) == [
        later,
        later + timedelta(days=1),
    ]


# --- changing a schedule --------------------------------------------------------------------------------


def test_pausing_and_resuming_keeps_everything_else_and_its_runs(schedules, world):
    service, firer, scheduler, _ = schedules
    service.create(request(description="for the newsletter team"))
    before = scheduler.get("nightly-summary")
    firer.fire(invocation(datetime(2026, 11, 22, 10, 30, tzinfo=UTC)))
    world.clock.advance(3600)

    paused = service.update("nightly-summary", ScheduleUpdate(enabled=False))

    after = scheduler.get("nightly-summary")
    assert after.enabled is False and paused.enabled is False and paused.next_run_at == []
    assert (after.expression, after.timezone, after.target_input, after.description) == (
        before.expression,
        before.timezone,
        before.target_input,
        before.description,
    )
    assert after.created_at == before.created_at and after.updated_at == world.clock.now
    assert len(paused.last_runs) == 1  # the runs so far are still the schedule's

    resumed = service.update("nightly-summary", ScheduleUpdate.model_validate({"enabled": True}))
    assert resumed.enabled is True and resumed.next_run_at[0].isoformat() == "2026-11-23T02:30:00+00:00"


def test_a_change_replaces_the_expression_the_zone_and_the_job_it_names(schedules):
    service, _, scheduler, _ = schedules
    service.create(request(callback_url="https://example.com/done", description="old"))

    changed = service.update(
        "nightly-summary",
        ScheduleUpdate.model_validate(
            {
                "rate": "6 hours",
                "timezone": "America/New_York",
                "params": {"stat": "99", "startdate": "{{days_ago:7}}"},  # replaces the params whole
                "description": None,  # null removes it
                "timeout_seconds": 600,
            }
        ),
    )

    assert (changed.cron, changed.rate, changed.expression) == (None, "6 hours", "rate(6 hours)")
    assert changed.params == {"stat": "99", "startdate": "{{days_ago:7}}"}
    assert (changed.description, changed.callback_url, changed.timeout_seconds) == (None, "https://example.com/done", 600)
    assert changed.next_run_at[0].isoformat() == "2026-11-22T11:00:00-05:00"  # 16:00 UTC: six hours after the change
    spec = scheduler.get("nightly-summary")
    assert spec.target_input == {
        "schedule": "nightly-summary",
        "timezone": "America/New_York",  # the placeholders follow the zone
        "job": {
            "operation": NIGHTLY["operation"],
            "params": {"stat": "99", "startdate": "{{days_ago:7}}"},
            "account": "default",
            "callback_url": "https://example.com/done",
            "timeout_seconds": 600,
        },
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    back = service.update("nightly-summary", ScheduleUpdate(cron="0 9 ? * MON-FRI *"))
    assert (back.cron, back.rate) == ("0 9 ? * MON-FRI *", None)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cron": "30 2 * * *"}, "cron", "six fields"),
        ({"rate": "1 hours"}, "rate", "singular"),
        ({"cron": "0 0 1 1 ? 2020"}, "cron", "never fires after now"),
        ({"timezone": "Europe/Atlantis"}, "timezone", "not a known IANA time zone"),
        ({"params": {"stat": "4711", "startdate": "{{someday}}"}}, "params.startdate", "unknown placeholder"),
        (
            {"params": {"stat": "4711", "startdate": "{{today}}", "enddate": "{{yesterday}}"}},
            "params",
            "enddate must be after startdate",
        ),
        ({"operation": "pinpointe.list_subscribers"}, "params.list", "Field required"),  # the params stay: not valid for it
        ({"account": "no spaces"}, "account", "pattern"),
        ({"callback_url": "http://example.com/"}, "callback_url", "https"),
    ],
)
def test_a_change_is_checked_as_a_new_schedule_is_and_a_refused_one_changes_nothing(schedules, changes, field, message):
    service, _, scheduler, _ = schedules
    service.create(request())
    before = scheduler.get("nightly-summary")

    with pytest.raises((InvalidRequest, ValidationError)) as raised:
        service.update("nightly-summary", ScheduleUpdate.model_validate(changes))

    error = raised.value
    details = (
        error.details
        if isinstance(error, InvalidRequest)
        else [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in error.errors()]
    )
    assert any(d["field"] == field and message in d["message"] for d in details), details
    assert scheduler.get("nightly-summary") == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "at least one field"),
        ({"name": "renamed"}, "Extra inputs"),
        ({"cron": "0 3 * * ? *", "rate": "1 day"}, "at most one of 'cron' and 'rate'"),
        ({"enabled": None}, "cannot be null"),
        ({"params": None}, "cannot be null"),
    ],
)
def test_an_empty_patch_unknown_fields_and_nulls_that_cannot_be_are_refused(body, message):
    with pytest.raises(ValidationError, match=message):
        ScheduleUpdate.model_validate(body)


def test_changing_a_missing_schedule_or_one_not_ours_is_not_found(schedules):
    service, _, scheduler, _ = schedules
    with pytest.raises(ScheduleNotFound):
        service.update("nightly-summary", ScheduleUpdate(enabled=False))

    service.create(request())
    scheduler.schedules["nightly-summary"] = replace(scheduler.get("nightly-summary"), target_input={"other": "tool"})
    with pytest.raises(ScheduleNotFound):
        service.update("nightly-summary", ScheduleUpdate(enabled=False))


# --- schedules template.yaml defines ----------------------------------------------------------------------


def defined_in_the_template(scheduler, name: str = "nightly-summary") -> None:
    """Mark a schedule as template.yaml marks its own (its Input says where it is defined)."""
    spec = scheduler.get(name)
    scheduler.schedules[name] = replace(spec, target_input=spec.target_input | {"defined_in": "template.yaml"})


@pytest.mark.parametrize(
    "change",
    [
        lambda service: service.delete("nightly-summary"),
        lambda service: service.update("nightly-summary", ScheduleUpdate(enabled=False)),
        lambda service: service.update("nightly-summary", ScheduleUpdate(description="mine now")),
        lambda service: service.update("nightly-summary", ScheduleUpdate(cron="0 3 * * ? *")),
    ],
    ids=["delete", "pause", "describe", "reschedule"],
)
def test_a_schedule_the_template_defines_cannot_be_changed_or_deleted(schedules, change):
    service, _, scheduler, _ = schedules
    service.create(request())
    defined_in_the_template(scheduler)
    before = scheduler.get("nightly-summary")

    with pytest.raises(ScheduleDefinedInTemplate) as refused:
        change(service)

    assert (refused.value.status, refused.value.code) == (409, "SCHEDULE_DEFINED_IN_TEMPLATE")
    assert "defined in template.yaml" in refused.value.message and "deploy" in refused.value.message
    assert scheduler.get("nightly-summary") == before


def test_a_schedule_the_template_defines_is_read_and_run_as_any_other(schedules, world):
    service, _, scheduler, _ = schedules
    service.create(request())
    defined_in_the_template(scheduler)

    job_id = service.run_now("nightly-summary")

    shown = service.get("nightly-summary")
    assert shown.defined_in == "template.yaml" and [run.job_id for run in shown.last_runs] == [job_id]
    assert [view.defined_in for view in service.list().schedules] == ["template.yaml"]
    assert world.store.get(job_id).schedule.name == "nightly-summary"


def test_a_template_schedule_whose_input_we_cannot_read_still_cannot_be_deleted(schedules):
    service, _, scheduler, _ = schedules
    service.create(request())
    scheduler.schedules["nightly-summary"] = replace(
        scheduler.get("nightly-summary"), target_input={"defined_in": "template.yaml", "job": "not ours"}
    )

    with pytest.raises(ScheduleDefinedInTemplate):
        service.delete("nightly-summary")
    assert scheduler.get("nightly-summary") is not None


def test_a_schedule_made_through_the_api_is_not_marked_and_cannot_be_made_read_only(schedules):
    service, _, scheduler, _ = schedules

    assert service.create(request()).defined_in is None
    assert "defined_in" not in scheduler.get("nightly-summary").target_input
    with pytest.raises(ValidationError, match="defined_in"):
        request(name="other", defined_in="template.yaml")
    with pytest.raises(ValidationError, match="defined_in"):
        ScheduleUpdate.model_validate({"defined_in": "template.yaml"})


# --- running a schedule now -------------------------------------------------------------------------------


def test_run_now_submits_a_linked_job_at_the_current_second_even_when_paused(schedules, world):
    service, _, _, _ = schedules
    service.create(request(enabled=False))
    world.clock.now = datetime(2026, 11, 22, 23, 30, 15, 400_000, tzinfo=UTC)

    job_id = service.run_now("nightly-summary")

    job = world.store.get(job_id)
    at = datetime(2026, 11, 22, 23, 30, 15, tzinfo=UTC)
    assert (job.schedule.name, job.schedule.scheduled_time) == ("nightly-summary", at)
    assert job.params == {"stat": "4711", "startdate": "2026-11-21", "enddate": "2026-11-22"}  # resolved as of now, in Dublin
    assert world.workflow.started == [job_id]
    shown = service.get("nightly-summary")
    assert [(run.scheduled_time, run.job_id, run.status) for run in shown.last_runs] == [(at, job_id, JobStatus.SUBMITTED)]
    assert shown.enabled is False and shown.next_run_at == []  # running it did not resume it


def test_run_now_twice_within_a_second_makes_one_job_and_a_second_later_another(schedules, world):
    service, *_ = schedules
    service.create(request())

    first = service.run_now("nightly-summary")
    world.clock.advance(0.5)
    again = service.run_now("nightly-summary")
    world.clock.advance(1)
    later = service.run_now("nightly-summary")

    assert first == again != later
    assert len(world.store.list(status=None, operation=None, limit=10, cursor=None).jobs) == 2
    assert [run.job_id for run in service.get("nightly-summary").last_runs] == [later, first]


def test_a_run_asked_for_in_the_second_the_schedule_was_created_is_shown(schedules, world):
    service, *_ = schedules
    world.clock.now = world.clock.now.replace(microsecond=700_000)
    service.create(request())

    job_id = service.run_now("nightly-summary")  # scheduled at the start of that second, before its creation

    assert [run.job_id for run in service.get("nightly-summary").last_runs] == [job_id]


def test_run_now_refuses_a_job_that_is_not_valid_now_and_records_nothing(schedules, world):
    service, _, _, runs = schedules
    fixed_end = {"stat": "4711", "startdate": "{{today}}", "enddate": "2026-11-24"}
    service.create(request(params=fixed_end))  # valid on the 22nd
    world.clock.advance(3 * 86400)  # the 25th: startdate after enddate

    with pytest.raises(InvalidRequest) as raised:
        service.run_now("nightly-summary")

    assert any(d["field"] == "params" for d in raised.value.details), raised.value.details
    assert runs.runs == {} and world.store.list(status=None, operation=None, limit=10, cursor=None).jobs == []


def test_run_now_whose_job_cannot_start_answers_unavailable_and_shows_the_failed_run(schedules, world, monkeypatch):
    service, *_ = schedules
    service.create(request())

    def broken(job_id):
        raise RuntimeError("Step Functions is down")

    monkeypatch.setattr(world.workflow, "start", broken)
    with pytest.raises(ServiceUnavailable):
        service.run_now("nightly-summary")

    (run,) = service.get("nightly-summary").last_runs
    assert run.status is JobStatus.FAILED and world.store.get(run.job_id).error.code == "START_FAILED"


def test_running_a_missing_schedule_is_not_found(schedules):
    service, *_ = schedules
    with pytest.raises(ScheduleNotFound):
        service.run_now("nightly-summary")
