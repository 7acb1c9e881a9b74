"""SigV4: requests to a deployed API are signed for execute-api, and a verifying server recomputes
each signature with botocore from the same fake credentials and the request as it arrived
(method, path, query string, the signed headers, body), refusing any mismatch.

How the CLI is made to sign without leaving this machine: it signs whenever the API URL's host is
not loopback by name or address. The tests give it `http://api.jobrelay.test:8080` (a reserved
name that never resolves) and set HTTP_PROXY to the verifying server, which is also a plain forward
proxy: httpx sends it the request exactly as it would go to the API, with `Host:
api.jobrelay.test:8080`. No test-only switch in the CLI is involved.
"""

import hmac
import re

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.unit.cli_support import Answer, Recorded, catalogue, job, result_file, result_of, run_cli

ACCESS_KEY = "AKIDJOBRELAYTEST0001"
SECRET_KEY = "jobrelay-test-secret-key/do+not/print"
SESSION_TOKEN = "jobrelay-test-session-token-FwoGZXIvYXdzEJr"
REGION = "eu-west-1"
API_URL = "http://api.jobrelay.test:8080"

AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def signature_problem(request: Recorded, credentials: Credentials) -> str | None:
    """None when the request carries a valid SigV4 signature by `credentials`, else why not."""
    match = AUTHORIZATION.match(request.headers.get("authorization", ""))
    if not match:
        return "no SigV4 Authorization header"
    if (match["key"], match["region"], match["service"]) != (credentials.access_key, REGION, "execute-api"):
        return f"wrong credential scope {match['key']}/{match['region']}/{match['service']}"
    signed = match["signed"].split(";")
    for needed in ("host", "x-amz-date", "x-amz-security-token"):
        if needed not in signed:
            return f"{needed} is not signed"
    if request.body and "content-type" not in signed:
        return "the body's content-type is not signed"
    # The request as it arrived: the URL from its Host and target (path and query string, as sent).
    target = request.target.split("://", 1)[1].split("/", 1)[1] if "://" in request.target else request.target.lstrip("/")
    arrived = AWSRequest(
        method=request.method,
        url=f"http://{request.headers['host']}/{target}",
        headers={name: request.headers[name] for name in signed},
        data=request.body,
    )
    arrived.context["timestamp"] = request.headers["x-amz-date"]
    auth = SigV4Auth(credentials, "execute-api", REGION)
    expected = auth.signature(auth.string_to_sign(arrived, auth.canonical_request(arrived)), arrived)
    return None if hmac.compare_digest(expected, match["signature"]) else "the signature does not match"


def verified(answer: object, credentials: Credentials | None = None):
    """A route that answers only correctly signed requests, as API Gateway's IAM authorizer does."""
    credentials = credentials or Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)

    def check(request: Recorded) -> Answer:
        if problem := signature_problem(request, credentials):
            return Answer(403, {"message": f"The request signature we calculated does not match ({problem})"})
        return answer if isinstance(answer, Answer) else Answer(200, answer)

    return check


@pytest.fixture
def aws_credentials(monkeypatch, fake_api):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("HTTP_PROXY", fake_api.url)


def assert_no_credential_in(text: str, *signatures: str) -> None:
    for secret in (SECRET_KEY, SESSION_TOKEN, ACCESS_KEY, *signatures):
        assert secret not in text


def test_gets_with_query_strings_are_signed_and_verified(fake_api, aws_credentials):
    next_token = "eyJjIjp7fSwiZiI6W119+/="  # base64: `+`, `/` and `=` must be encoded as SigV4 expects
    fake_api.route(
        "GET",
        "/jobs",
        verified({"jobs": [job("job_01first")], "next": next_token}),
        verified({"jobs": [job("job_01second")], "next": None}),
    )
    result = run_cli(
        "--api-url", API_URL, "--debug", "list", "--status", "running", "--operation", "pinpointe.list_subscribers",
        "--limit", "5", "--all",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    first, second = fake_api.requests
    assert first.target == "http://api.jobrelay.test:8080/jobs?status=running&operation=pinpointe.list_subscribers&limit=5"
    assert second.target.endswith("&limit=5&next=eyJjIjp7fSwiZiI6W119%2B%2F%3D")  # RFC 3986, as canonicalised
    assert second.query["next"] == [next_token]
    for request in (first, second):
        assert signature_problem(request, Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)) is None
    assert "job_01first" in result.stdout and "job_01second" in result.stdout
    assert "SigV4-signed" in result.stderr  # --debug's request lines
    signatures = [AUTHORIZATION.match(r.headers["authorization"])["signature"] for r in fake_api.requests]
    assert_no_credential_in(result.output, *signatures)


def test_a_post_with_a_json_body_is_signed_over_its_bytes(fake_api, aws_credentials):
    fake_api.route("GET", "/operations", verified(catalogue()))
    fake_api.route("POST", "/jobs", verified(Answer(202, job())))
    result = run_cli(
        "--api-url",
        API_URL,
        "--debug",
        "submit",
        "pinpointe.newsletter_contact_data_summary",
        "stat=4711",
        "--idempotency-key",
        "k-1",
    )
    assert result.exit_code == 0, result.output
    (posted,) = fake_api.sent("POST", "/jobs")
    assert posted.json()["params"] == {"stat": "4711"}
    assert "idempotency-key" in AUTHORIZATION.match(posted.headers["authorization"])["signed"].split(";")
    assert signature_problem(posted, Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)) is None
    signatures = [AUTHORIZATION.match(r.headers["authorization"])["signature"] for r in fake_api.requests]
    assert_no_credential_in(result.output, *signatures)


def test_the_verifier_refuses_a_signature_made_with_another_secret(fake_api, aws_credentials, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-the-api-knows")
    fake_api.route("GET", "/jobs/job_01test", verified(job()))
    result = run_cli("--api-url", API_URL, "get", "job_01test")
    assert result.exit_code == 1
    assert "error: The request signature we calculated does not match (the signature does not match) (HTTP 403" in result.stderr
    assert "Traceback" not in result.output


def test_presigned_downloads_are_not_signed_again(fake_api, aws_credentials, tmp_path):
    content = b'{"count": 1, "subscribers": [{}]}'
    presigned = "http://results.jobrelay.test/results/job_01test/result.json?X-Amz-Signature=abc&X-Amz-Credential=AKID%2F"
    done = job(status="SUCCEEDED", result=result_of(result_file("result.json", content, presigned)))
    fake_api.route("GET", "/jobs/job_01test", verified(done))
    fake_api.route("GET", "/results/job_01test/result.json", Answer(200, content))
    result = run_cli("--api-url", API_URL, "--debug", "download", "job_01test", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (download,) = fake_api.sent("GET", "/results/job_01test/result.json")
    assert "authorization" not in download.headers and "x-amz-security-token" not in download.headers
    assert (tmp_path / "result.json").read_bytes() == content
    assert "X-Amz-Signature" not in result.output  # --debug hides a presigned URL's query


def test_loopback_requests_are_not_signed(fake_api, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    fake_api.route("GET", "/jobs/job_01test", job())
    for url in (fake_api.url, fake_api.url.replace("127.0.0.1", "localhost")):
        result = run_cli("--api-url", url, "--debug", "get", "job_01test")
        assert result.exit_code == 0, result.output
        assert "loopback: requests not signed" in result.stderr
    assert len(fake_api.requests) == 2
    assert all("authorization" not in r.headers and "x-amz-date" not in r.headers for r in fake_api.requests)


def test_no_credentials_for_a_remote_api_is_a_clear_error(fake_api, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("HTTP_PROXY", fake_api.url)
    result = run_cli("--api-url", API_URL, "get", "job_01test")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no AWS credentials found to sign requests to http://api.jobrelay.test:8080")
    assert fake_api.requests == []
