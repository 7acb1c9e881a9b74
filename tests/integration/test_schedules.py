"""Recurring jobs through the handlers, as Lambda runs them, against the template's resources in moto:
the schedule API (EventBridge Scheduler in moto: create, change, run now), the schedules function
(EventBridge Scheduler's target), and the local stack's timer firing a schedule created through
POST /schedules, and following its changes, on a clock the test controls.
"""

import copy
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from devstack.local_scheduler import Schedule, ScheduleTimer, scheduler_schedules
from devstack.resources import create_resources
from devstack.template import resolve_template
from tests.fakes import SteppedClock
from tests.integration.aws_env import forget_wiring, mocked_aws
from tests.integration.test_handlers import EVENTS, Deployed

NIGHTLY = json.loads(json.loads((EVENTS / "api_create_schedule.json").read_text())["body"])
EXAMPLE = "nightly-autoresponder-results"  # template.yaml's example schedule


@pytest.fixture
def deployed(monkeypatch):
    with mocked_aws(monkeypatch):
        stack = Deployed(monkeypatch)
        create_resources(stack.template, stack.client)
        yield stack
        forget_wiring()


def call(deployed, method: str, path: str, body=None) -> tuple[int, dict | None]:
    event = json.loads((EVENTS / "api_create_schedule.json").read_text())
    name, _, action = path.removeprefix("/schedules").strip("/").partition("/")
    route = "/schedules" + ("/{name}" if name else "") + (f"/{action}" if action else "")
    event.update(
        routeKey=f"{method} {route}",
        rawPath=path,
        pathParameters={"name": name} if name else None,
        body=None if body is None else json.dumps(body),
    )
    event["requestContext"].update(routeKey=f"{method} {route}")
    event["requestContext"]["http"].update(method=method, path=path)
    answer = deployed.invoke("ApiFunction", event)
    deployed.last_headers = answer.get("headers") or {}
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
        forget_wiring()


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
        assert held["Target"]["Arn"] == deployed.template.resources["ScheduleTargetFunction"].attributes["Arn"]
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
            (
                {"params": {"stat": "4711", "startdate": "{{yesterday}}", "enddate": "{{yesterday}}"}},
                422,
                "INVALID_REQUEST",
                "params",
            ),
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

    def test_pause_resume_and_change_a_schedule_with_update_schedule(self, deployed):
        assert call(deployed, "POST", "/schedules", NIGHTLY)[0] == 201
        scheduler = deployed.client("scheduler")
        before = scheduler.get_schedule(Name="nightly-contact-summary", GroupName=group(deployed))

        status, paused = call(deployed, "PATCH", "/schedules/nightly-contact-summary", {"enabled": False})

        assert status == 200, paused
        assert (paused["enabled"], paused["next_run_at"], paused["last_runs"]) == (False, [], [])
        held = scheduler.get_schedule(Name="nightly-contact-summary", GroupName=group(deployed))
        assert held["State"] == "DISABLED"
        for kept in (
            "ScheduleExpression",
            "ScheduleExpressionTimezone",
            "Description",
            "FlexibleTimeWindow",
            "Target",
            "CreationDate",
        ):
            assert held[kept] == before[kept], kept

        status, changed = call(
            deployed,
            "PATCH",
            "/schedules/nightly-contact-summary",
            {"enabled": True, "cron": "0 9 ? * MON-FRI *", "timezone": "UTC"},
        )

        assert status == 200, changed
        assert (changed["enabled"], changed["cron"], changed["timezone"]) == (True, "0 9 ? * MON-FRI *", "UTC")
        times = [datetime.fromisoformat(moment) for moment in changed["next_run_at"]]
        assert len(times) == 5 and all(t.strftime("%H:%M %z") == "09:00 +0000" and t.isoweekday() <= 5 for t in times)
        held = scheduler.get_schedule(Name="nightly-contact-summary", GroupName=group(deployed))
        assert (held["State"], held["ScheduleExpression"], held["ScheduleExpressionTimezone"]) == (
            "ENABLED",
            "cron(0 9 ? * MON-FRI *)",
            "UTC",
        )
        assert json.loads(held["Target"]["Input"])["timezone"] == "UTC"  # the placeholders' zone follows
        assert call(deployed, "GET", "/schedules/nightly-contact-summary")[1]["next_run_at"] == changed["next_run_at"]

    @pytest.mark.parametrize(
        ("name", "body", "status", "field"),
        [
            ("nightly-contact-summary", {}, 422, "body"),
            ("nightly-contact-summary", {"name": "renamed"}, 422, "body.name"),
            ("nightly-contact-summary", {"cron": "0 9 * * ? *", "rate": "1 day"}, 422, "body"),
            ("nightly-contact-summary", {"enabled": None}, 422, "body.enabled"),
            ("nightly-contact-summary", {"cron": "0 9 * * *"}, 422, "cron"),
            ("nightly-contact-summary", {"params": {"stat": "4711", "enddate": "{{soon}}"}}, 422, "params.enddate"),
            ("no-such-schedule", {"enabled": False}, 404, None),
        ],
    )
    def test_a_refused_change_leaves_the_schedule_as_it_was(self, deployed, name, body, status, field):
        assert call(deployed, "POST", "/schedules", NIGHTLY)[0] == 201
        before = deployed.client("scheduler").get_schedule(Name="nightly-contact-summary", GroupName=group(deployed))

        answered, error = call(deployed, "PATCH", f"/schedules/{name}", body)

        assert answered == status, error
        if field is not None:
            assert field in [detail["field"] for detail in error["error"]["details"]], error
        after = deployed.client("scheduler").get_schedule(Name="nightly-contact-summary", GroupName=group(deployed))
        assert after == before | {"ResponseMetadata": after["ResponseMetadata"]}

    def test_an_update_keeps_what_the_api_does_not_manage(self, deployed):
        """A schedule made with the CLI in the group (its Input ours): its retry policy, flexible
        window and end date survive a change, since UpdateSchedule resets whatever it is not given."""
        scheduler = deployed.client("scheduler")
        created = call(deployed, "POST", "/schedules", NIGHTLY | {"name": "by-hand"})[1]
        target = scheduler.get_schedule(Name="by-hand", GroupName=group(deployed))["Target"]
        scheduler.delete_schedule(Name="by-hand", GroupName=group(deployed))
        end = (datetime.now(UTC) + timedelta(days=365)).replace(microsecond=0)
        scheduler.create_schedule(
            Name="by-hand",
            GroupName=group(deployed),
            ScheduleExpression=created["expression"],
            ScheduleExpressionTimezone=created["timezone"],
            FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
            EndDate=end,
            Target=target | {"RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}},
        )

        assert call(deployed, "PATCH", "/schedules/by-hand", {"description": "now with a description"})[0] == 200

        held = scheduler.get_schedule(Name="by-hand", GroupName=group(deployed))
        assert held["Description"] == "now with a description"
        assert held["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
        assert held["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
        assert held["EndDate"] == end

    @pytest.mark.parametrize("name", [".", "..", ".hidden", "a/b", "a%2Fb", "has space", "-dash"])
    def test_a_name_that_is_not_one_plain_url_segment_is_refused_naming_the_rule(self, deployed, name):
        status, error = call(deployed, "POST", "/schedules", NIGHTLY | {"name": name})

        assert (status, error["error"]["code"]) == (422, "INVALID_REQUEST"), error
        (detail,) = [detail for detail in error["error"]["details"] if detail["field"] == "body.name"]
        assert "the first a letter or a digit" in detail["message"] and "'.', '_' or '-'" in detail["message"]
        names = {s["Name"] for s in deployed.client("scheduler").list_schedules(GroupName=group(deployed))["Schedules"]}
        assert names == {EXAMPLE}

    @pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/run")])
    def test_a_path_that_names_no_possible_schedule_is_refused(self, deployed, method, suffix):
        status, error = call(deployed, method, f"/schedules/..{suffix}", {"enabled": False} if method == "PATCH" else None)

        assert (status, error["error"]["code"]) == (422, "INVALID_REQUEST"), error
        (detail,) = error["error"]["details"]
        assert detail["field"] == "path.name" and "the first a letter or a digit" in detail["message"]

    def test_the_templates_schedule_is_read_only_through_the_api(self, deployed):
        scheduler = deployed.client("scheduler")
        before = scheduler.get_schedule(Name=EXAMPLE, GroupName=group(deployed))

        refusals = [
            call(deployed, "DELETE", f"/schedules/{EXAMPLE}"),
            call(deployed, "PATCH", f"/schedules/{EXAMPLE}", {"enabled": True}),  # resume
            call(deployed, "PATCH", f"/schedules/{EXAMPLE}", {"description": "changed through the API"}),
        ]

        for status, error in refusals:
            assert (status, error["error"]["code"]) == (409, "SCHEDULE_DEFINED_IN_TEMPLATE"), error
            assert "defined in template.yaml" in error["error"]["message"]
            assert error["error"]["details"] == {"defined_in": "template.yaml"}
        after = scheduler.get_schedule(Name=EXAMPLE, GroupName=group(deployed))
        assert after == before | {"ResponseMetadata": after["ResponseMetadata"]}  # CloudFormation's, as it left it
        status, shown = call(deployed, "GET", f"/schedules/{EXAMPLE}")
        assert (status, shown["defined_in"], shown["enabled"]) == (200, "template.yaml", False)
        listed = {schedule["name"]: schedule["defined_in"] for schedule in call(deployed, "GET", "/schedules")[1]["schedules"]}
        assert listed == {EXAMPLE: "template.yaml"}

    def test_the_templates_schedule_can_be_run_now(self, deployed):
        status, job = call(deployed, "POST", f"/schedules/{EXAMPLE}/run")

        assert status == 202, job
        assert (job["operation"], job["schedule"]["name"]) == ("pinpointe.autoresponder_results", EXAMPLE)

    def test_a_schedule_made_through_the_api_is_not_read_only(self, deployed):
        status, created = call(deployed, "POST", "/schedules", NIGHTLY)
        assert (status, created["defined_in"]) == (201, None)

        status, error = call(deployed, "POST", "/schedules", NIGHTLY | {"name": "mine", "defined_in": "template.yaml"})
        assert status == 422 and "body.defined_in" in [detail["field"] for detail in error["error"]["details"]]

    def test_the_sample_events_change_and_run_the_sample_schedule(self, deployed):
        for sample in ("api_create_schedule.json", "api_update_schedule.json", "api_run_schedule.json"):
            answer = deployed.invoke("ApiFunction", json.loads((EVENTS / sample).read_text()))
            assert answer["statusCode"] in (200, 201, 202), (sample, answer)
        shown = call(deployed, "GET", "/schedules/nightly-contact-summary")[1]
        assert (shown["enabled"], shown["cron"], shown["description"]) == (
            False,
            "0 3 * * ? *",
            "paused while send 4711 is rebuilt",
        )
        assert [run["job_id"] for run in shown["last_runs"]] == [json.loads(answer["body"])["job_id"]]

    def test_run_now_submits_a_linked_job_and_records_the_run(self, deployed):
        assert call(deployed, "POST", "/schedules", NIGHTLY | {"enabled": False})[0] == 201

        status, job = call(deployed, "POST", "/schedules/nightly-contact-summary/run")

        assert status == 202, job
        assert deployed.last_headers["Location"] == f"/jobs/{job['job_id']}"
        assert job["status"] == "SUBMITTED" and job["schedule"]["name"] == "nightly-contact-summary"
        scheduled = datetime.fromisoformat(job["schedule"]["scheduled_time"])
        assert scheduled.microsecond == 0 and abs(datetime.now(UTC) - scheduled) < timedelta(seconds=30)
        executions = deployed.client("stepfunctions").list_executions(stateMachineArn=deployed.template.state_machines[0].arn)
        assert job["job_id"] in {e["name"] for e in executions["executions"]}
        shown = call(deployed, "GET", "/schedules/nightly-contact-summary")[1]
        assert [(run["job_id"], run["status"]) for run in shown["last_runs"]] == [(job["job_id"], "SUBMITTED")]
        assert shown["enabled"] is False  # running it now did not resume it

        status, missing = call(deployed, "POST", "/schedules/no-such-schedule/run")
        assert (status, missing["error"]["code"]) == (404, "NOT_FOUND")


def test_every_schedule_the_template_defines_is_marked_read_only():
    """What keeps the API from changing a schedule CloudFormation owns is the mark in its Input: a
    schedule added to template.yaml without it could be deleted through the API."""
    schedules = resolve_template().of_type("AWS::Scheduler::Schedule")

    assert schedules
    for schedule in schedules:
        assert json.loads(schedule.properties["Target"]["Input"]).get("defined_in") == "template.yaml", schedule.logical_id


# --- runs ---------------------------------------------------------------------------------------------


def test_each_run_submits_one_job_linked_to_its_schedule(deployed):
    assert call(deployed, "POST", "/schedules", NIGHTLY)[0] == 201
    # Runs scheduled before the schedule was created would be an earlier namesake's: these are ahead.
    first = (datetime.now(UTC) + timedelta(days=1)).replace(hour=2, minute=30, second=0, microsecond=0)
    second = first + timedelta(days=1)

    answers = [
        deployed.invoke("ScheduleTargetFunction", run_event(deployed, "nightly-contact-summary", moment))
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

    answer = deployed.invoke("ScheduleTargetFunction", event)

    table = deployed.functions["ScheduleTargetFunction"].environment["JOBS_TABLE"]
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


class _ClockThatSaysWhenItIsDone(SteppedClock):
    def __init__(self, start: datetime, until: datetime):
        super().__init__(start, until)
        self.done = threading.Event()

    def sleep_until(self, moment: datetime, stop: threading.Event) -> bool:
        if moment > self.until:
            self.done.set()
        return super().sleep_until(moment, stop)


def test_the_local_timer_follows_a_change_of_expression_and_a_pause(deployed):
    hourly = NIGHTLY | {"name": "hourly", "cron": "0 * * * ? *", "timezone": "UTC"}
    assert call(deployed, "POST", "/schedules", hourly)[0] == 201
    functions = {f.arn: f.name for f in deployed.template.functions}
    by_name = {f.name: f.logical_id for f in deployed.template.functions}
    fired: list[str] = []

    def fire(schedule: Schedule, moment: datetime) -> None:
        deployed.invoke(by_name[schedule.function_name], json.loads(schedule.payload(moment)))
        fired.append(moment.strftime("%H:%M"))
        if len(fired) == 1:  # after the 10:00 run, move it to half past
            assert call(deployed, "PATCH", "/schedules/hourly", {"cron": "30 * * * ? *"})[0] == 200
        else:  # after the 10:30 run, pause it
            assert call(deployed, "PATCH", "/schedules/hourly", {"enabled": False})[0] == 200

    ten = (datetime.now(UTC) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    clock = _ClockThatSaysWhenItIsDone(ten - timedelta(seconds=30), until=ten + timedelta(hours=3))
    timer = ScheduleTimer(
        [], fire, clock, source=scheduler_schedules(deployed.client("scheduler"), functions), refresh=timedelta(minutes=20)
    )
    timer.start()
    try:
        assert clock.done.wait(30), fired
    finally:
        timer.stop()

    # The change is seen at the next refresh (10:19:30 here), the pause too: nothing after 10:30.
    assert fired == ["10:00", "10:30"]
    schedule = call(deployed, "GET", "/schedules/hourly")[1]
    assert [run["scheduled_time"][11:16] for run in schedule["last_runs"]] == ["10:30", "10:00"]


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
