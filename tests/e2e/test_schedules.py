"""Recurring jobs on the local stack, over HTTP: a schedule made with POST /schedules, its runs
delivered as EventBridge Scheduler delivers them (an Invoke of the schedules function with the
schedule's own Input), each run one job that goes all the way to the vendor sandbox.

Most runs are delivered by the test rather than left to the stack's timer, so that little here
waits for a clock; the timer's part is tested on a clock the test controls in
tests/integration/test_schedules.py. One test does let the timer fire (with --profile test a
rate(1 minute) fires every 3 s) to see a pause, a resume and a change take effect in the stack.
"""

import json
import time
from collections.abc import Callable
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


def runs_of(api, name: str) -> list[dict]:
    answer = api.get(f"/schedules/{name}")
    assert answer.status_code == 200, answer.text
    return answer.json()["last_runs"]


def eventually(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)


def test_pause_resume_and_change_a_schedule_the_stack_fires(api):
    # Every minute of the stack's clock: 3 s with --profile test.
    ticking = SCHEDULE | {"name": "e2e-ticking", "cron": None, "rate": "1 minute", "enabled": True}
    ticking.pop("cron")
    assert api.post("/schedules", json=ticking).status_code == 201
    try:
        eventually(lambda: len(runs_of(api, "e2e-ticking")) >= 1)

        paused = api.patch("/schedules/e2e-ticking", json={"enabled": False})
        assert paused.status_code == 200, paused.text
        assert (paused.json()["enabled"], paused.json()["next_run_at"]) == (False, [])
        time.sleep(1)  # a run already under way when the timer saw the pause may still land
        settled = len(runs_of(api, "e2e-ticking"))
        time.sleep(7)  # over two intervals: a schedule still firing would have run again
        assert len(runs_of(api, "e2e-ticking")) == settled

        resumed = api.patch("/schedules/e2e-ticking", json={"enabled": True})
        assert resumed.status_code == 200 and resumed.json()["enabled"] is True
        eventually(lambda: len(runs_of(api, "e2e-ticking")) > settled)

        nightly = api.patch("/schedules/e2e-ticking", json={"cron": "30 2 * * ? *", "enabled": False})
        assert nightly.status_code == 200, nightly.text
        assert (nightly.json()["cron"], nightly.json()["rate"]) == ("30 2 * * ? *", None)
        hourly = api.patch("/schedules/e2e-ticking", json={"enabled": True, "cron": "15 * * * ? *", "timezone": "Asia/Kolkata"})
        assert hourly.status_code == 200, hourly.text
        times = [datetime.fromisoformat(moment) for moment in hourly.json()["next_run_at"]]
        # Kolkata is UTC+05:30: a quarter past each hour there, shown with its offset.
        assert len(times) == 5 and all(t.minute == 15 and t.utcoffset() == timedelta(hours=5, minutes=30) for t in times)
        assert times == sorted(times) and times[0] > datetime.now(UTC)
    finally:
        api.patch("/schedules/e2e-ticking", json={"enabled": False})
        time.sleep(1)  # a run under way when the timer saw the pause lands meanwhile
        for run in runs_of(api, "e2e-ticking"):  # its jobs done, so that no later test sees their vendor calls
            if run["job_id"]:
                wait_for(api, run["job_id"])
        assert api.delete("/schedules/e2e-ticking").status_code == 204


def test_run_now_submits_a_job_linked_to_its_schedule(api):
    assert api.post("/schedules", json=SCHEDULE | {"name": "e2e-run-now"}).status_code == 201  # disabled
    try:
        answer = api.post("/schedules/e2e-run-now/run")

        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert answer.headers["location"] == f"/jobs/{job['job_id']}"
        assert job["schedule"]["name"] == "e2e-run-now"
        job = wait_for(api, job["job_id"])
        assert job["status"] == "SUCCEEDED", job
        scheduled = datetime.fromisoformat(job["schedule"]["scheduled_time"])
        assert scheduled.microsecond == 0 and abs(datetime.now(UTC) - scheduled) < timedelta(seconds=30)
        runs = runs_of(api, "e2e-run-now")
        assert [(run["job_id"], run["status"]) for run in runs] == [(job["job_id"], "SUCCEEDED")]

        assert api.post("/schedules/e2e-missing/run").status_code == 404
        refused = api.patch("/schedules/e2e-run-now", json={"rate": "2 days", "cron": "0 1 * * ? *"})
        assert refused.status_code == 422, refused.text
    finally:
        assert api.delete("/schedules/e2e-run-now").status_code == 204
