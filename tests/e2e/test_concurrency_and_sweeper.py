"""Per-account concurrency limits and the sweeper through the whole local stack: queued jobs park
and are woken in submission order as slots free."""

import json
import time

import pytest

from tests.e2e.conftest import TERMINAL, events, submit, upload, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def limited_account(stack, aws) -> str:
    """A second Which50 account on the same sandbox whose secret allows two jobs at once."""
    secrets = aws("secretsmanager")
    default = json.loads(secrets.get_secret_value(SecretId="jobrelay/which50/default")["SecretString"])
    secrets.create_secret(Name="jobrelay/which50/limited", SecretString=json.dumps({**default, "max_concurrent_jobs": 2}))
    return "limited"


def function_named(aws, logical_id: str) -> str:
    names = [f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]]
    (name,) = [n for n in names if logical_id in n]
    return name


def test_ten_jobs_against_a_limit_of_two_never_run_more_than_two_at_once_and_all_finish(api, which50, limited_account):
    which50.post("/_sandbox/config", json={"process_seconds": 1.0}).raise_for_status()
    source = upload(api, [json.dumps({"Email": f"q{n}@example.org"}) for n in range(20)])
    params = {"contact_list_id": 12, "source": source, "format": "jsonl", "field_names": ["Email"]}
    job_ids = [submit(api, "which50.contact_import", params, account=limited_account)["job_id"] for _ in range(10)]

    notes: set[str] = set()
    deadline = time.monotonic() + 150
    while True:
        jobs = [api.get(f"/jobs/{job_id}").json() for job_id in job_ids]
        notes |= {j["progress"]["note"] for j in jobs if j["progress"] and (j["progress"]["note"] or "").startswith("queued")}
        if all(j["status"] in TERMINAL for j in jobs):
            break
        assert time.monotonic() < deadline, [j["status"] for j in jobs]
        time.sleep(0.2)

    assert [j["status"] for j in jobs] == ["SUCCEEDED"] * 10
    state = which50.get("/_sandbox/imports").json()
    assert len(state["jobs"]) == 10 and all(job["run_calls"] == 1 for job in state["jobs"])
    assert state["max_concurrent_running"] <= 2
    # The queue was real: jobs waited, and said behind how many. (How many waited depends on how
    # fast the first ones finish, so only that some did is certain.)
    assert any("queued" in events(j) for j in jobs) and any("queued behind" in note for note in notes)


@pytest.fixture(scope="module")
def one_at_a_time(stack, aws) -> str:
    """A Pinpointe account on the same sandbox whose secret allows one job at a time."""
    secrets = aws("secretsmanager")
    default = json.loads(secrets.get_secret_value(SecretId="jobrelay/pinpointe/default")["SecretString"])
    secrets.create_secret(Name="jobrelay/pinpointe/fifo", SecretString=json.dumps({**default, "max_concurrent_jobs": 1}))
    return "fifo"


def at(job: dict, event: str) -> str:
    (moment,) = [entry["at"] for entry in job["timeline"] if entry["event"] == event]
    return moment


def test_parked_jobs_start_in_submission_order_as_slots_free_and_a_cancelled_one_is_passed_over(
    api, sandbox, aws, stack, one_at_a_time
):
    sandbox.configure(job_seconds=1)
    params = {"list": ["1"]}
    holder = submit(api, "pinpointe.list_subscribers", params, account=one_at_a_time)["job_id"]
    wait_for(api, holder, statuses={"RUNNING"})
    first, cancelled, last = (
        submit(api, "pinpointe.list_subscribers", params, account=one_at_a_time)["job_id"] for _ in range(3)
    )
    for job_id in (first, cancelled, last):
        wait_for(api, job_id, statuses={"SUBMITTED"})
    executions = stack["state_machine_arn"].replace(":stateMachine:", ":execution:")
    sfn = aws("stepfunctions")

    def parked(job_id: str) -> bool:
        history = sfn.get_execution_history(executionArn=f"{executions}:{job_id}", maxResults=1000)["events"]
        return any(e.get("stateEnteredEventDetails", {}).get("name") == "WaitForSlot" for e in history)

    deadline = time.monotonic() + 20
    while not all(parked(job_id) for job_id in (first, cancelled, last)):
        assert time.monotonic() < deadline, "the queued jobs never parked"
        time.sleep(0.1)
    assert api.post(f"/jobs/{cancelled}/cancel").status_code == 200

    jobs = {job_id: wait_for(api, job_id, timeout=60) for job_id in (holder, first, cancelled, last)}

    assert [jobs[j]["status"] for j in (holder, first, cancelled, last)] == ["SUCCEEDED", "SUCCEEDED", "CANCELLED", "SUCCEEDED"]
    assert "starting" not in events(jobs[cancelled])  # it never reached the vendor
    # One at a time, in submission order: each started after the one before it had ended.
    assert at(jobs[holder], "succeeded") <= at(jobs[first], "starting")
    assert at(jobs[first], "succeeded") <= at(jobs[last], "starting")
    assert sfn.describe_execution(executionArn=f"{executions}:{cancelled}")["status"] == "ABORTED"
    # Woken, not polling: each queued job entered WaitForSlot once, however long it waited.
    for job_id in (first, last):
        history = sfn.get_execution_history(executionArn=f"{executions}:{job_id}", maxResults=1000)["events"]
        names = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
        assert names.count("WaitForSlot") == 1, names


def test_the_sweeper_settles_a_job_whose_execution_was_stopped_behind_its_back(api, sandbox, aws, stack):
    sandbox.configure(job_seconds=600)
    job_id = submit(api, "pinpointe.list_subscribers", {"list": ["1"]})["job_id"]
    wait_for(api, job_id, statuses={"RUNNING"})
    execution_arn = stack["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{job_id}"
    aws("stepfunctions").stop_execution(executionArn=execution_arn, cause="stopped in the console")

    # The stack's own schedule also runs the sweeper (every 15 s at the test profile's time scale):
    # whichever run comes first settles the job, exactly once.
    answer = aws("lambda").invoke(FunctionName=function_named(aws, "SweeperFunction"), Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()

    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "FAILED" and job["error"]["code"] == "EXECUTION_ENDED"
    assert "ABORTED" in job["error"]["message"]
    (settled,) = [e["detail"] for e in job["timeline"] if e["event"] == "failed"]
    assert settled["by"] == "sweeper" and settled["code"] == "EXECUTION_ENDED"
