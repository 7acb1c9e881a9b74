"""Recurring jobs on the local stack, over HTTP: a schedule made with POST /schedules, its runs
delivered as EventBridge Scheduler delivers them (an Invoke of the schedules function with the
schedule's own Input), each run one job that goes all the way to the vendor sandbox.

The runs are delivered by the test rather than left to the stack's timer, so nothing here waits
for a clock; the timer's part (firing what Scheduler holds, not the disabled) is tested on a clock
the test controls in tests/integration/test_schedules.py.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e

SCHEDULE = {
    "name": "e2e-nightly-summary",
    "cron": "30 2 * * ? *",
    "timezone": "Europe/Dublin",
    "operation": "pinpointe.newsletter_contact_data_summary",
    "params": {"stat": "4711", "startdate": "{{yesterday}}", "enddate": "{{today}}"},
    "enabled": False,  # the stack's own timer leaves it alone: the test delivers its runs
}


def deliver(aws, stack, name: str, moment: datetime) -> dict:
    """One delivery of the run at `moment`, as Scheduler makes it: the target's Input, its context filled in."""
    group = f"{stack_name(stack)}-schedules"
    target = aws("scheduler").get_schedule(Name=name, GroupName=group)["Target"]
    payload = target["Input"].replace("<aws.scheduler.scheduled-time>", moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    answer = aws("lambda").invoke(FunctionName=target["Arn"], Payload=payload.encode())
    assert "FunctionError" not in answer, answer["Payload"].read()
    return json.loads(answer["Payload"].read())


def stack_name(stack) -> str:
    return stack["table"].rsplit("-JobsTable", 1)[0]


def test_a_schedule_submits_one_job_per_run_and_shows_its_runs(api, aws, stack, sandbox):
    created = api.post("/schedules", json=SCHEDULE)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/schedules/e2e-nightly-summary"
    try:
        names = {schedule["name"]: schedule for schedule in api.get("/schedules").json()["schedules"]}
        assert names["nightly-autoresponder-results"]["enabled"] is False  # the template's example
        assert names["e2e-nightly-summary"]["params"] == SCHEDULE["params"]

        # Dublin is UTC+0 in winter, UTC+1 in summer: take the next 02:30 UTC, whichever it is.
        first = (datetime.now(UTC) + timedelta(days=1)).replace(hour=2, minute=30, second=0, microsecond=0)
        second = first + timedelta(days=1)
        runs = [deliver(aws, stack, "e2e-nightly-summary", moment) for moment in (first, first, second)]

        assert runs[0]["job_id"] == runs[1]["job_id"] != runs[2]["job_id"]  # a redelivery makes no second job
        jobs = [wait_for(api, run["job_id"]) for run in (runs[0], runs[2])]
        for job, moment in zip(jobs, (first, second), strict=True):
            assert job["status"] == "SUCCEEDED", job
            assert job["schedule"] == {"name": "e2e-nightly-summary", "scheduled_time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
            assert job["result"]["size"] > 0
        starts = [call for call in sandbox.calls() if call.get("requestmethod") == "GetNewsletterContactDataSummaryAsync"]
        assert len(starts) == 2

        shown = api.get("/schedules/e2e-nightly-summary").json()
        assert [(run["job_id"], run["status"]) for run in shown["last_runs"]] == [
            (jobs[1]["job_id"], "SUCCEEDED"),
            (jobs[0]["job_id"], "SUCCEEDED"),
        ]
        assert api.get("/jobs", params={"limit": 5}).json()["jobs"][0]["schedule"]["name"] == "e2e-nightly-summary"
    finally:
        assert api.delete("/schedules/e2e-nightly-summary").status_code == 204
    missing = api.get("/schedules/e2e-nightly-summary")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "NOT_FOUND")


def test_a_schedule_that_could_never_run_is_refused_before_it_exists(api):
    for changes, field in (
        ({"cron": "30 2 * * *"}, "cron"),
        ({"timezone": "Dublin"}, "timezone"),
        ({"params": {"stat": "4711", "startdate": "{{the_day_before}}"}}, "params.startdate"),
    ):
        answer = api.post("/schedules", json=SCHEDULE | changes | {"name": "e2e-refused"})
        assert answer.status_code == 422, answer.text
        assert field in [detail["field"] for detail in answer.json()["error"]["details"]]
    assert api.get("/schedules/e2e-refused").status_code == 404

    assert api.post("/schedules", json=SCHEDULE | {"name": "e2e-twice"}).status_code == 201
    try:
        again = api.post("/schedules", json=SCHEDULE | {"name": "e2e-twice", "cron": "0 3 * * ? *"})
        assert (again.status_code, again.json()["error"]["code"]) == (409, "SCHEDULE_EXISTS")
    finally:
        api.delete("/schedules/e2e-twice")
