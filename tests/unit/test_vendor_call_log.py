"""The vendor call log: the recorder (jobrelay.vendors.recording) on fake transports, its redaction
with every auth scheme and with random secrets in random places, and the log's way through the
steps (vendor_calls.jsonl), the webhook receiver and the API's pages."""

import hashlib
import json
import string
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobrelay.domain.errors import VendorRejected
from jobrelay.domain.job import WebhookNotice
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_calls import VENDOR_CALLS_FILE, VendorCall
from jobrelay.drivers.base import DriverContext
from jobrelay.drivers.directory import Drivers
from jobrelay.services.jobs import InvalidNextToken, JobService
from jobrelay.services.notices import Notices
from jobrelay.services.steps import StepInput, StepRunner
from jobrelay.services.vendor_calls import recording
from jobrelay.services.webhooks import WebhookReceiver
from jobrelay.vendors import redaction
from jobrelay.vendors.mypreferences.api import InitiateRequest
from jobrelay.vendors.mypreferences.auth import MyPreferencesAccount
from jobrelay.vendors.mypreferences.client import MyPreferencesClient
from jobrelay.vendors.pinpointe.client import PinpointeClient
from jobrelay.vendors.pinpointe.params import AsyncMethod
from jobrelay.vendors.recording import HEAD_BYTES, WHOLE_BODY_BYTES, RecordingTransport
from jobrelay.vendors.redaction import MASK, excerpt_of_head, redact_query, register_secret
from jobrelay.vendors.which50.client import Which50Account, Which50Client
from tests.fakes import InMemorySecretStore, InMemoryVendorCallLog
from tests.unit.conftest import DONE

JOB = "job_01test"


@contextmanager
def isolated_secrets() -> Iterator[None]:
    """Secrets registered inside are forgotten after (the registry is process-wide)."""
    saved = set(redaction._known_secrets)
    try:
        yield
    finally:
        with redaction._lock:
            redaction._known_secrets.clear()
            redaction._known_secrets.update(saved)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    with isolated_secrets():
        yield


class Chunks(httpx.SyncByteStream):
    """A body that arrives in chunks, as a real transport's does (never read before the client reads it)."""

    def __init__(self, body: bytes, size: int = 64 * 1024):
        self._body, self._size = body, size

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self._body), self._size):
            yield self._body[start : start + self._size]


def recorded_client(answer) -> httpx.Client:
    return httpx.Client(transport=RecordingTransport(httpx.MockTransport(answer)), follow_redirects=False)


def logged(log: InMemoryVendorCallLog, job_id: str = JOB) -> list[VendorCall]:
    return list(log.all(job_id))


def everything(log: InMemoryVendorCallLog, job_id: str = JOB) -> str:
    return "\n".join(call.model_dump_json() for call in log.all(job_id))


# --- the recorder ----------------------------------------------------------------------------------


def test_an_exchange_is_recorded_with_its_url_status_timing_and_bodies() -> None:
    log = InMemoryVendorCallLog()
    http = recorded_client(lambda request: httpx.Response(201, json={"id": 7, "ok": True}))
    with recording(JOB, "start", log):
        answer = http.post("https://vendor.test/api/things?limit=10&offset=0", json={"name": "x"})
    assert answer.json() == {"id": 7, "ok": True}  # the client reads what it always did

    (call,) = logged(log)
    assert (call.direction, call.step, call.method, call.host, call.path, call.query, call.status) == (
        "out",
        "start",
        "POST",
        "vendor.test",
        "/api/things",
        "limit=10&offset=0",
        201,
    )
    assert call.latency_ms is not None and call.duration_ms is not None and call.duration_ms >= call.latency_ms
    assert call.request is not None and call.request.size == len(b'{"name":"x"}') and call.request.excerpt == '{"name": "x"}'
    assert call.response is not None and call.response.complete
    assert call.response.sha256 == hashlib.sha256(answer.content).hexdigest() and call.response.size == len(answer.content)
    assert call.response.excerpt == '{"id": 7, "ok": true}' and call.response.content_type == "application/json"


def test_nothing_is_recorded_outside_a_recording() -> None:
    log = InMemoryVendorCallLog()
    http = recorded_client(lambda request: httpx.Response(200))
    http.get("https://vendor.test/")
    with recording(JOB, "poll", None):  # a runner without a log
        http.get("https://vendor.test/")
    assert logged(log) == []


def test_a_call_that_got_no_answer_is_recorded_with_what_went_wrong() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    log = InMemoryVendorCallLog()
    with recording(JOB, "poll", log), pytest.raises(httpx.ReadTimeout):
        recorded_client(answer).get("https://vendor.test/status")
    (call,) = logged(log)
    assert call.status is None and call.error == "ReadTimeout" and call.response is None


def test_a_log_that_cannot_be_written_never_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    log = InMemoryVendorCallLog()
    log.fail = True
    with recording(JOB, "stage", log):
        assert recorded_client(lambda request: httpx.Response(200, text="fine")).get("https://vendor.test/").text == "fine"
    assert "was not logged" in caplog.text


def test_a_streamed_result_is_counted_and_hashed_as_it_passes_never_kept_whole() -> None:
    body = b"".join(b'{"n": %d, "email": "a%d@example.org"}\n' % (n, n) for n in range(60_000))  # ~2 MB
    assert len(body) > WHOLE_BODY_BYTES
    log = InMemoryVendorCallLog()
    http = recorded_client(lambda request: httpx.Response(200, stream=Chunks(body), headers={"content-type": "application/json"}))
    with recording(JOB, "collect", log), http.stream("GET", "https://files.vendor.test/r/1.json") as response:
        received = b"".join(response.iter_bytes(64 * 1024))
    assert received == body

    (call,) = logged(log)
    assert call.response is not None and call.response.complete
    assert call.response.size == len(body) and call.response.sha256 == hashlib.sha256(body).hexdigest()
    assert call.response.excerpt.startswith('{"n": 0, "email": "a0@example.org"}')
    assert call.response.excerpt.endswith(f"... ({len(body):,} bytes in all)") and len(call.response.excerpt) < 1100


def test_a_download_stopped_half_way_says_so() -> None:
    body = b"x" * (3 * WHOLE_BODY_BYTES)
    log = InMemoryVendorCallLog()
    http = recorded_client(lambda request: httpx.Response(200, stream=Chunks(body)))
    with recording(JOB, "collect", log), http.stream("GET", "https://files.vendor.test/r/1.json") as response:
        next(response.iter_raw(1024))
    (call,) = logged(log)
    assert call.response is not None and not call.response.complete and call.response.sha256 is None


def test_a_large_request_body_is_summarised_by_size_hash_and_first_bytes() -> None:
    batch = json.dumps([{"Email": f"c{n}@example.org"} for n in range(20_000)]).encode()
    log = InMemoryVendorCallLog()
    with recording(JOB, "stage", log):
        recorded_client(lambda request: httpx.Response(200, json=[])).post("https://vendor.test/import/1", content=batch)
    (call,) = logged(log)
    assert call.request is not None
    assert call.request.size == len(batch) and call.request.sha256 == hashlib.sha256(batch).hexdigest()
    assert call.request.excerpt.startswith('[{"Email": "c0@example.org"}') and len(call.request.excerpt) < 1100


# --- every auth scheme, through the vendors' own clients ---------------------------------------------

PINPOINTE_TOKEN = "pp-usertoken-7f3a9c1e55b2"
HMAC_SECRET = "pn3-hmac-secret-Qw8eR7tY6u"
OAUTH_SECRET = "oauth-client-secret-Zx9cV8bN7m"
BEARER = "bearer-access-token-Lk4jH3gF2d"
ACCESS_TOKEN = 918273001
WHICH50_KEY = "w50-api-key-Po0iU9yT8r"


def test_pinpointe_body_credentials_and_the_webhook_token_never_reach_the_log() -> None:
    from jobrelay.vendors.pinpointe.adapter import PinpointeAccount

    account = PinpointeAccount.from_secret(
        {"base_url": "https://acme.mypinpointe.test", "username": "acme", "usertoken": PINPOINTE_TOKEN}
    )
    webhook_token = "WhT0k3n-per-job-capability-abcdefghijklmnop"  # not registered: the URL's shape says it
    answers = iter([httpx.Response(200, json={"status": "SUCCESS", "data": {"jobid": "8812"}})])
    http = recorded_client(lambda request: next(answers))
    client = PinpointeClient(account.base_url, account.username, account.usertoken, http=http, timeout=httpx.Timeout(5))
    log = InMemoryVendorCallLog()
    notify = {"type": "webhook", "value": f"https://api.example.test/webhooks/pinpointe/{JOB}/{webhook_token}"}
    with recording(JOB, "start", log):
        client.start_async(AsyncMethod("Lists", "GetListSubscribersAsync"), {"listids": ["7"], "notify": notify})

    (call,) = logged(log)
    assert call.request is not None and '"usertoken": "***"' in call.request.excerpt
    assert f"/webhooks/pinpointe/{JOB}/{MASK}" in call.request.excerpt
    assert PINPOINTE_TOKEN not in everything(log) and webhook_token not in everything(log)


def test_pnauthinfo3_signatures_and_the_import_access_token_never_reach_the_log() -> None:
    account = MyPreferencesAccount.from_secret(
        {
            "base_url": "https://pm.mypreferences.test",
            "client_id": "ACME",
            "user_id": "importer",
            "auth": {"scheme": "pnauthinfo3", "secret": HMAC_SECRET},
        }
    )
    signed: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        signed.append(request.headers["Authorization"])
        if request.url.path.endswith("/Import"):
            return httpx.Response(200, json={"AccessToken": ACCESS_TOKEN, "Status": "Initiated", "Expires": "2030-01-01"})
        return httpx.Response(401, json={"Message": f"token {ACCESS_TOKEN} expired"})

    client = MyPreferencesClient(
        account.base_url, account.client_id, auth=account.authenticator(), http=recorded_client(answer), timeout=account.timeout
    )
    log = InMemoryVendorCallLog()
    with recording(JOB, "start", log):
        client.initiate(InitiateRequest(Name="nightly"))
    with recording(JOB, "poll", log), pytest.raises(VendorRejected):
        client.status(ACCESS_TOKEN)

    initiate, status = logged(log)
    assert initiate.request_headers["authorization"] == MASK and status.request_headers["authorization"] == MASK
    assert status.path == f"/Profiles/Async/ACME/Import/{MASK}" and status.status == 401
    text = everything(log)
    assert HMAC_SECRET not in text and str(ACCESS_TOKEN) not in text
    assert all(header.split("Signature=")[1] not in text for header in signed)


def test_oauth_client_secrets_and_bearer_tokens_never_reach_the_log() -> None:
    account = MyPreferencesAccount.from_secret(
        {
            "base_url": "https://pm.mypreferences.test",
            "client_id": "ACME",
            "user_id": "importer",
            "auth": {
                "scheme": "oauth",
                "token_url": "https://auth.mypreferences.test/oauth/token",
                "oauth_client_id": "jobrelay",
                "oauth_client_secret": OAUTH_SECRET,
            },
        }
    )

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": BEARER, "token_type": "Bearer", "expires_in": 3600})
        return httpx.Response(500, text=f"upstream said: Authorization: Bearer {BEARER}")

    client = MyPreferencesClient(
        account.base_url, account.client_id, auth=account.authenticator(), http=recorded_client(answer), timeout=account.timeout
    )
    log = InMemoryVendorCallLog()
    with recording(JOB, "poll", log), pytest.raises(Exception, match="HTTP 500"):
        client.status(ACCESS_TOKEN)

    token_call, api_call = logged(log)
    assert token_call.host == "auth.mypreferences.test" and token_call.request_headers["authorization"] == MASK
    assert token_call.response is not None and '"access_token": "***"' in token_call.response.excerpt
    assert api_call.request_headers["authorization"] == MASK and api_call.status == 500
    text = everything(log)
    assert OAUTH_SECRET not in text and BEARER not in text


def test_the_which50_api_key_never_reaches_the_log() -> None:
    account = Which50Account.from_secret({"base_url": "https://w50.test/Which50API", "api_key": WHICH50_KEY})
    echo = json.dumps({"Message": "denied", "Key": WHICH50_KEY, "Detail": f"ApiKey {WHICH50_KEY} is not valid"})
    client = Which50Client(account, http=recorded_client(lambda request: httpx.Response(401, text=echo)))
    log = InMemoryVendorCallLog()
    with recording(JOB, "start", log), pytest.raises(VendorRejected):
        client.contact_list(12)
    (call,) = logged(log)
    assert call.request_headers["authorization"] == MASK and call.path == "/Which50API/contactLists/12"
    assert WHICH50_KEY not in everything(log)


# --- random secrets in random places ------------------------------------------------------------------

SECRET_CHARS = string.ascii_letters + string.digits + "-_.~+/="
secrets_ = st.text(alphabet=SECRET_CHARS, min_size=12, max_size=60).filter(lambda s: len(set(s)) >= 6)
names = st.text(alphabet=string.ascii_lowercase + "_-", min_size=1, max_size=12)
filler = st.text(alphabet=" .,:;()[]{}\"'\n#!?%&@", max_size=200)
PLACES = [
    "query",
    "path",
    "header",
    "json_value",
    "json_key",
    "form",
    "text",
    "large_body",
    "answer_json",
    "answer_header",
    "large_answer",
]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=secrets_, place=st.sampled_from(PLACES), name=names, before=filler, after=filler, offset=st.integers(-80, 80))
def test_a_registered_secret_never_appears_in_the_log_wherever_it_is(secret, place, name, before, after, offset) -> None:
    with isolated_secrets():
        register_secret(secret)
        url, headers, content, answer = "https://vendor.test/api", {}, None, httpx.Response(200, json={"ok": True})
        large = ("z" * (HEAD_BYTES + offset - 20)) + before[:20].ljust(20, "z") + secret + after + ("z" * WHOLE_BODY_BYTES)
        match place:
            case "query":
                url += f"?page=1&{name}={quote(secret)}"
            case "path":
                url += f"/imports/{quote(secret, safe='')}/run"
            case "header":
                headers[f"x-{name}"] = f"Scheme {secret}"
            case "json_value":
                content = json.dumps({name: [before, {"v": before + secret + after}]}).encode()
            case "json_key":
                content = json.dumps({secret: before}).encode()
            case "form":
                content = f"{name}={quote(before + secret + after, safe='')}".encode()
            case "text":
                content = (before + secret + after).encode()
            case "large_body":
                content = large.encode()
            case "answer_json":
                answer = httpx.Response(200, json={"data": {name: secret, "note": before}})
            case "answer_header":
                answer = httpx.Response(200, headers={f"x-{name}": secret})
            case "large_answer":
                answer = httpx.Response(200, stream=Chunks(large.encode(), 1000))
        log = InMemoryVendorCallLog()
        with recording(JOB, "stage", log):
            recorded_client(lambda request: answer).post(url, headers=headers, content=content)
        (call,) = logged(log)
        assert secret not in call.model_dump_json()
        assert secret not in json.dumps(call.model_dump(mode="json"), ensure_ascii=False)


@settings(max_examples=100, deadline=None)
@given(secret=secrets_, keep=st.integers(1, 59))
def test_a_cut_through_a_secret_leaves_no_part_of_it_at_the_end(secret, keep) -> None:
    with isolated_secrets():
        register_secret(secret)
        head = ("#" * 50 + secret)[: 50 + min(keep, len(secret) - 1)]  # the body goes on past the cut
        shown = excerpt_of_head(head.encode(), None).removesuffix("...")
        assert not any(shown.endswith(secret[:length]) for length in range(1, len(secret)))


@given(name=names, value=st.text(alphabet=SECRET_CHARS, min_size=1, max_size=30))
def test_a_signed_links_query_is_masked_whole(name, value) -> None:
    query = f"{name}={quote(value)}&X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F20250301"
    assert redact_query(query) == f"{name}={MASK}&X-Amz-Signature={MASK}&X-Amz-Credential={MASK}"


def test_a_plain_query_keeps_its_values_and_masks_secret_names() -> None:
    assert redact_query("limit=100&offset=200") == "limit=100&offset=200"
    assert redact_query("limit=1&api_key=abc&access_token=xyz") == f"limit=1&api_key={MASK}&access_token={MASK}"


# --- the log's way through the steps, the webhooks and the API -----------------------------------------


@pytest.fixture
def logged_world(world):
    """The shared world, with a vendor call log on its runner, webhook receiver and job service."""
    log = InMemoryVendorCallLog()
    notices = Notices(world.events, InMemorySecretStore(), world.settings)
    drivers = Drivers(lambda job: world.vendor, DriverContext(world.store, world.results, world.settings, now=world.clock))
    world.steps = StepRunner(
        world.store, world.workflow, notices, drivers.for_job, world.settings, now=world.clock, calls=log, results=world.results
    )
    world.webhooks = WebhookReceiver(
        world.store,
        world.workflow,
        lambda key, body: f"s3://results/{key}",
        lambda vendor, body: WebhookNotice(status="complete"),
        now=world.clock,
        calls=log,
    )
    world.jobs = JobService(world.store, world.results, world.workflow, notices, world.settings, now=world.clock, calls=log)
    return world, log


def test_each_step_files_its_calls_and_collect_keeps_the_log_as_a_result_file(logged_world) -> None:
    world, log = logged_world
    http = recorded_client(lambda request: httpx.Response(200, json={"status": "SUCCESS"}))
    original_start, original_collect = world.vendor.start, world.vendor.collect

    def start(job, webhook_url):
        http.post("https://vendor.test/start", json={"notify": webhook_url})
        return original_start(job, webhook_url)

    def collect(job, results):
        http.get("https://vendor.test/result")
        return original_collect(job, results)

    world.vendor.start, world.vendor.collect = start, collect
    world.vendor.polls = [DONE]
    job_id = world.submit()
    world.steps.run(StepInput(step="start", job_id=job_id))
    token = world.vendor.started_with[0].rsplit("/", 1)[1]
    world.webhooks.receive("pinpointe", job_id, token, b'{"jobid": "v-1", "status": "complete", "url": "https://x/1?sig=abc"}')
    world.steps.run(StepInput(step="poll", job_id=job_id))
    world.steps.run(StepInput(step="collect", job_id=job_id))

    job = world.store.get(job_id)
    assert job.status is JobStatus.SUCCEEDED
    assert [f.name for f in job.result.files] == ["result.json", VENDOR_CALLS_FILE]
    lines = [json.loads(line) for line in world.results.read(job.result.files[1].s3_uri).splitlines()]
    assert [(c["direction"], c["step"], c["path"]) for c in lines] == [
        ("out", "start", "/start"),
        ("in", "webhook", f"/webhooks/pinpointe/{job_id}/{MASK}"),
        ("out", "collect", "/result"),
    ]
    assert token not in json.dumps(lines) and "sig=abc" not in json.dumps(lines)
    assert lines[1]["status"] == 200 and '"outcome": "recorded"' in lines[1]["response"]["excerpt"]


def test_a_webhook_on_a_wrong_token_is_not_logged(logged_world) -> None:
    world, log = logged_world
    job_id = world.submit()
    world.steps.run(StepInput(step="start", job_id=job_id))
    with pytest.raises(Exception, match="not found"):
        world.webhooks.receive("pinpointe", job_id, "not-the-token", b"{}")
    assert logged(log, job_id) == []


def test_the_api_pages_through_a_jobs_calls_oldest_first(logged_world) -> None:
    world, log = logged_world
    job_id = world.submit()
    http = recorded_client(lambda request: httpx.Response(204))
    with recording(job_id, "poll", log):
        for n in range(5):
            http.get(f"https://vendor.test/status/{n}")

    first = world.jobs.vendor_calls(job_id, limit=2, next_token=None)
    assert [c.path for c in first.calls] == ["/status/0", "/status/1"] and first.next
    paths = [c.path for c in first.calls]
    token = first.next
    while token:
        page = world.jobs.vendor_calls(job_id, limit=2, next_token=token)
        paths += [c.path for c in page.calls]
        token = page.next
    assert paths == [f"/status/{n}" for n in range(5)]

    other = world.submit()
    with pytest.raises(InvalidNextToken):
        world.jobs.vendor_calls(other, limit=2, next_token=first.next)
    with pytest.raises(Exception, match="no job"):
        world.jobs.vendor_calls("job_01nosuchjob", limit=2, next_token=None)
    assert world.jobs.vendor_calls(other, limit=10, next_token=None).calls == []


def test_a_job_is_collected_even_when_its_log_cannot_be_written(logged_world) -> None:
    world, log = logged_world
    world.vendor.polls = [DONE]
    job_id = world.submit()
    world.steps.run(StepInput(step="start", job_id=job_id))
    world.steps.run(StepInput(step="poll", job_id=job_id))
    log.fail = True
    world.steps.run(StepInput(step="collect", job_id=job_id))
    job = world.store.get(job_id)
    assert job.status is JobStatus.SUCCEEDED and [f.name for f in job.result.files] == ["result.json"]
