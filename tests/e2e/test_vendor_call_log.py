"""The vendor call log through the whole local stack: a job of each vendor has a log
(GET /jobs/{job_id}/vendor-calls, and the `vendor_calls.jsonl` result file) whose calls are the ones
the vendor's sandbox saw, in order, with their statuses, and in which no credential appears: not the
account secrets the stack stored, not a per-import access token, not the per-job webhook token; not
in the API's answers, not in the log's items in DynamoDB, not in any S3 object of the job."""

import json
from datetime import datetime

import httpx
import pytest

from tests.e2e.conftest import result_file, submit, upload, wait_for
from tests.e2e.test_mypreferences_imports import record

pytestmark = pytest.mark.e2e


def vendor_calls(api: httpx.Client, job_id: str, limit: int = 3) -> tuple[list[dict], list[str]]:
    """Every call of the job's log, read page by page as a client does; and the pages' raw bodies."""
    calls, pages, token = [], [], None
    while True:
        answer = api.get(f"/jobs/{job_id}/vendor-calls", params={"limit": limit, **({"next": token} if token else {})})
        assert answer.status_code == 200, answer.text
        pages.append(answer.text)
        page = answer.json()
        calls += page["calls"]
        token = page["next"]
        if not token:
            return calls, pages


def stored_everywhere(aws, stack, job_id: str) -> str:
    """What the stack keeps of the job's calls and results: the log's items in the jobs table, and
    every S3 object whose key names the job (results, raw webhooks, working files). (The job's own
    item holds an import's access token, as a backend-only field: it is never shown.)"""
    items = aws("dynamodb").query(
        TableName=stack["table"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :calls)",
        ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}, ":calls": {"S": "CALL#"}},
    )["Items"]
    assert items
    s3 = aws("s3")
    texts = [json.dumps(items)]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack["bucket"]):
        for entry in page.get("Contents", []):
            if job_id in entry["Key"]:
                texts.append(s3.get_object(Bucket=stack["bucket"], Key=entry["Key"])["Body"].read().decode(errors="replace"))
    return "\n".join(texts)


def account_secrets(aws, vendor: str) -> list[str]:
    secret = json.loads(aws("secretsmanager").get_secret_value(SecretId=f"jobrelay/{vendor}/default")["SecretString"])
    auth = secret.get("auth") or {}  # MyPreferences' scheme: an HMAC secret or OAuth client credentials
    found = [secret.get("usertoken"), secret.get("api_key"), auth.get("secret"), auth.get("oauth_client_secret")]
    return [value for value in found if value]


def assert_no_secret(secrets: list[str], *texts: str) -> None:
    assert secrets and all(len(secret) >= 6 for secret in secrets)
    for text in texts:
        for secret in secrets:
            assert secret not in text


def check_log(api, aws, stack, job: dict, secrets: list[str]) -> list[dict]:
    """The job's log through the API, checked against its result file and for secrets everywhere."""
    calls, pages = vendor_calls(api, job["job_id"])
    assert job["result"]["files"][-1]["name"] == "vendor_calls.jsonl"
    in_file = [json.loads(line) for line in result_file(job, "vendor_calls.jsonl").splitlines()]
    assert in_file == calls  # the file was written at Collect, the last step that calls the vendor
    assert_no_secret(
        secrets, *pages, json.dumps(api.get(f"/jobs/{job['job_id']}").json()), stored_everywhere(aws, stack, job["job_id"])
    )
    times = [datetime.fromisoformat(call["at"]) for call in calls]
    assert times == sorted(times)
    return calls


def test_a_pinpointe_exports_log_is_what_the_sandbox_saw_and_its_webhook(api, sandbox, aws, stack):
    # A webhook answered slowly on a loaded machine is not this test's subject: the sandbox waits for it.
    sandbox.configure(webhook_timeout_seconds=30)
    job = wait_for(api, submit(api, "pinpointe.list_subscribers", {"list": ["12"], "status": "active"})["job_id"])
    assert job["status"] == "SUCCEEDED", job
    webhook_tokens = [hook["url"].rsplit("/", 1)[1] for hook in sandbox.webhooks()]
    calls = check_log(api, aws, stack, job, account_secrets(aws, "pinpointe") + webhook_tokens)

    out = [call for call in calls if call["direction"] == "out"]
    seen = [
        (
            json.loads(call["request"]["excerpt"])["requestmethod"] if call["path"] == "/apijson.php" else "ResultDownload",
            call["status"],
        )
        for call in out
    ]
    assert seen == [(call["requestmethod"], call["http_status"]) for call in sandbox.calls()]
    assert [call["step"] for call in out][0] == "start" and out[-1]["step"] == "collect"
    assert out[0]["request"]["excerpt"].count('"usertoken": "***"') == 1
    download = out[-1]
    assert download["response"]["size"] == job["result"]["size"] and download["response"]["sha256"] == job["result"]["sha256"]

    received = [call for call in calls if call["direction"] == "in"]
    delivered = sandbox.webhooks(at_least=len(received))
    assert len(received) == len([hook for hook in delivered if hook.get("status_code") == 200]) >= 1
    assert all(call["path"] == f"/webhooks/pinpointe/{job['job_id']}/***" and call["step"] == "webhook" for call in received)


def mypreferences_kind(call: dict) -> str:
    path, method = call["path"], call["method"]
    if path.endswith("/oauth/token"):
        return "token"
    if path.endswith("/Import"):
        return "initiate"
    if path.endswith("/Execute"):
        return "execute"
    if path.endswith("/Exceptions"):
        return "exceptions"
    return "stage" if method == "POST" else "status"


def test_a_mypreferences_imports_log_is_what_the_sandbox_saw_without_its_signatures_or_token(api, mypreferences, aws, stack):
    lines = [json.dumps(record(n)) for n in range(30)]
    params = {
        "source": upload(api, lines),
        "format": "jsonl",
        "name": "logged",
        "match_criteria": "AlternateIdType",
        "match_value": "CRM_ID",
    }
    job = wait_for(api, submit(api, "mypreferences.bulk_import", params)["job_id"], timeout=90)
    assert job["status"] == "SUCCEEDED", job
    sandbox_calls = mypreferences.get("/_sandbox/calls").json()
    access_tokens = sorted({str(call["access_token"]) for call in sandbox_calls if call.get("access_token")})
    assert access_tokens
    calls = check_log(api, aws, stack, job, account_secrets(aws, "mypreferences") + access_tokens)

    assert [(mypreferences_kind(call), call["method"], call["status"]) for call in calls] == [
        (call["kind"], call["method"], call["http_status"]) for call in sandbox_calls
    ]
    assert all(call["request_headers"]["authorization"] == "***" for call in calls)
    assert all("/Import/***" in call["path"] for call in calls if mypreferences_kind(call) != "initiate")
    stage = next(call for call in calls if mypreferences_kind(call) == "stage")
    assert stage["step"] == "stage" and stage["request"]["size"] > 0 and len(stage["request"]["sha256"]) == 64


def test_a_which50_imports_log_is_what_the_sandbox_saw_without_its_api_key(api, which50, aws, stack):
    lines = [json.dumps({"Email": f"logged{n}@example.org", "FirstName": f"Contact {n}"}) for n in range(20)]
    params = {"contact_list_id": 12, "source": upload(api, lines), "format": "jsonl", "field_names": ["Email", "FirstName"]}
    job = wait_for(api, submit(api, "which50.contact_import", params)["job_id"], timeout=90)
    assert job["status"] == "SUCCEEDED", job
    calls = check_log(api, aws, stack, job, account_secrets(aws, "which50"))

    sandbox_calls = which50.get("/_sandbox/calls").json()
    assert [(call["method"], call["status"]) for call in calls] == [
        (call["method"], call["http_status"]) for call in sandbox_calls
    ]
    assert all("/contactLists/12" in call["path"] and call["request_headers"]["authorization"] == "***" for call in calls)
    assert {call["step"] for call in calls} >= {"stage", "poll"}


def test_the_log_of_an_unknown_job_is_a_404_and_a_bad_token_a_400(api, sandbox):
    assert api.get("/jobs/job_01nosuchjob0000000000000000/vendor-calls").status_code == 404
    job = wait_for(api, submit(api, "pinpointe.tag_subscribers", {"tag": ["7"]})["job_id"])
    assert api.get(f"/jobs/{job['job_id']}/vendor-calls", params={"next": "not-a-token"}).status_code == 400
    assert api.get(f"/jobs/{job['job_id']}/vendor-calls", params={"limit": 0}).status_code == 422
