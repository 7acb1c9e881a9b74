"""Pinpointe's mapping rules, without sockets: the status table, params -> details, the readings of
undocumented answer shapes, the result-link guard and the webhook parser. The last section drives the
client and adapter through httpx.MockTransport with answers the sandbox cannot produce."""

import gzip
import json
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from jobrelay.domain.errors import VendorJobFailed, VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.domain.job import Job, StoredFile
from jobrelay.operations import OPERATIONS
from jobrelay.ports import VendorState, WaitMode
from jobrelay.vendors.pinpointe import params as p
from jobrelay.vendors.pinpointe.adapter import PinpointeAccount, PinpointeJobs, pinpointe_jobs
from jobrelay.vendors.pinpointe.api import (
    ASYNC_METHODS,
    ApiResponse,
    JobEntry,
    JobStatusPage,
    StartedJob,
    async_details,
    find_job,
    parse_webhook,
    vendor_state,
    wire_value,
)
from jobrelay.vendors.pinpointe.client import MAX_STATUS_PAGES, ResultLinkPolicy, host_allowed

HOOK = "https://api.example.org/webhooks/pinpointe/job-1/token"
TOKEN = "tok-3b1f9c-very-secret"
T0 = datetime(2025, 8, 13, 16, 32, tzinfo=UTC)

# --- the status table (VENDORS.md 1.6 guidance a-e) --------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("waiting", VendorState.RUNNING),
        ("WAITING", VendorState.RUNNING),
        ("Pending", VendorState.RUNNING),
        ("running", VendorState.RUNNING),
        ("Processing", VendorState.RUNNING),
        ("queued", VendorState.RUNNING),
        ("in_queue", VendorState.RUNNING),
        ("complete", VendorState.DONE),
        ("Completed", VendorState.DONE),
        ("COMPLETE", VendorState.DONE),
        ("job_complete", VendorState.DONE),
        ("done", VendorState.DONE),
        ("Finished", VendorState.DONE),
        ("failed", VendorState.FAILED),
        ("FAILED", VendorState.FAILED),
        ("Failure", VendorState.FAILED),
        ("error", VendorState.FAILED),
        ("ERROR", VendorState.FAILED),
        ("errored", VendorState.FAILED),
    ],
)
def test_status_words_map_without_regard_to_case(word, state, caplog):
    with caplog.at_level(logging.WARNING):
        assert vendor_state(word, has_result_link=False) is state
    assert not caplog.records  # known words are not reported


@pytest.mark.parametrize("word", [None, "", "archived", "xxxx", "incomplete", "unfinished"])
def test_unknown_status_words_count_as_running_and_are_logged_raw(word, caplog):
    with caplog.at_level(logging.WARNING):
        assert vendor_state(word, has_result_link=False) is VendorState.RUNNING
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert repr(word) in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("word", "state"), [("waiting", VendorState.DONE), (None, VendorState.DONE), ("failed", VendorState.FAILED)]
)
def test_a_result_link_means_done_unless_the_job_failed(word, state):
    assert vendor_state(word, has_result_link=True) is state


def test_job_entries_read_assumed_key_variants():
    link = "https://na01.mypinpointe.com/f.json"
    entry = JobEntry.model_validate({"jobId": 42, "status": "Waiting", "link": link})
    assert (entry.jobid, entry.result_url, entry.state) == ("42", link, VendorState.DONE)
    assert JobEntry.model_validate({"job_id": "7", "status": "waiting", "url": ""}).state is VendorState.RUNNING


# --- params -> details (VENDORS.md 1.1, 1.4, 1.5) ------------------------------------------------------


def test_list_params_become_wire_strings_and_unused_elements_are_left_out():
    params = p.ListSubscribersParams.model_validate(
        {"list": [12, "34"], "startdate": "2025-01-01", "enddate": "20250102", "include_membership": True}
    )
    assert async_details(params, HOOK) == {
        "list": ["12", "34"],
        "startdate": "20250101",
        "enddate": "20250102",
        "status": "any",
        "include_membership": "true",
        "notify": {"type": "webhook", "value": HOOK},
    }


def test_contact_data_summary_sends_only_what_was_given():
    params = p.NewsletterContactDataSummaryParams.model_validate({"stat": 4711})
    assert async_details(params, HOOK) == {"stat": "4711", "notify": {"type": "webhook", "value": HOOK}}


def test_tag_params_omit_empty_lists_and_write_false_as_a_string():
    params = p.TagSubscribersParams.model_validate({"tagname": "VIP", "extag": [], "customfields": ["all"]})
    assert async_details(params, HOOK) == {
        "tagname": "VIP",
        "status": "any",
        "include_membership": "false",
        "customfields": ["all"],
        "emailonly": "false",
        "notify": {"type": "webhook", "value": HOOK},
    }


def test_segment_params():
    params = p.SegmentSubscribersParams.model_validate({"segmentid": ["9"], "status": "active"})
    details = async_details(params, HOOK)
    assert details["segmentid"] == ["9"] and details["status"] == "active" and "customfields" not in details


@pytest.mark.parametrize(
    ("value", "wire"),
    [(None, None), (True, "true"), (False, "false"), (7, "7"), (1.5, "1.5"), (date(2025, 3, 9), "20250309"),
     ("", None), ([], None), ([None, 3, ""], ["3"]), ("x", "x")],
)
def test_wire_values(value, wire):
    assert wire_value(value) == wire


def test_every_pinpointe_operation_has_its_call():
    assert set(ASYNC_METHODS) == {name for name, op in OPERATIONS.items() if op.vendor == "pinpointe"}
    calls = {op: (m.requesttype, m.requestmethod) for op, m in ASYNC_METHODS.items()}
    assert calls == {
        "pinpointe.newsletter_contact_data_summary": ("Newsletters", "GetNewsletterContactDataSummaryAsync"),
        "pinpointe.list_subscribers": ("Lists", "GetListSubscribersAsync"),
        "pinpointe.segment_subscribers": ("Segments", "GetSegmentSubscribersAsync"),
        "pinpointe.tag_subscribers": ("Tags", "GetTagSubscribersAsync"),
    }


# --- answers: envelope, start data, AsyncJobStatus pages ---------------------------------------------


@pytest.mark.parametrize("wrap", [False, True])
def test_answers_are_read_with_or_without_the_response_wrapper(wrap):
    element = {"status": "SUCCESS", "data": {"jobid": "1"}}
    response = ApiResponse.from_body({"response": element} if wrap else element, "X/Y")
    assert response.succeeded and response.data == {"jobid": "1"}


@pytest.mark.parametrize("status", ["FAILED", "ERROR", "failed", " Error "])
def test_failed_and_error_are_both_failures(status):
    response = ApiResponse.from_body({"response": {"status": status, "errormessage": "Jobs not found"}}, "X/Y")
    assert response.failed and not response.succeeded and response.says("jobs not found")


@pytest.mark.parametrize("body", [{}, {"response": "SUCCESS"}, {"data": {}}, {"status": {"nested": 1}}])
def test_an_answer_without_a_status_is_a_protocol_error(body):
    with pytest.raises(VendorProtocolError, match="no readable status"):
        ApiResponse.from_body(body, "X/Y")


@pytest.mark.parametrize(
    "data",
    ["123", 123, {"jobid": "123"}, {"job_id": 123}, {"jobId": "123"}, {"id": "123", "elapsed": "0.1"}],
)
def test_start_answers_give_the_job_id_under_any_assumed_key(data):
    response = ApiResponse.from_body({"status": "SUCCESS", "data": data}, "X/Y")
    assert StartedJob.from_response(response, "X/Y").jobid == "123"


def test_start_answer_keeps_elapsed_and_timestamp():
    data = {"jobid": "5", "elapsed": 0.05, "timestamp": "2025-08-13T16:32:00Z"}
    started = StartedJob.from_response(ApiResponse(status="SUCCESS", data=data), "X/Y")
    assert (started.elapsed, started.timestamp) == ("0.05", "2025-08-13T16:32:00Z")


@pytest.mark.parametrize("data", [None, {}, {"jobid": ""}, [], True, {"job": {"jobid": "1"}}])
def test_start_answers_without_a_job_id_are_protocol_errors(data):
    with pytest.raises(VendorProtocolError, match="no job id"):
        StartedJob.from_response(ApiResponse(status="SUCCESS", data=data), "Lists/GetListSubscribersAsync")


@pytest.mark.parametrize(
    "data",
    [
        [{"jobid": "1", "status": "waiting"}],
        {"jobs": [{"jobid": "1", "status": "waiting"}]},
        {"job": {"jobid": "1", "status": "waiting"}},
        {"jobid": "1", "status": "waiting"},
    ],
)
def test_status_pages_find_entries_in_every_assumed_place(data):
    page = JobStatusPage.from_response(ApiResponse(status="SUCCESS", data=data))
    assert [(e.jobid, e.status) for e in page.jobs] == [("1", "waiting")] and page.next is None


@pytest.mark.parametrize(
    ("body", "following"),
    [
        ({"status": "SUCCESS", "data": {"jobs": [], "pagination": {"next": "50"}}}, "50"),
        ({"status": "SUCCESS", "data": {"jobs": []}, "pagination": {"next": 50}}, "50"),
        ({"status": "SUCCESS", "data": {"jobs": [], "pagination": {"next": "0"}}}, None),
        ({"status": "SUCCESS", "data": {"jobs": [], "pagination": {}}}, None),
    ],
)
def test_pagination_next_is_read_inside_or_beside_data(body, following):
    assert JobStatusPage.from_response(ApiResponse.from_body(body, "API/AsyncJobStatus")).next == following


def test_unreadable_status_entries_are_protocol_errors():
    with pytest.raises(VendorProtocolError):
        JobStatusPage.from_response(ApiResponse(status="SUCCESS", data={"jobs": ["just a string"]}))
    with pytest.raises(VendorProtocolError):
        JobStatusPage.from_response(ApiResponse(status="SUCCESS", data="nothing"))


def test_find_job_by_id_or_a_lone_anonymous_entry():
    ours, other = JobEntry(jobid="1", status="done"), JobEntry(jobid="2", status="waiting")
    anonymous = JobEntry(status="done")
    assert find_job([other, ours], "1") is ours
    assert find_job([anonymous], "1") is anonymous
    assert find_job([other], "1") is None
    assert find_job([anonymous, other], "1") is None


# --- the result-link guard (SSRF) -----------------------------------------------------------------------

DEFAULT_HOSTS = ("*.mypinpointe.com", "*.pinpointe.com")


@pytest.mark.parametrize(
    "host",
    ["na01.mypinpointe.com", "a.b.mypinpointe.com", "NA01.MyPinpointe.COM", "files.pinpointe.com",
     "na01.mypinpointe.com."],
)
def test_hosts_on_the_allowlist(host):
    assert host_allowed(host, DEFAULT_HOSTS)


@pytest.mark.parametrize(
    "host",
    ["mypinpointe.com.evil.org", "na01.mypinpointe.com.evil.org", "evilmypinpointe.com", "mypinpointe.com", "",
     "127.0.0.1", "169.254.169.254", "na01.mypinpointe.co"],
)
def test_lookalike_and_other_hosts_are_refused(host):
    assert not host_allowed(host, DEFAULT_HOSTS)


def test_exact_host_patterns():
    assert host_allowed("127.0.0.1", ["127.0.0.1"]) and not host_allowed("127.0.0.10", ["127.0.0.1"])


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://na01.mypinpointe.com@evil.org/f.json", "evil.org"),
        ("https://mypinpointe.com.evil.org/f.json", "mypinpointe.com.evil.org"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),
    ],
)
def test_the_policy_refuses_links_naming_the_host(url, named):
    with pytest.raises(VendorProtocolError, match=f"host '{named}'"):
        ResultLinkPolicy(DEFAULT_HOSTS).check(url)


@pytest.mark.parametrize(
    "url", ["http://na01.mypinpointe.com/f.json", "ftp://na01.mypinpointe.com/f", "//na01.mypinpointe.com/f"]
)
def test_the_policy_wants_https(url):
    with pytest.raises(VendorProtocolError, match="scheme"):
        ResultLinkPolicy(DEFAULT_HOSTS).check(url)


def test_http_only_when_allowed():
    assert ResultLinkPolicy(("127.0.0.1",), allow_http=True).check("http://127.0.0.1:3100/files/1.json").port == 3100


# --- the webhook notice ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe\x00garbage", b"[1, 2]", b"null", b'"text"', b"{", b"[" * 100_000,
     b'{"jobid": {"x": 1}, "url": ["a"], "status": 3.5e400}', b'{"response": "x", "data": 1}'],
)
def test_parse_webhook_never_raises_on_junk(body):
    notice = parse_webhook(body)
    assert notice.jobid is None and notice.result_url is None


RESULT_9 = "https://na01.mypinpointe.com/9.json"


@pytest.mark.parametrize(
    "payload",
    [
        {"jobid": "9", "status": "complete", "url": RESULT_9},
        {"response": {"status": "SUCCESS", "data": {"jobid": 9, "status": "complete", "link": RESULT_9}}},
        {"data": {"job_id": "9", "status": "complete", "file_url": RESULT_9}},
    ],
)
def test_parse_webhook_reads_the_assumed_shapes(payload):
    notice = parse_webhook(json.dumps(payload).encode())
    assert (notice.jobid, notice.status, notice.result_url) == ("9", "complete", RESULT_9)


# --- client and adapter over a scripted transport --------------------------------------------------------

Answer = Callable[[httpx.Request], httpx.Response]


def account(**overrides) -> PinpointeAccount:
    return PinpointeAccount.model_validate(
        {"base_url": "https://na01.mypinpointe.com", "username": "u@example.org", "usertoken": TOKEN, **overrides}
    )


def adapter(answer: Answer, *, now: datetime = T0, grace: int = 60) -> PinpointeJobs:
    http = httpx.Client(transport=httpx.MockTransport(answer))
    return PinpointeJobs(account(), http=http, now=lambda: now, not_found_grace_seconds=grace)


def job(**fields) -> Job:
    defaults = {
        "job_id": "job-1",
        "operation": "pinpointe.list_subscribers",
        "vendor": "pinpointe",
        "deadline_at": T0 + timedelta(hours=12),
        "params": {"list": ["12"]},
        "vendor_ref": {"jobid": "555", "requestmethod": "GetListSubscribersAsync", "started_at": T0.isoformat()},
    }
    return Job(**{**defaults, **fields})


def api_answer(payload: object, status: int = 200) -> Answer:
    return lambda request: httpx.Response(status, json=payload)


def streamed(body: bytes, **headers: str) -> httpx.Response:
    """A body that arrives over the wire, as a real download does (and counts in its byte tally)."""
    return httpx.Response(200, headers={"Content-Length": str(len(body)), **headers}, stream=httpx.ByteStream(body))


def test_start_sends_the_documented_envelope():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "SUCCESS", "data": {"jobid": "555"}})

    outcome = adapter(answer).start(job(vendor_ref={}), HOOK)
    (request,) = seen
    assert str(request.url) == "https://na01.mypinpointe.com/apijson.php" and request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "username": "u@example.org",
        "usertoken": TOKEN,
        "requesttype": "Lists",
        "requestmethod": "GetListSubscribersAsync",
        "details": {
            "list": ["12"],
            "status": "any",
            "include_membership": "false",
            "notify": {"type": "webhook", "value": HOOK},
        },
    }
    assert TOKEN not in str(request.headers) and TOKEN not in str(request.url)
    assert outcome.vendor_ref == job().vendor_ref  # jobid, requestmethod, started_at


@pytest.mark.parametrize(
    ("status", "payload"),
    [(401, {"status": "FAILED", "errormessage": "Unable to verify user credentials"}),
     (200, {"status": "FAILED", "errormessage": "Unable to verify user credentials"}),
     (400, {"response": {"status": "ERROR", "errormessage": "unable to verify user credentials."}})],
)
def test_refused_credentials_are_rejected_without_showing_the_token(status, payload):
    with pytest.raises(VendorRejected, match="username and usertoken") as raised:
        adapter(api_answer(payload, status)).start(job(), HOOK)
    assert TOKEN not in str(raised.value)


def test_a_refused_start_carries_pinpointe_s_reason():
    with pytest.raises(VendorRejected, match="Invalid list id"):
        adapter(api_answer({"status": "FAILED", "errormessage": "Invalid list id"}, 400)).start(job(), HOOK)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda r: httpx.Response(429), VendorTransientError),
        (lambda r: httpx.Response(502, text="Bad gateway"), VendorTransientError),
        (lambda r: httpx.Response(404, text="<html>Not found</html>"), VendorRejected),
        (lambda r: httpx.Response(400, text="<html>Bad request</html>"), VendorProtocolError),
        (lambda r: httpx.Response(200, json=["SUCCESS"]), VendorProtocolError),
        (lambda r: httpx.Response(200, json={"status": "MAYBE"}), VendorProtocolError),
    ],
)
def test_http_answers_map_to_step_errors(answer, error):
    with pytest.raises(error):
        adapter(answer).start(job(), HOOK)


def test_transport_failures_are_transient():
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(VendorTransientError, match="ConnectError"):
        adapter(answer).poll(job())


def test_poll_follows_pagination_to_find_the_job():
    ours = {"jobid": "555", "status": "complete", "url": "https://na01.mypinpointe.com/555.json"}
    pages = {
        "0": {"status": "SUCCESS", "data": {"jobs": [{"jobid": "1"}], "pagination": {"next": "1"}}},
        "1": {"status": "SUCCESS", "data": {"jobs": [ours], "pagination": {"next": "0"}}},
    }
    asked: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        details = json.loads(request.content)["details"]
        asked.append(details)
        return httpx.Response(200, json=pages[details["pagination"]["next"]])

    outcome = adapter(answer).poll(job())
    assert outcome.state is VendorState.DONE and outcome.raw_status == "complete"
    assert outcome.vendor_ref_updates == {"result_url": "https://na01.mypinpointe.com/555.json"}
    assert [a["jobids"] for a in asked] == [["555"], ["555"]]
    assert [a["pagination"] for a in asked] == [{"limit": "100", "next": "0"}, {"limit": "100", "next": "1"}]


def test_endless_pagination_is_a_protocol_error():
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"status": "SUCCESS", "data": {"jobs": [], "pagination": {"next": "5"}}})

    with pytest.raises(VendorProtocolError, match="did not end"):
        adapter(answer).poll(job())
    assert len(calls) == MAX_STATUS_PAGES


def test_a_failed_job_is_reported_with_pinpointe_s_reason():
    failed = {"jobid": "555", "status": "failed", "errormessage": "out of memory"}
    payload = {"status": "SUCCESS", "data": {"jobs": [failed]}}
    outcome = adapter(api_answer(payload)).poll(job())
    assert (outcome.state, outcome.raw_status, outcome.message) == (VendorState.FAILED, "failed", "out of memory")


@pytest.mark.parametrize(
    ("status", "payload"),
    [(400, {"status": "FAILED", "errormessage": "Jobs not found"}),
     (200, {"status": "SUCCESS", "data": {"jobs": [{"jobid": "999", "status": "waiting"}]}})],
)
def test_an_unlisted_job_is_running_within_the_grace_period_and_failed_after(status, payload):
    inside = adapter(api_answer(payload, status), now=T0 + timedelta(seconds=59), grace=60).poll(job())
    assert inside.state is VendorState.RUNNING and "does not list job 555 yet" in inside.progress.note
    with pytest.raises(VendorJobFailed, match="no longer knows job 555"):
        adapter(api_answer(payload, status), now=T0 + timedelta(seconds=61), grace=60).poll(job())


def test_other_status_failures_are_rejections():
    with pytest.raises(VendorRejected, match="Invalid pagination"):
        adapter(api_answer({"status": "FAILED", "errormessage": "Invalid pagination"}, 400)).poll(job())


class ListResults:
    """A result store that keeps the chunks it was given."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def put_stream(self, job_id, name, chunks, content_type) -> StoredFile:
        self.chunks.extend(chunks)
        return StoredFile(name=name, s3_uri=f"mem://{job_id}/{name}", size=sum(map(len, self.chunks)), sha256="0" * 64)

    def put_bytes(self, job_id, name, data, content_type) -> StoredFile:
        return self.put_stream(job_id, name, [data], content_type)

    def download_url(self, s3_uri: str) -> str:
        return s3_uri


def with_link(url: str, key: str = "result_url") -> Job:
    base = job()
    return job(vendor_ref={**base.vendor_ref, key: url})


def test_collect_uses_the_webhook_link_when_the_status_gave_none():
    results = ListResults()
    answer = lambda r: streamed(b'{"count": 0, "subscribers": []}')  # noqa: E731
    linked = with_link("https://files.mypinpointe.com/555.json", "webhook_result_url")
    outcome = adapter(answer).collect(linked, results)
    assert results.chunks == [b'{"count": 0, "subscribers": []}'] and outcome.result.size == 31
    assert outcome.result.files[0].name == "result.json"


def test_collect_without_a_link_is_a_protocol_error():
    with pytest.raises(VendorProtocolError, match="no result link"):
        adapter(api_answer({})).collect(job(), ListResults())


def test_collect_follows_redirects_only_to_allowed_hosts():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "na01.mypinpointe.com":
            return httpx.Response(302, headers={"Location": "https://cdn.pinpointe.com/555.json"})
        if request.url.host == "cdn.pinpointe.com":
            return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest"})
        raise AssertionError(f"followed a link to {request.url}")

    with pytest.raises(VendorProtocolError, match="scheme"):
        adapter(answer).collect(with_link("https://na01.mypinpointe.com/555.json"), ListResults())


def test_a_download_shorter_than_its_content_length_is_transient():
    answer = lambda r: streamed(b"x" * 10, **{"Content-Length": "100"})  # noqa: E731
    with pytest.raises(VendorTransientError, match="cut: 10 of 100 bytes"):
        adapter(answer).collect(with_link("https://na01.mypinpointe.com/555.json"), ListResults())


def test_a_compressed_download_is_stored_decoded_and_not_mistaken_for_a_cut_one():
    document = b'{"count": 1000, "subscribers": [' + b",".join([b'{"email":"a@example.org"}'] * 1000) + b"]}"
    answer = lambda r: streamed(gzip.compress(document), **{"Content-Encoding": "gzip"})  # noqa: E731
    results = ListResults()
    adapter(answer).collect(with_link("https://na01.mypinpointe.com/555.json"), results)
    assert b"".join(results.chunks) == document


@pytest.mark.parametrize(
    ("status", "error"), [(503, VendorTransientError), (404, VendorProtocolError), (410, VendorProtocolError)]
)
def test_download_statuses(status, error):
    jobs = adapter(lambda r: httpx.Response(status))
    with pytest.raises(error, match=f"HTTP {status}"):
        jobs.collect(with_link("https://na01.mypinpointe.com/555.json"), ListResults())


def test_start_needs_a_webhook_url_and_valid_params():
    jobs = adapter(api_answer({"status": "SUCCESS", "data": "1"}))
    with pytest.raises(ValueError, match="webhook URL"):
        jobs.start(job(), None)
    with pytest.raises(VendorRejected, match=r"params\.list"):
        jobs.start(job(params={"list": []}), HOOK)
    with pytest.raises(ValueError, match="not a Pinpointe operation"):
        jobs.start(job(operation="which50.contact_import"), HOOK)


def test_the_port_basics():
    jobs = adapter(api_answer({}))
    assert jobs.wait_mode is WaitMode.WEBHOOK and jobs.cancel(job()) is False


def test_account_secrets():
    assert account(base_url="https://na01.mypinpointe.com/apijson.php").base_url == "https://na01.mypinpointe.com"
    assert account(base_url="http://127.0.0.1:3100/", allow_http=True).base_url == "http://127.0.0.1:3100"
    plain_http = {"base_url": "http://na01.mypinpointe.com", "username": "u", "usertoken": TOKEN}
    with pytest.raises(VendorRejected, match="base_url") as raised:
        pinpointe_jobs(plain_http, not_found_grace_seconds=1)
    assert TOKEN not in str(raised.value)
    with pytest.raises(VendorRejected, match="usertoken"):
        numeric_token = {**plain_http, "base_url": "https://na01.mypinpointe.com", "usertoken": 12345}
        pinpointe_jobs(numeric_token, not_found_grace_seconds=1)
    assert TOKEN not in repr(account())


def test_no_log_line_carries_the_token(caplog):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(".json"):
            return streamed(b"{}")
        if json.loads(request.content)["requestmethod"] == "AsyncJobStatus":
            listed = {"jobid": "555", "url": "https://a.pinpointe.com/r.json"}
            return httpx.Response(200, json={"status": "SUCCESS", "data": {"jobs": [listed]}})
        return httpx.Response(200, json={"status": "SUCCESS", "data": {"jobid": "555"}})

    jobs = adapter(answer)
    with caplog.at_level(logging.DEBUG):
        jobs.start(job(), HOOK)
        jobs.collect(with_link(jobs.poll(job()).vendor_ref_updates["result_url"]), ListResults())
    assert "555" in caplog.text and TOKEN not in caplog.text
