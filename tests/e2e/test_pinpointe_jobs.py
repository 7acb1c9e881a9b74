"""Pinpointe async exports through the whole local stack: HTTP API -> DynamoDB -> Step Functions ->
steps -> vendor sandbox -> webhook -> S3, over real sockets."""

import hashlib
import json
import time

import httpx
import pytest
from standardwebhooks import Webhook

from tests.e2e.conftest import events, submit, wait_for

pytestmark = pytest.mark.e2e

OPERATIONS = {
    "pinpointe.newsletter_contact_data_summary": {"stat": "4711", "startdate": "2025-01-01", "enddate": "20250201"},
    "pinpointe.list_subscribers": {"list": ["12", 34], "status": "active", "customfields": ["all"], "include_membership": True},
    "pinpointe.segment_subscribers": {"segmentid": ["3"]},
    "pinpointe.tag_subscribers": {"tag": ["7"], "emailonly": True},
}


def history(aws, stack, job_id: str, timeout: float = 20) -> list[dict]:
    """The execution's history once it has ended (it outlives the job's final status by a few
    states: Notify, Outcome)."""
    sfn = aws("stepfunctions")
    execution_arn = stack["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{job_id}"
    deadline = time.monotonic() + timeout
    while sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"execution {job_id} still running"
        time.sleep(0.1)
    return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


def s3_object(aws, s3_uri: str) -> bytes:
    bucket, key = s3_uri.removeprefix("s3://").split("/", 1)
    return aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_operation_ends_with_a_verified_result_in_s3(api, sandbox, aws, stack, operation):
    accepted = submit(api, operation, OPERATIONS[operation])
    assert accepted["status"] == "SUBMITTED" and accepted["operation"] == operation

    job = wait_for(api, accepted["job_id"])

    assert job["status"] == "SUCCEEDED", job
    result = job["result"]
    stored = s3_object(aws, result["s3_uri"])
    assert len(stored) == result["size"] > 0
    assert hashlib.sha256(stored).hexdigest() == result["sha256"]
    assert json.loads(stored)["count"] >= 1
    assert httpx.get(result["download_url"]).content == stored
    assert job["progress"]["percent"] == 100
    assert {"submitted", "starting", "started", "webhook_received", "collecting", "succeeded"} <= set(events(job))
    # The webhook path: the parked task was resumed by the webhook, not by its fallback timeout.
    kinds = [event["type"] for event in history(aws, stack, job["job_id"])]
    assert "TaskSubmitted" in kinds and "TaskTimedOut" not in kinds
    assert kinds[-1] == "ExecutionSucceeded"


def test_the_vendor_receives_the_documented_request(api, sandbox):
    job = wait_for(api, submit(api, "pinpointe.list_subscribers", OPERATIONS["pinpointe.list_subscribers"])["job_id"])
    start = next(call for call in sandbox.calls() if call["requestmethod"] == "GetListSubscribersAsync")
    assert job["status"] == "SUCCEEDED"
    assert start["http_status"] == 200
    assert job["vendor_ref"]["jobid"] == start["jobid"]


def test_a_lost_webhook_is_covered_by_polling(api, sandbox, aws, stack):
    sandbox.configure(drop_webhook=True)
    job = wait_for(api, submit(api, "pinpointe.segment_subscribers", {"segmentid": ["9"]})["job_id"])

    assert job["status"] == "SUCCEEDED", job
    assert "webhook_received" not in events(job)
    kinds = [event["type"] for event in history(aws, stack, job["job_id"])]
    assert "TaskTimedOut" in kinds and kinds[-1] == "ExecutionSucceeded"


def test_a_job_the_vendor_fails_ends_failed_with_its_reason(api, sandbox, aws, stack):
    sandbox.configure(fail_jobs="segment 9 is being rebuilt")
    job = wait_for(api, submit(api, "pinpointe.segment_subscribers", {"segmentid": ["9"]})["job_id"])

    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "VENDOR_FAILED"
    assert job["result"] is None
    assert history(aws, stack, job["job_id"])[-1]["type"] == "ExecutionFailed"


def test_vendor_5xx_is_retried_until_it_recovers(api, sandbox):
    sandbox.configure(http_5xx=2)
    job = wait_for(api, submit(api, "pinpointe.tag_subscribers", {"tag": ["7"]})["job_id"])

    assert job["status"] == "SUCCEEDED", job
    statuses = [call["http_status"] for call in sandbox.calls()]
    assert statuses[:3] == [503, 503, 200]


def test_bad_vendor_credentials_fail_the_job_readably_without_leaking_them(api, sandbox, aws, stack):
    sandbox.configure(expired_token=True)
    job = wait_for(api, submit(api, "pinpointe.tag_subscribers", {"tag": ["7"]})["job_id"])

    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "VENDOR_REJECTED"
    assert "credentials" in job["error"]["message"].lower()
    secret = json.loads(aws("secretsmanager").get_secret_value(SecretId="jobrelay/pinpointe/default")["SecretString"])
    assert secret["usertoken"] not in json.dumps(job)
    assert secret["usertoken"] not in stack["log"].read_text()


def test_a_duplicate_webhook_changes_nothing(api, sandbox, aws):
    sandbox.configure(duplicate_webhook=True, webhook_timeout_seconds=30)
    job = wait_for(api, submit(api, "pinpointe.tag_subscribers", {"tagname": "vip"})["job_id"])

    assert job["status"] == "SUCCEEDED"
    assert events(job).count("succeeded") == 1
    assert len([w for w in sandbox.webhooks(at_least=2) if w.get("status_code") == 200]) == 2


def test_deadline_passing_times_the_job_out(api, sandbox):
    sandbox.configure(job_seconds=120, drop_webhook=True)
    job = wait_for(api, submit(api, "pinpointe.segment_subscribers", {"segmentid": ["1"]}, timeout_seconds=3)["job_id"])

    assert job["status"] == "TIMED_OUT"
    assert job["error"]["code"] == "DEADLINE_EXCEEDED"


def test_cancel_while_running_stops_the_execution(api, sandbox, aws, stack):
    sandbox.configure(job_seconds=120)
    job_id = submit(api, "pinpointe.list_subscribers", {"list": ["1"]})["job_id"]
    wait_for(api, job_id, statuses={"RUNNING"})

    cancelled = api.post(f"/jobs/{job_id}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    assert api.post(f"/jobs/{job_id}/cancel").json()["status"] == "CANCELLED"  # idempotent
    execution_arn = stack["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{job_id}"
    assert aws("stepfunctions").describe_execution(executionArn=execution_arn)["status"] == "ABORTED"
    assert {"cancelled", "execution_stop"} <= set(events(api.get(f"/jobs/{job_id}").json()))


def test_cancelling_a_finished_job_is_a_conflict(api, sandbox):
    job = wait_for(api, submit(api, "pinpointe.segment_subscribers", {"segmentid": ["2"]})["job_id"])
    answer = api.post(f"/jobs/{job['job_id']}/cancel")
    assert answer.status_code == 409
    assert answer.json()["error"]["details"]["status"] == "SUCCEEDED"


def test_resubmitting_with_the_same_idempotency_key_returns_the_same_job(api, sandbox):
    body = {"operation": "pinpointe.segment_subscribers", "params": {"segmentid": ["5"]}}
    first = api.post("/jobs", json=body, headers={"Idempotency-Key": "nightly-2026-11-22"})
    again = api.post("/jobs", json=body, headers={"Idempotency-Key": "nightly-2026-11-22"})
    other = api.post("/jobs", json={**body, "params": {"segmentid": ["6"]}}, headers={"Idempotency-Key": "nightly-2026-11-22"})

    assert first.status_code == again.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"]
    assert other.status_code == 409 and other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert api.post("/jobs", json=body, headers={"Idempotency-Key": "another"}).json()["job_id"] != first.json()["job_id"]


def test_a_forged_webhook_token_gets_404_and_changes_nothing(api, sandbox, aws, stack):
    sandbox.configure(job_seconds=120, drop_webhook=True)
    job_id = submit(api, "pinpointe.list_subscribers", {"list": ["1"]})["job_id"]
    wait_for(api, job_id, statuses={"RUNNING"})

    forged = api.post(f"/webhooks/pinpointe/{job_id}/{'A' * 43}", json={"jobid": "x", "status": "complete"})
    unknown = api.post(f"/webhooks/pinpointe/job_doesnotexist/{'A' * 43}", json={})

    assert forged.status_code == unknown.status_code == 404
    assert forged.json() == unknown.json()
    after = api.get(f"/jobs/{job_id}").json()
    assert after["status"] == "RUNNING" and "webhook_received" not in events(after)
    stored = aws("s3").list_objects_v2(Bucket=stack["bucket"], Prefix=f"webhooks/{job_id}/")
    assert stored.get("KeyCount", 0) == 0  # the forged body was not even kept
    api.post(f"/jobs/{job_id}/cancel")


def test_callback_is_signed_per_standard_webhooks(api, sandbox, aws, callback_receiver):
    job = wait_for(
        api,
        submit(api, "pinpointe.segment_subscribers", {"segmentid": ["4"]}, callback_url=callback_receiver.url)["job_id"],
    )
    # Notify runs after the terminal status: give it a moment.
    wait_until = time.monotonic() + 10
    while not callback_receiver.received and time.monotonic() < wait_until:
        time.sleep(0.1)

    assert len(callback_receiver.received) == 1
    delivery = callback_receiver.received[0]
    secret = json.loads(aws("secretsmanager").get_secret_value(SecretId="jobrelay/callbacks/default")["SecretString"])
    payload = Webhook(secret["signing_secret"]).verify(delivery["body"], delivery["headers"])
    assert payload["job_id"] == job["job_id"] and payload["status"] == "SUCCEEDED"
    assert "callback_delivered" in events(api.get(f"/jobs/{job['job_id']}").json())


def test_a_callback_that_keeps_failing_is_recorded_and_never_fails_the_job(api, sandbox, callback_receiver):
    callback_receiver.answers = [500] * 10
    job_id = submit(api, "pinpointe.segment_subscribers", {"segmentid": ["4"]}, callback_url=callback_receiver.url)["job_id"]
    wait_for(api, job_id)
    deadline = time.monotonic() + 20
    while "callback_failed" not in events(api.get(f"/jobs/{job_id}").json()):
        assert time.monotonic() < deadline, "the failing callback was never recorded"
        time.sleep(0.2)

    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "SUCCEEDED"
    assert len(callback_receiver.received) >= 2  # retried


def test_the_webhook_token_never_reaches_a_log_line_or_the_api(api, sandbox, stack):
    job = wait_for(api, submit(api, "pinpointe.segment_subscribers", {"segmentid": ["8"]})["job_id"])
    (vendor_job,) = sandbox.http.get("/_sandbox/jobs").json()
    token = vendor_job["details"]["notify"]["value"].rsplit("/", 1)[1]

    assert job["status"] == "SUCCEEDED" and len(token) >= 43
    assert token not in stack["log"].read_text()
    assert token not in json.dumps(api.get(f"/jobs/{job['job_id']}").json())
    assert token not in json.dumps(api.get("/jobs").json())


def test_a_job_that_ends_is_announced_on_the_event_bus(api, sandbox, aws):
    events_client, sqs = aws("events"), aws("sqs")
    (bus,) = [b["Name"] for b in events_client.list_event_buses()["EventBuses"] if b["Name"].endswith("-jobs")]
    queue = sqs.create_queue(QueueName="job-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.put_rule(Name="jobs-ended", EventBusName=bus, EventPattern=json.dumps({"source": ["jobrelay"]}))
    events_client.put_targets(Rule="jobs-ended", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])

    succeeded = wait_for(api, submit(api, "pinpointe.segment_subscribers", {"segmentid": ["1"]})["job_id"])
    sandbox.configure(fail_jobs=True)
    failed = wait_for(api, submit(api, "pinpointe.segment_subscribers", {"segmentid": ["2"]})["job_id"])

    received = {}
    deadline = time.monotonic() + 10
    while len(received) < 2 and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            event = json.loads(message["Body"])
            received[event["detail"]["job_id"]] = event
    assert received[succeeded["job_id"]]["detail-type"] == "Job Succeeded"
    assert received[succeeded["job_id"]]["detail"]["result"]["sha256"] == succeeded["result"]["sha256"]
    assert received[failed["job_id"]]["detail-type"] == "Job Failed"
    assert received[failed["job_id"]]["detail"]["error"]["code"] == "VENDOR_FAILED"
