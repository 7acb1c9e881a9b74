"""The three Lambda handlers, each loaded from its CodeUri with its environment from template.yaml,
against the template's resources created in moto, and the Pinpointe sandbox over real sockets.

No Step Functions execution runs here (the e2e suite has those): the test plays the state machine,
calling the steps function with the payloads statemachines/job.asl.json sends.
"""

import base64
import copy
import hashlib
import importlib.util
import json
import time
from pathlib import Path

import boto3
import httpx
import pytest

from devstack.resources import create_resources
from devstack.sandbox.pinpointe import PinpointeSandbox
from devstack.template import resolve_template
from tests.integration.aws_env import REGION, forget_wiring, mocked_aws

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
PUBLIC_API_URL = "http://127.0.0.1:9"  # nothing listens: the test delivers the webhook itself


class Context:
    function_name = "test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class Deployed:
    """The template's resources in moto, and a way to invoke each function as Lambda would."""

    def __init__(self, monkeypatch):
        self.template = resolve_template(parameter_overrides={"PublicApiUrl": PUBLIC_API_URL})
        self.functions = {f.logical_id: f for f in self.template.functions}
        self._monkeypatch = monkeypatch
        self._modules = {}

    def client(self, service: str):
        return boto3.client(service, region_name=REGION)

    def invoke(self, logical_id: str, event: dict) -> dict:
        function = self.functions[logical_id]
        for name, value in function.environment.items():
            self._monkeypatch.setenv(name, str(value))
        forget_wiring()  # each function builds its own adapters from its own environment
        return self._module(function).handler(copy.deepcopy(event), Context())

    def _module(self, function):
        if function.logical_id not in self._modules:
            spec = importlib.util.spec_from_file_location(f"handler_{function.logical_id}", function.handler_file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self._modules[function.logical_id] = module
        return self._modules[function.logical_id]


@pytest.fixture
def sandbox():
    with PinpointeSandbox(job_seconds=0.2, records=25) as box:
        yield box


@pytest.fixture
def deployed(monkeypatch, sandbox):
    with mocked_aws(monkeypatch):
        stack = Deployed(monkeypatch)
        create_resources(stack.template, stack.client)
        prefix = stack.template.parameters["SecretsPrefix"]
        secrets = stack.client("secretsmanager")
        secrets.create_secret(Name=f"{prefix}pinpointe/default", SecretString=json.dumps(sandbox.account_secret()))
        secrets.create_secret(
            Name=f"{prefix}callbacks/default",
            SecretString=json.dumps({"signing_secret": "whsec_" + base64.b64encode(b"k" * 32).decode()}),
        )
        yield stack
        forget_wiring()


def http_event(name: str, **changes) -> dict:
    event = json.loads((EVENTS / name).read_text())
    event.update(changes)
    return event


def api(deployed, method: str, path: str, body=None, headers=None, query=None) -> tuple[int, dict]:
    route = {"GET /jobs": "/jobs", "POST /jobs": "/jobs", "GET /operations": "/operations"}.get(f"{method} {path}")
    parts = path.strip("/").split("/")
    path_parameters = None
    if route is None:  # /jobs/{job_id} and /jobs/{job_id}/cancel
        path_parameters = {"job_id": parts[1]}
        route = "/jobs/{job_id}" + ("/cancel" if len(parts) == 3 else "")
    event = http_event(
        "api_list_operations.json",
        routeKey=f"{method} {route}",
        rawPath=path,
        rawQueryString="&".join(f"{k}={v}" for k, v in (query or {}).items()),
        queryStringParameters=query,
        pathParameters=path_parameters,
        body=body if isinstance(body, str) or body is None else json.dumps(body),
    )
    event["headers"] = {**event["headers"], **(headers or {})}
    event["requestContext"]["http"].update(method=method, path=path)
    event["requestContext"]["routeKey"] = f"{method} {route}"
    answer = deployed.invoke("ApiFunction", event)
    return answer["statusCode"], json.loads(answer["body"])


def step(deployed, payload: dict) -> dict | None:
    return deployed.invoke("StepsFunction", payload)


# --- the API function ------------------------------------------------------------------------------


def test_submit_stores_the_job_and_starts_its_execution(deployed):
    status, job = api(deployed, "POST", "/jobs", {"operation": "pinpointe.segment_subscribers", "params": {"segmentid": [3]}})

    assert status == 202 and job["status"] == "SUBMITTED"
    executions = deployed.client("stepfunctions").list_executions(stateMachineArn=deployed.template.state_machines[0].arn)[
        "executions"
    ]
    assert [e["name"] for e in executions] == [job["job_id"]]
    item = deployed.client("dynamodb").get_item(
        TableName=deployed.functions["ApiFunction"].environment["JOBS_TABLE"],
        Key={"pk": {"S": f"JOB#{job['job_id']}"}, "sk": {"S": "JOB"}},
    )["Item"]
    assert item["status"]["S"] == "SUBMITTED" and item["params"]["M"]["segmentid"]["L"] == [{"S": "3"}]


def test_the_sample_events_get_the_answers_they_document(deployed):
    assert deployed.invoke("ApiFunction", http_event("api_list_operations.json"))["statusCode"] == 200
    assert deployed.invoke("ApiFunction", http_event("api_create_upload.json"))["statusCode"] == 201
    # The sample names a file that is not in this bucket: refused at once, naming the field.
    refused = deployed.invoke("ApiFunction", http_event("api_submit_import.json"))
    assert refused["statusCode"] == 422
    assert [d["field"] for d in json.loads(refused["body"])["error"]["details"]] == ["params.source"]
    invalid = deployed.invoke("ApiFunction", http_event("api_submit_job_invalid.json"))
    assert invalid["statusCode"] == 422
    fields = {d["field"] for d in json.loads(invalid["body"])["error"]["details"]}
    assert {"params.list", "params.startdate"} <= fields
    assert deployed.invoke("ApiFunction", http_event("api_get_job.json"))["statusCode"] == 404


@pytest.mark.parametrize(
    ("body", "base64_encoded", "status", "code"),
    [
        ("{not json", False, 400, "INVALID_JSON"),
        (base64.b64encode(b"\xff\xfe\x00garbage").decode(), True, 400, "INVALID_JSON"),
        ("x" * (256 * 1024 + 1), False, 413, "PAYLOAD_TOO_LARGE"),
        (json.dumps({"operation": "pinpointe.everything"}), False, 422, "INVALID_REQUEST"),
        (
            json.dumps(
                {"operation": "pinpointe.list_subscribers", "params": {"list": ["1"]}, "callback_url": "http://example.org"}
            ),
            False,
            422,
            "INVALID_REQUEST",
        ),
    ],
)
def test_bad_submissions_get_a_clear_4xx(deployed, body, base64_encoded, status, code):
    answer = deployed.invoke("ApiFunction", http_event("api_submit_job.json", body=body, isBase64Encoded=base64_encoded))
    assert answer["statusCode"] == status
    assert json.loads(answer["body"])["error"]["code"] == code


def test_idempotency_key_dedupes_submissions(deployed):
    body = {"operation": "pinpointe.segment_subscribers", "params": {"segmentid": ["1"]}}
    _, first = api(deployed, "POST", "/jobs", body, headers={"idempotency-key": "k-1"})
    _, again = api(deployed, "POST", "/jobs", body, headers={"idempotency-key": "k-1"})
    status, conflict = api(
        deployed, "POST", "/jobs", {**body, "params": {"segmentid": ["2"]}}, headers={"idempotency-key": "k-1"}
    )

    assert first["job_id"] == again["job_id"]
    assert status == 409 and conflict["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    _, listed = api(deployed, "GET", "/jobs")
    assert [job["job_id"] for job in listed["jobs"]] == [first["job_id"]]


def test_listing_filters_and_pages(deployed):
    ids = [
        api(deployed, "POST", "/jobs", {"operation": "pinpointe.segment_subscribers", "params": {"segmentid": [n]}})[1]["job_id"]
        for n in range(3)
    ]
    _, first = api(deployed, "GET", "/jobs", query={"status": "SUBMITTED", "limit": "2"})
    _, second = api(deployed, "GET", "/jobs", query={"status": "SUBMITTED", "limit": "2", "next": first["next"]})
    assert [j["job_id"] for j in first["jobs"] + second["jobs"]] == list(reversed(ids))
    assert second["next"] is None
    assert api(deployed, "GET", "/jobs", query={"status": "NOPE"})[0] == 422


# --- input read generously, refused precisely ------------------------------------------------------

SUBMISSION = {"operation": "pinpointe.segment_subscribers", "params": {"segmentid": ["3"]}}


def raw_request(deployed, method: str, path: str, *, route_key: str = "$default", body=None, headers=None, base64_encoded=False):
    """An event as API Gateway sends it for `route_key` ($default: no route of the template matched)."""
    event = http_event(
        "api_list_operations.json",
        routeKey=route_key,
        rawPath=path,
        rawQueryString="",
        queryStringParameters=None,
        body=body,
        isBase64Encoded=base64_encoded,
    )
    merged = {**event["headers"], **(headers or {})}
    event["headers"] = {name: value for name, value in merged.items() if value is not None}  # None: no such header
    event["requestContext"]["http"].update(method=method, path=path)
    event["requestContext"]["routeKey"] = route_key
    return deployed.invoke("ApiFunction", event)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/octet-stream; charset=utf-8", None],
)
def test_a_json_body_is_read_whatever_its_content_type_says(deployed, content_type):
    answer = raw_request(
        deployed, "POST", "/jobs", route_key="POST /jobs", body=json.dumps(SUBMISSION), headers={"content-type": content_type}
    )

    assert answer["statusCode"] == 202, answer["body"]


@pytest.mark.parametrize(
    ("content_type", "body", "base64_encoded", "status", "code"),
    [
        ("text/plain", "operation=pinpointe.segment_subscribers", False, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/x-www-form-urlencoded", "operation=x&params=y", False, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("multipart/form-data", "--x\r\n\r\n", False, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("image/png", base64.b64encode(b"\x89PNG\r\n\xff").decode(), True, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/json", "{not json", False, 400, "INVALID_JSON"),
        ("application/vnd.api+json", "[1,", False, 400, "INVALID_JSON"),
    ],
)
def test_a_body_that_is_not_json_says_what_to_send(deployed, content_type, body, base64_encoded, status, code):
    answer = raw_request(
        deployed,
        "POST",
        "/jobs",
        route_key="POST /jobs",
        body=body,
        headers={"content-type": content_type},
        base64_encoded=base64_encoded,
    )

    assert answer["statusCode"] == status
    error = json.loads(answer["body"])["error"]
    assert error["code"] == code
    if status == 415:
        assert "application/json" in error["message"]


def test_cancel_ignores_a_body_it_does_not_take(deployed):
    _, job = api(deployed, "POST", "/jobs", SUBMISSION)
    status, _ = api(deployed, "POST", f"/jobs/{job['job_id']}/cancel", body="whatever", headers={"content-type": "text/plain"})
    assert status == 200


def test_filters_read_any_casing_and_unknown_query_parameters_are_refused(deployed):
    _, job = api(deployed, "POST", "/jobs", SUBMISSION)

    for query in ({"status": "submitted"}, {"status": "Submitted"}, {"operation": "PINPOINTE.Segment_Subscribers"}):
        status, page = api(deployed, "GET", "/jobs", query=query)
        assert (status, [j["job_id"] for j in page["jobs"]]) == (200, [job["job_id"]]), query

    status, refused = api(deployed, "GET", "/jobs", query={"status": "RUNNING", "stauts": "x", "order": "asc"})
    assert status == 422 and refused["error"]["code"] == "INVALID_REQUEST"
    assert {d["field"] for d in refused["error"]["details"]} == {"query.stauts", "query.order"}
    assert "account, limit, next, operation, status" in refused["error"]["details"][0]["message"]
    status, refused = api(deployed, "GET", "/operations", query={"verbose": "1"})
    assert status == 422 and "takes no query parameters" in refused["error"]["details"][0]["message"]
    assert api(deployed, "GET", "/jobs", query={"operation": "nope"})[0] == 422
    assert api(deployed, "GET", "/jobs", query={"status": "nope"})[0] == 422


def test_listing_filters_on_account(deployed):
    ids = {}
    for account in ("default", "acme"):
        ids[account] = api(deployed, "POST", "/jobs", {**SUBMISSION, "account": account})[1]["job_id"]

    _, acme = api(deployed, "GET", "/jobs", query={"account": "acme"})
    _, nobody = api(deployed, "GET", "/jobs", query={"account": "nobody"})
    _, everyone = api(deployed, "GET", "/jobs")

    assert [j["job_id"] for j in acme["jobs"]] == [ids["acme"]]
    assert nobody["jobs"] == []
    assert {j["job_id"] for j in everyone["jobs"]} == set(ids.values())


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        base64.urlsafe_b64encode(b'{"c": {"pk": "x"}, "f": [null, null]}').decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
    ],
)
def test_a_bad_next_token_is_a_400(deployed, token):
    status, answer = api(deployed, "GET", "/jobs", query={"next": token})

    assert status == 400 and answer["error"]["code"] == "INVALID_NEXT_TOKEN"


def test_a_next_token_belongs_to_its_filters(deployed):
    for n in range(2):
        api(deployed, "POST", "/jobs", {**SUBMISSION, "params": {"segmentid": [n]}})
    _, first = api(deployed, "GET", "/jobs", query={"limit": "1"})

    assert api(deployed, "GET", "/jobs", query={"limit": "1", "next": first["next"]})[0] == 200
    status, answer = api(deployed, "GET", "/jobs", query={"limit": "1", "next": first["next"], "status": "submitted"})
    assert status == 400 and "different query" in answer["error"]["message"]


def import_submission(source: str) -> dict:
    return {"operation": "mypreferences.bulk_import", "params": {"source": source, "format": "jsonl", "name": "nightly"}}


def test_an_import_s_records_file_is_checked_when_it_is_submitted(deployed):
    bucket = deployed.functions["ApiFunction"].environment["RESULTS_BUCKET"]
    s3 = deployed.client("s3")
    s3.put_object(Bucket=bucket, Key="uploads/2026/11/22/abc/ok.jsonl", Body=b'{"CustomerName": {"FirstName": "Ada"}}\n')
    s3.put_object(Bucket=bucket, Key="incoming/empty.jsonl", Body=b"")
    s3.put_object(Bucket=bucket, Key="results/job_x/result.json", Body=b"{}")

    refusals = {
        source: api(deployed, "POST", "/jobs", import_submission(source))
        for source in (
            f"s3://{bucket}/uploads/2026/11/22/abc/missing.jsonl",
            f"s3://{bucket}/incoming/empty.jsonl",
            f"s3://{bucket}/results/job_x/result.json",
            "s3://someone-elses-bucket/uploads/ok.jsonl",
            f"s3://{bucket}/uploads/../results/job_x/result.json",
        )
    }
    for source, (status, answer) in refusals.items():
        assert status == 422, source
        assert [d["field"] for d in answer["error"]["details"]] == ["params.source"], source
    assert (
        "no records file" in refusals[f"s3://{bucket}/uploads/2026/11/22/abc/missing.jsonl"][1]["error"]["details"][0]["message"]
    )
    assert "empty" in refusals[f"s3://{bucket}/incoming/empty.jsonl"][1]["error"]["message"]

    status, job = api(deployed, "POST", "/jobs", import_submission(f"s3://{bucket}/uploads/2026/11/22/abc/ok.jsonl"))
    assert (status, job["status"]) == (202, "SUBMITTED")


@pytest.mark.parametrize(
    ("method", "path", "status", "allowed"),
    [
        ("GET", "/nothing/here", 404, None),
        ("GET", "/jobs/job_1/cancel", 405, ["POST"]),
        ("DELETE", "/jobs", 405, ["GET", "POST"]),
        ("PUT", "/uploads", 405, ["POST"]),
    ],
)
def test_routes_that_do_not_exist_answer_in_our_shape(deployed, method, path, status, allowed):
    answer = raw_request(deployed, method, path)

    assert answer["statusCode"] == status
    error = json.loads(answer["body"])["error"]
    assert error["code"] == ("NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED")
    if allowed:
        assert answer["headers"]["Allow"] == ", ".join(allowed) and error["details"] == {"allowed": allowed}


# --- a whole job, step by step ---------------------------------------------------------------------


def test_a_job_runs_through_every_handler(deployed, sandbox):
    _, job = api(deployed, "POST", "/jobs", {"operation": "pinpointe.list_subscribers", "params": {"list": ["7"]}})
    job_id = job["job_id"]

    started = step(deployed, {"step": "start", "job_id": job_id})
    assert started["next"] == "wait_webhook" and started["status"] == "RUNNING"

    assert step(deployed, {"step": "await_webhook", "job_id": job_id, "task_token": "token-1"}) is None
    webhook_url = _webhook_url_sent_to(sandbox)
    assert webhook_url.startswith(f"{PUBLIC_API_URL}/webhooks/pinpointe/{job_id}/")
    _wait_until_complete(sandbox)
    notice = {"jobid": job["job_id"], "status": "complete"}
    token = webhook_url.rsplit("/", 1)[1]
    acked = deployed.invoke("WebhooksFunction", _webhook_event(job_id, token, notice))
    assert acked["statusCode"] == 200 and json.loads(acked["body"])["received"] is True
    forged = deployed.invoke("WebhooksFunction", _webhook_event(job_id, "B" * 43, notice))
    assert forged["statusCode"] == 404

    polled = step(deployed, {"step": "poll", "job_id": job_id, "woken_by": {"via": "webhook"}})
    assert polled["next"] == "collect"
    collected = step(deployed, {"step": "collect", "job_id": job_id})
    assert (collected["next"], collected["status"]) == ("notify", "SUCCEEDED")
    assert step(deployed, {"step": "notify", "job_id": job_id})["next"] == "done"

    status, done = api(deployed, "GET", f"/jobs/{job_id}")
    assert status == 200 and done["status"] == "SUCCEEDED"
    bucket, key = done["result"]["s3_uri"].removeprefix("s3://").split("/", 1)
    stored = deployed.client("s3").get_object(Bucket=bucket, Key=key, ChecksumMode="DISABLED")["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == done["result"]["sha256"] and json.loads(stored)["count"] == 25
    assert token not in json.dumps(done)


def test_an_oversize_webhook_gets_413_whatever_its_token(deployed):
    event = _webhook_event("job_unknown", "B" * 43, {})
    event["body"] = "x" * (256 * 1024 + 1)
    answer = deployed.invoke("WebhooksFunction", event)
    assert answer["statusCode"] == 413 and json.loads(answer["body"])["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_a_failing_step_is_settled_by_the_fail_step(deployed, sandbox):
    sandbox.configure({"fail_jobs": "list 7 is locked"})
    _, job = api(deployed, "POST", "/jobs", {"operation": "pinpointe.list_subscribers", "params": {"list": ["7"]}})
    step(deployed, {"step": "start", "job_id": job["job_id"]})
    _wait_until_complete(sandbox)

    with pytest.raises(Exception) as raised:
        step(deployed, {"step": "poll", "job_id": job["job_id"]})
    assert type(raised.value).__name__ == "VendorJobFailed"  # the name the ASL's Catch sees
    error = {"Error": "VendorJobFailed", "Cause": json.dumps({"errorType": "VendorJobFailed", "errorMessage": str(raised.value)})}
    assert step(deployed, {"step": "fail", "job_id": job["job_id"], "error": error})["status"] == "FAILED"

    _, failed = api(deployed, "GET", f"/jobs/{job['job_id']}")
    assert failed["error"]["code"] == "VENDOR_FAILED" and "list 7 is locked" in failed["error"]["message"]


def test_cancel_stops_the_execution(deployed):
    _, job = api(deployed, "POST", "/jobs", {"operation": "pinpointe.segment_subscribers", "params": {"segmentid": ["1"]}})
    status, cancelled = api(deployed, "POST", f"/jobs/{job['job_id']}/cancel")
    assert status == 200 and cancelled["status"] == "CANCELLED"
    assert "execution_stop" in [e["event"] for e in cancelled["timeline"]]
    assert api(deployed, "POST", f"/jobs/{job['job_id']}/cancel")[0] == 200


# --- the sweeper function ---------------------------------------------------------------------------


def test_the_sweeper_settles_a_job_whose_execution_was_stopped(deployed):
    _, job = api(deployed, "POST", "/jobs", {"operation": "pinpointe.segment_subscribers", "params": {"segmentid": [3]}})
    _, other = api(deployed, "POST", "/jobs", {"operation": "pinpointe.segment_subscribers", "params": {"segmentid": [4]}})
    machine = deployed.template.state_machines[0].arn
    deployed.client("stepfunctions").stop_execution(
        executionArn=machine.replace(":stateMachine:", ":execution:") + f":{job['job_id']}"
    )

    report = deployed.invoke("SweeperFunction", json.loads((EVENTS / "sweeper_scheduled.json").read_text()))

    assert [s["job_id"] for s in report["settled"]] == [job["job_id"]] and report["examined"] == 2
    _, swept = api(deployed, "GET", f"/jobs/{job['job_id']}")
    assert swept["status"] == "FAILED" and swept["error"]["code"] == "EXECUTION_ENDED"
    assert api(deployed, "GET", f"/jobs/{other['job_id']}")[1]["status"] == "SUBMITTED"  # its execution runs on


def _webhook_event(job_id: str, token: str, notice: dict) -> dict:
    event = http_event("webhook_pinpointe.json", body=json.dumps(notice))
    event["pathParameters"] = {"job_id": job_id, "token": token}
    path = f"/webhooks/pinpointe/{job_id}/{token}"
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    return event


def _webhook_url_sent_to(sandbox) -> str:
    (job,) = httpx.get(f"{sandbox.base_url}/_sandbox/jobs").json()
    return job["details"]["notify"]["value"]


def _wait_until_complete(sandbox, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = httpx.get(f"{sandbox.base_url}/_sandbox/jobs").json()
        if jobs and all(job["status"] in ("complete", "failed") for job in jobs):
            return
        time.sleep(0.05)
    raise AssertionError("the sandbox job did not finish")
