"""Recurring jobs through the handlers, as Lambda runs them, against the template's resources in moto:
the schedule API (EventBridge Scheduler in moto), the schedules function (EventBridge Scheduler's
target), and the local stack's timer firing a schedule created through POST /schedules on a clock
the test controls.
"""

import copy
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from devstack.resources import create_resources
from devstack.schedules import Schedule, ScheduleTimer, scheduler_schedules
from tests.fakes import SteppedClock
from tests.integration.aws_env import mocked_aws
from tests.integration.test_handlers import EVENTS, Deployed, _forget_wiring

NIGHTLY = json.loads(json.loads((EVENTS / "api_create_schedule.json").read_text())["body"])
EXAMPLE = "nightly-autoresponder-results"  # template.yaml's example schedule


@pytest.fixture
def deployed(monkeypatch):
    with mocked_aws(monkeypatch):
        stack = Deployed(monkeypatch)
        create_resources(stack.template, stack.client)
        yield stack
        _forget_wiring()


def call(deployed, method: str, path: str, body=None) -> tuple[int, dict | None]:
    event = json.loads((EVENTS / "api_create_schedule.json").read_text())
    name = path.removeprefix("/schedules").strip("/")
    route = "/schedules/{name}" if name else "/schedules"
    event.update(
        routeKey=f"{method} {route}",
        rawPath=path,
        pathParameters={"name": name} if name else None,
        body=None if body is None else json.dumps(body),
    )
    event["requestContext"].update(routeKey=f"{method} {route}")
    event["requestContext"]["http"].update(method=method, path=path)
    answer = deployed.invoke("ApiFunction", event)
    return answer["statusCode"], json.loads(answer["body"]) if answer.get("body") else None


def get_job(deployed, job_id: str) -> dict:
    event = json.loads((EVENTS / "api_get_job.json").read_text())
    event.update(rawPath=f"/jobs/{job_id}", pathParameters={"job_id": job_id})
    event["requestContext"]["http"]["path"] = f"/jobs/{job_id}"
    answer = deployed.invoke("ApiFunction", event)
    assert answer["statusCode"] == 200, answer
    return json.loads(answer["body"])


def run_event(deployed, name: str, moment: datetime) -> dict:
    """What EventBridge Scheduler sends the schedule's target for the run at `moment`."""
    target = deployed.client("scheduler").get_schedule(Name=name, GroupName=group(deployed))["Target"]
    return json.loads(target["Input"].replace("<aws.scheduler.scheduled-time>", text(moment)))


def text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def group(deployed) -> str:
    return deployed.functions["ApiFunction"].environment["SCHEDULE_GROUP"]


def job_ids(deployed) -> list[str]:
    table = deployed.functions["ApiFunction"].environment["JOBS_TABLE"]
    items = deployed.client("dynamodb").scan(TableName=table)["Items"]
    return sorted(item["job_id"]["S"] for item in items if item["sk"]["S"] == "JOB")


# --- the API ------------------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def api_stack():
    """One deployment for a class's tests (moto for that class only: a later test's own mock_aws
    would reset it)."""
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        stack = Deployed(monkeypatch)
        create_resources(stack.template, stack.client)
        yield stack
        _forget_wiring()


class TestTheScheduleApi:
    """On one deployment: each test leaves only the template's example schedule."""

    @pytest.fixture
    def deployed(self, api_stack):
        stack = api_stack
        yield stack
        scheduler = stack.client("scheduler")
        for schedule in scheduler.list_schedules(GroupName=group(stack))["Schedules"]:
            if schedule["Name"] != EXAMPLE:
                scheduler.delete_schedule(Name=schedule["Name"], GroupName=group(stack))

    def test_create_list_get_and_delete_a_schedule(self, deployed):
        status, created = call(deployed, "POST", "/schedules", NIGHTLY)

        assert status == 201, created
        assert created["name"] == "nightly-contact-summary" and created["cron"] == "30 2 * * ? *"
        assert (created["timezone"], created["enabled"], created["last_runs"]) == ("Europe/Dublin", True, [])
        assert created["params"] == NIGHTLY["params"]  # kept with its placeholders
        held = deployed.client("scheduler").get_schedule(Name="nightly-contact-summary", GroupName=group(deployed))
        assert held["ScheduleExpression"] == "cron(30 2 * * ? *)" and held["ScheduleExpressionTimezone"] == "Europe/Dublin"
        assert held["State"] == "ENABLED" and held["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert held["Target"]["Arn"] == deployed.template.resources["SchedulesFunction"].attributes["Arn"]
        assert held["Target"]["RoleArn"] == deployed.template.resources["SchedulerRole"].attributes["Arn"]

        status, listed = call(deployed, "GET", "/schedules")
        assert status == 200
        by_name = {schedule["name"]: schedule for schedule in listed["schedules"]}
        assert set(by_name) == {"nightly-contact-summary", EXAMPLE}  # the template's example is in the group too
        assert by_name[EXAMPLE]["enabled"] is False and by_name[EXAMPLE]["operation"] == "pinpointe.autoresponder_results"

        status, read = call(deployed, "GET", "/schedules/nightly-contact-summary")
        assert (status, read["description"]) == (200, NIGHTLY["description"])

        assert call(deployed, "DELETE", "/schedules/nightly-contact-summary") == (204, None)
        status, missing = call(deployed, "GET", "/schedules/nightly-contact-summary")
        assert (status, missing["error"]["code"]) == (404, "NOT_FOUND")
        status, missing = call(deployed, "DELETE", "/schedules/nightly-contact-summary")
        assert (status, missing["error"]["code"]) == (404, "NOT_FOUND")

    @pytest.mark.parametrize(
        ("changes", "status", "code", "field"),
        [
            ({"cron": "30 2 * * *"}, 422, "INVALID_REQUEST", "cron"),
            ({"cron": None, "rate": "every day"}, 422, "INVALID_REQUEST", "rate"),
            ({"rate": "1 day"}, 422, "INVALID_REQUEST", "body"),  # cron and rate both given
            ({"timezone": "Europe/Atlantis"}, 422, "INVALID_REQUEST", "timezone"),
            ({"operation": "pinpointe.everything"}, 422, "INVALID_REQUEST", None),
            ({"params": {"stat": "4711", "startdate": "{{yesterday}}", "enddate": "{{yesterday}}"}}, 422, "INVALID_REQUEST", "params"),
            ({"params": {"stat": "4711", "startdate": "{{last_tuesday}}"}}, 422, "INVALID_REQUEST", "params.startdate"),
            ({"name": "has spaces"}, 422, "INVALID_REQUEST", "body.name"),
            ({"name": "nightly-contact-summary"}, 409, "SCHEDULE_EXISTS", None),  # created first below
        ],
    )
    def test_invalid_schedules_are_refused_with_a_json_error(self, deployed, changes, status, code, field):
        if status == 409:
            assert call(deployed, "POST", "/schedules", NIGHTLY)[0] == 201
        body = {key: value for key, value in (NIGHTLY | changes).items() if value is not None}

        answered, error = call(deployed, "POST", "/schedules", body)

        assert (answered, error["error"]["code"]) == (status, code), error
        assert error["error"]["message"]
        if field is not None:
            assert field in [detail["field"] for detail in error["error"]["details"]], error
        names = {s["Name"] for s in deployed.client("scheduler").list_schedules(GroupName=group(deployed))["Schedules"]}
        assert names == {EXAMPLE} | ({"nightly-contact-summary"} if status == 409 else set())


# --- runs ---------------------------------------------------------------------------------------------


def test_each_run_submits_one_job_linked_to_its_schedule(deployed):
    assert call(deployed, "POST", "/schedules", NIGHTLY)[0] == 201
    # Runs scheduled before the schedule was created would be an earlier namesake's: these are ahead.
    first = (datetime.now(UTC) + timedelta(days=1)).replace(hour=2, minute=30, second=0, microsecond=0)
    second = first + timedelta(days=1)

    answers = [
        deployed.invoke("SchedulesFunction", run_event(deployed, "nightly-contact-summary", moment))
        for moment in (first, second, first)  # the first run delivered twice
    ]

    assert answers[0]["job_id"] == answers[2]["job_id"] != answers[1]["job_id"]
    assert job_ids(deployed) == sorted({answer["job_id"] for answer in answers})
    executions = deployed.client("stepfunctions").list_executions(stateMachineArn=deployed.template.state_machines[0].arn)
    assert sorted(e["name"] for e in executions["executions"]) == job_ids(deployed)

    job = get_job(deployed, answers[0]["job_id"])
    assert job["schedule"] == {"name": "nightly-contact-summary", "scheduled_time": text(first)}
    assert job["status"] == "SUBMITTED" and job["operation"] == NIGHTLY["operation"]

    status, schedule = call(deployed, "GET", "/schedules/nightly-contact-summary")
    assert status == 200
    assert [(run["scheduled_time"], run["job_id"], run["status"]) for run in schedule["last_runs"]] == [
        (text(second), answers[1]["job_id"], "SUBMITTED"),
        (text(first), answers[0]["job_id"], "SUBMITTED"),
    ]


def test_the_sample_run_event_resolves_its_placeholders_in_its_time_zone(deployed):
    event = json.loads((EVENTS / "schedule_run.json").read_text())  # 02:30 UTC on 22 November: Dublin is UTC+0
    event["scheduled_time"] = "2026-07-01T23:30:00Z"  # 00:30 on 2 July in Dublin (UTC+1)

    answer = deployed.invoke("SchedulesFunction", event)

    table = deployed.functions["SchedulesFunction"].environment["JOBS_TABLE"]
    item = deployed.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": f"JOB#{answer['job_id']}"}, "sk": {"S": "JOB"}})
    params = item["Item"]["params"]["M"]
    assert (params["startdate"]["S"], params["enddate"]["S"]) == ("2026-07-01", "2026-07-02")


# --- the local stack's timer ----------------------------------------------------------------------------


def test_the_local_timer_fires_schedules_created_through_the_api_and_not_disabled_ones(deployed):
    hourly = NIGHTLY | {"name": "hourly", "cron": "0 * * * ? *", "timezone": "UTC"}
    assert call(deployed, "POST", "/schedules", hourly)[0] == 201
    assert call(deployed, "POST", "/schedules", hourly | {"name": "hourly-off", "enabled": False})[0] == 201
    functions = {f.arn: f.name for f in deployed.template.functions}
    by_name = {f.name: f.logical_id for f in deployed.template.functions}
    fired: list[tuple[str, datetime]] = []
    done = threading.Event()

    def fire(schedule: Schedule, moment: datetime) -> None:  # as LocalStack._fire, minus moto's Lambda Invoke
        deployed.invoke(by_name[schedule.function_name], json.loads(schedule.payload(moment)))
        fired.append((schedule.name, moment))
        if len(fired) == 2:
            done.set()

    # The template's disabled example schedule is in moto's group too: only "hourly" may fire.
    ten = (datetime.now(UTC) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)  # ahead of now
    clock = SteppedClock(ten - timedelta(seconds=30), until=ten + timedelta(hours=1))
    source = scheduler_schedules(deployed.client("scheduler"), functions)
    # Only what Scheduler holds (the template's rules, the sweeper's, are test_devstack's business).
    timer = ScheduleTimer([], fire, clock, source=source, refresh=timedelta(minutes=20))
    timer.start()
    try:
        assert done.wait(30), fired
    finally:
        timer.stop()

    assert [(name, moment.strftime("%H:%M")) for name, moment in fired] == [("hourly", "10:00"), ("hourly", "11:00")]
    status, schedule = call(deployed, "GET", "/schedules/hourly")
    assert [run["scheduled_time"] for run in schedule["last_runs"]] == [text(ten + timedelta(hours=1)), text(ten)]
    assert all(run["job_id"] and run["status"] == "SUBMITTED" for run in schedule["last_runs"])
    assert call(deployed, "GET", "/schedules/hourly-off")[1]["last_runs"] == []
    assert len(job_ids(deployed)) == 2


def test_template_schedules_in_moto_are_not_fired_twice():
    arn = "arn:aws:scheduler:us-east-1:123456789012:schedule/g/tick"
    fixed = Schedule("tick", arn, "rate(1 hour)", "UTC", "fn", '{"at": "<aws.scheduler.scheduled-time>"}')
    fired = []
    done = threading.Event()

    def fire(schedule, moment):
        fired.append(json.loads(schedule.payload(moment)))
        if len(fired) == 2:
            done.set()

    clock = SteppedClock(datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 1, 1, 2, 30, tzinfo=UTC))
    timer = ScheduleTimer([fixed], fire, clock, source=lambda: [copy.copy(fixed)], refresh=timedelta(minutes=45))
    timer.start()
    try:
        assert done.wait(10)
    finally:
        timer.stop()
    assert fired  # a duplicate would be among the first two: it fires at the same clock times == [{"at": "2026-01-01T01:00:00Z"}, {"at": "2026-01-01T02:00:00Z"}]
