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
from pydantic import SecretStr

from jobrelay.domain.errors import (
    InvalidRequest,
    VendorJobFailed,
    VendorOutcomeUnknown,
    VendorProtocolError,
    VendorRejected,
    VendorTransientError,
    VendorUnavailable,
)
from jobrelay.domain.job import Job, StoredFile, WebhookNotice
from jobrelay.domain.operation import OperationKind
from jobrelay.domain.request_retries import RequestRetry
from jobrelay.domain.vendor_outcomes import VendorState, WaitMode
from jobrelay.operations import OPERATIONS
from jobrelay.vendors.pinpointe import client as pinpointe_client
from jobrelay.vendors.pinpointe import params as p
from jobrelay.vendors.pinpointe.adapter import (
    AutoresponderResultsRef,
    ExportRef,
    PinpointeAccount,
    PinpointeAutoresponderResults,
    PinpointeExports,
    pinpointe_autoresponder_results,
    pinpointe_exports,
)
from jobrelay.vendors.pinpointe.api import (
    ApiResponse,
    JobEntry,
    ResultsPage,
    StartedJob,
    async_details,
    autoresponder_details,
    find_job,
    job_entries,
    next_page,
    parse_webhook,
    status_page,
    vendor_state,
    wire_value,
)
from jobrelay.vendors.pinpointe.client import MAX_STATUS_PAGES, ResultLinkPolicy, host_allowed
from jobrelay.vendors.pinpointe.manifest import MANIFEST
from jobrelay.vendors.registry import load

HOOK = "https://api.example.org/webhooks/pinpointe/job-1/token"
TOKEN = "tok-3b1f9c-very-secret"
T0 = datetime(2025, 8, 13, 16, 32, tzinfo=UTC)

# --- the status table (docs/VENDORS.md 1.6 guidance a-e) --------------------------------------------------


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
    ("word", "state"),
    [
        ("waiting", VendorState.RUNNING),
        ("PROCESSING", VendorState.RUNNING),
        ("Queued", VendorState.RUNNING),
        ("COMPLETE", VendorState.DONE),
        ("failed", VendorState.FAILED),
        (None, VendorState.DONE),
        ("", VendorState.DONE),
        ("archived", VendorState.DONE),
    ],
)
def test_a_result_link_finishes_a_job_only_when_its_word_says_nothing_we_know(word, state):
    """Rule 3 (issue 9): done means the status word says done; a link counts only without a known word."""
    assert vendor_state(word, has_result_link=True) is state


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("COMPLETE", VendorState.DONE),
        ("Completed", VendorState.DONE),
        ("Done", VendorState.DONE),
        ("FINISHED", VendorState.DONE),
        ("Success", VendorState.DONE),
        ("succeeded", VendorState.DONE),
        ("Failed", VendorState.FAILED),
        ("ERROR", VendorState.FAILED),
        ("Cancelled", VendorState.FAILED),
        ("Waiting", VendorState.RUNNING),
        ("PENDING", VendorState.RUNNING),
        ("in_progress", VendorState.RUNNING),
        ("Running", VendorState.RUNNING),
        ("QUEUED", VendorState.RUNNING),
        ("Started", VendorState.RUNNING),
    ],
)
def test_status_synonyms_in_any_casing(word, state):
    assert vendor_state(word, has_result_link=False) is state


def test_job_entries_read_assumed_key_variants():
    link = "https://na01.mypinpointe.com/f.json"
    entry = JobEntry.model_validate({"jobId": 42, "Status": "Waiting", "Link": link})
    assert (entry.jobid, entry.result_url, entry.state) == ("42", link, VendorState.RUNNING)  # the word decides
    assert JobEntry.model_validate({"job_id": "7", "status": "waiting", "url": ""}).state is VendorState.RUNNING
    done = JobEntry.model_validate({"JOBID": "8", "STATUS": "Complete", "URL": link, "ErrorMessage": None, "Count": "12"})
    assert (done.jobid, done.state, done.result_url, done.count) == ("8", VendorState.DONE, link, 12)


@pytest.mark.parametrize("percent", [100, "100", 99])
def test_a_percentage_never_finishes_a_running_job(percent):
    entry = JobEntry.model_validate({"jobid": "1", "status": "processing", "percent": percent})
    assert entry.state is VendorState.RUNNING and entry.percent == int(percent)


# --- params -> details (docs/VENDORS.md 1.1, 1.4, 1.5) ------------------------------------------------------


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
    [
        (None, None),
        (True, "true"),
        (False, "false"),
        (7, "7"),
        (1.5, "1.5"),
        (date(2025, 3, 9), "20250309"),
        ("", None),
        ([], None),
        ([None, 3, ""], ["3"]),
        ("x", "x"),
    ],
)
def test_wire_values(value, wire):
    assert wire_value(value) == wire


def test_every_pinpointe_operation_has_its_call():
    pinpointe_operations = {name for name, op in OPERATIONS.items() if op.vendor == "pinpointe"}
    assert {op.name for op in MANIFEST.operations} == pinpointe_operations
    kinds = {op.name: op.kind for op in MANIFEST.operations}
    assert {name for name, kind in kinds.items() if kind is not OperationKind.ASYNC_EXPORT} == {AR_OPERATION}
    assert kinds[AR_OPERATION] is OperationKind.PAGED_READ  # synchronous, read page by page: collected at once
    factories = {op.name: load(op.adapter) for op in MANIFEST.operations}
    assert factories.pop(AR_OPERATION) is pinpointe_autoresponder_results
    assert set(factories.values()) == {pinpointe_exports}
    exported = {op.name: op.params_model for op in MANIFEST.operations if op.kind is OperationKind.ASYNC_EXPORT}
    calls = {op: (m.async_method.requesttype, m.async_method.requestmethod) for op, m in exported.items()}
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
    [
        "123",
        123,
        {"jobid": "123"},
        {"job_id": 123},
        {"jobId": "123"},
        {"id": "123", "elapsed": "0.1"},
        {"Jobid": "123"},
        {"JOBID": 123},
        {"JobID": "123", "Elapsed": "0.1"},
        {"Id": "123"},
    ],
)
def test_start_answers_give_the_job_id_under_any_assumed_key_in_any_casing(data):
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
        {"Jobs": [{"JobId": "1", "Status": "waiting"}]},
        {"job": {"jobid": "1", "status": "waiting"}},
        {"jobid": "1", "status": "waiting"},
        {"jobid": "1", "status": "waiting", "pagination": {"next": "0"}},
        {"1": {"status": "waiting"}},  # keyed by job id, the id not repeated inside
        {"1": {"status": "waiting"}, "pagination": {"next": "0"}},
        {"jobs": {"1": {"status": "waiting"}}},
        {"ITEMS": {"1": {"jobid": "1", "status": "waiting"}}},
    ],
)
def test_status_pages_find_entries_in_every_assumed_place(data):
    page = status_page(ApiResponse(status="SUCCESS", data=data))
    assert [(e.jobid, e.status) for e in page.records] == [("1", "waiting")] and page.more is False


def test_status_data_keyed_by_job_id_finds_our_finished_job():
    link = "https://na01.mypinpointe.com/555.json"
    data = {"554": {"status": "waiting"}, "555": {"status": "Complete", "url": link}}
    ours = find_job(status_page(ApiResponse(status="SUCCESS", data=data)).records, "555")
    assert ours is not None and ours.state is VendorState.DONE and ours.result_url == link


@pytest.mark.parametrize(
    ("body", "more", "vendor_next", "cursor"),
    [
        ({"status": "SUCCESS", "data": {"jobs": [], "pagination": {"next": "50"}}}, True, 50, None),
        ({"status": "SUCCESS", "data": {"jobs": []}, "pagination": {"next": 50}}, True, 50, None),
        ({"status": "SUCCESS", "data": {"jobs": []}, "Pagination": {"Next": "50"}}, True, 50, None),
        ({"status": "SUCCESS", "data": {"jobs": [], "pagination": {"next": "0"}}}, False, None, None),
        ({"status": "SUCCESS", "data": {"jobs": [], "pagination": {}}}, False, None, None),
        ({"status": "SUCCESS", "data": {"jobs": []}}, False, None, None),
        ({"status": "SUCCESS", "data": {"jobs": [], "pagination": {"next": "c2Vlaw=="}}}, True, None, "c2Vlaw=="),
    ],
)
def test_pagination_next_is_read_inside_or_beside_data(body, more, vendor_next, cursor):
    following = next_page(ApiResponse.from_body(body, "API/AsyncJobStatus"))
    assert (following.more, following.vendor_next, following.cursor) == (more, vendor_next, cursor)


def test_unreadable_status_entries_are_protocol_errors_with_an_excerpt():
    with pytest.raises(VendorProtocolError) as raised:
        job_entries({"jobs": ["just a string"]})
    assert "just a string" in raised.value.answer
    with pytest.raises(VendorProtocolError) as raised:
        job_entries("nothing")
    assert raised.value.answer == "nothing"


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
    ["na01.mypinpointe.com", "a.b.mypinpointe.com", "NA01.MyPinpointe.COM", "files.pinpointe.com", "na01.mypinpointe.com."],
)
def test_hosts_on_the_allowlist(host):
    assert host_allowed(host, DEFAULT_HOSTS)


@pytest.mark.parametrize(
    "host",
    [
        "mypinpointe.com.evil.org",
        "na01.mypinpointe.com.evil.org",
        "evilmypinpointe.com",
        "mypinpointe.com",
        "",
        "127.0.0.1",
        "169.254.169.254",
        "na01.mypinpointe.co",
    ],
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
    [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2]",
        b"null",
        b'"text"',
        b"{",
        b"[" * 100_000,
        b'{"jobid": {"x": 1}, "url": ["a"], "status": 3.5e400}',
        b'{"response": "x", "data": 1}',
    ],
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


# The retries' backoff (domain/request_retries.py) is recorded, never slept.
NO_WAIT = RequestRetry(sleep=lambda seconds: None)


def exporter(answer: Answer, *, now: datetime = T0, grace: int = 60) -> PinpointeExports:
    http = httpx.Client(transport=httpx.MockTransport(answer))
    return PinpointeExports(account(), http=http, now=lambda: now, not_found_grace_seconds=grace, retry=NO_WAIT)


def reader(answer: Answer) -> PinpointeAutoresponderResults:
    http = httpx.Client(transport=httpx.MockTransport(answer))
    return PinpointeAutoresponderResults(account(), http=http, now=lambda: T0, not_found_grace_seconds=60, retry=NO_WAIT)


# The reference of the started export every export job below carries unless told otherwise.
REF = ExportRef(jobid="555", requestmethod="GetListSubscribersAsync", started_at=T0)


def job(ref: ExportRef | None = REF, **fields) -> Job:
    """A job of ours; it carries `ref` as a job item does: the public fields, then the secret ones."""
    defaults = {
        "job_id": "job-1",
        "operation": "pinpointe.list_subscribers",
        "vendor": "pinpointe",
        "deadline_at": T0 + timedelta(hours=12),
        "params": {"list": ["12"]},
        "vendor_ref": ref.shown() if ref else {},
        "vendor_secrets": ref.secrets() if ref else {},
    }
    return Job(**{**defaults, **fields})


def linked_ref(url: str, status_count: int | None = None) -> ExportRef:
    """REF once AsyncJobStatus gave a result link (and perhaps a count)."""
    return REF.model_copy(update={"result_url": SecretStr(url), "status_count": status_count})


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

    outcome = exporter(answer).start(job(None), HOOK)
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
    assert outcome.vendor_ref == REF  # jobid, requestmethod, started_at
    assert outcome.vendor_ref.shown() == job().vendor_ref and outcome.vendor_ref.secrets() == {}


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (401, {"status": "FAILED", "errormessage": "Unable to verify user credentials"}),
        (200, {"status": "FAILED", "errormessage": "Unable to verify user credentials"}),
        (400, {"response": {"status": "ERROR", "errormessage": "unable to verify user credentials."}}),
    ],
)
def test_refused_credentials_are_rejected_without_showing_the_token(status, payload):
    with pytest.raises(VendorRejected, match="username and usertoken") as raised:
        exporter(api_answer(payload, status)).start(job(), HOOK)
    assert TOKEN not in str(raised.value)


def test_a_refused_start_carries_pinpointe_s_reason():
    with pytest.raises(VendorRejected, match="Invalid list id"):
        exporter(api_answer({"status": "FAILED", "errormessage": "Invalid list id"}, 400)).start(job(), HOOK)


HTTP_ANSWERS = [
    (lambda r: httpx.Response(429), VendorTransientError, VendorTransientError),
    (lambda r: httpx.Response(502, text="Bad gateway"), VendorTransientError, VendorTransientError),
    (lambda r: httpx.Response(404, text="<html>Not found</html>"), VendorRejected, VendorRejected),
    (lambda r: httpx.Response(400, text="<html>Bad request</html>"), VendorOutcomeUnknown, VendorProtocolError),
    (lambda r: httpx.Response(200, json=["SUCCESS"]), VendorOutcomeUnknown, VendorProtocolError),
    (lambda r: httpx.Response(200, json={"status": "MAYBE"}), VendorOutcomeUnknown, VendorProtocolError),
    (lambda r: httpx.Response(200, json={"data": {"jobid": "1"}}), VendorOutcomeUnknown, VendorProtocolError),
]


@pytest.mark.parametrize(("answer", "on_start", "on_poll"), HTTP_ANSWERS)
def test_http_answers_map_to_step_errors(answer, on_start, on_poll):
    """An answer we cannot read to the start may hide a started export: never retried (rule 6). The
    same answer to a poll only costs a poll: retried as a protocol error."""
    with pytest.raises(on_start) as started:
        exporter(answer).start(job(), HOOK)
    with pytest.raises(on_poll) as polled:
        exporter(answer).poll(job())
    for raised in (started.value, polled.value):
        if isinstance(raised, VendorOutcomeUnknown | VendorProtocolError):
            assert raised.answer and raised.code == "VENDOR_PROTOCOL"
    if on_start is VendorOutcomeUnknown:
        assert "may have started an export for Lists/GetListSubscribersAsync" in str(started.value)
        assert "not sent again" in str(started.value)


@pytest.mark.parametrize("data", [{"elapsed": "0.1", "timestamp": "2025-08-13T16:32:00Z"}, None, {"job": "1"}, {"jobid": ""}])
def test_a_start_answered_without_a_job_id_is_an_unknown_outcome_with_the_answer_redacted(data):
    answer = api_answer({"status": "SUCCESS", "data": data, "echo": {"usertoken": TOKEN, "note": f"token {TOKEN}"}})
    with pytest.raises(VendorOutcomeUnknown, match="carries no job id") as raised:
        exporter(answer).start(job(), HOOK)
    assert TOKEN not in raised.value.answer and TOKEN not in str(raised.value)


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (httpx.ReadTimeout("timed out"), VendorOutcomeUnknown),
        (httpx.RemoteProtocolError("dropped"), VendorOutcomeUnknown),
        (httpx.ReadError("reset"), VendorOutcomeUnknown),
        (httpx.ConnectError("refused"), VendorTransientError),
        (httpx.ConnectTimeout("no route"), VendorTransientError),
    ],
)
def test_a_start_without_an_answer_is_never_repeated_unless_it_never_left(failure, error):
    def answer(request: httpx.Request) -> httpx.Response:
        failure.request = request
        raise failure

    with pytest.raises(error) as raised:
        exporter(answer).start(job(), HOOK)
    assert isinstance(raised.value, VendorOutcomeUnknown) is (error is VendorOutcomeUnknown)


def test_transport_failures_are_transient():
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(VendorTransientError, match="ConnectError"):  # the state machine retries a poll
        exporter(answer).poll(job())


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

    outcome = exporter(answer).poll(job())
    assert outcome.state is VendorState.DONE and outcome.raw_status == "complete"
    assert outcome.vendor_ref == linked_ref("https://na01.mypinpointe.com/555.json")  # only the link is new
    assert outcome.vendor_ref.secrets() == {"result_url": "https://na01.mypinpointe.com/555.json"}
    assert "result_url" not in outcome.vendor_ref.shown()  # a capability link: kept apart, never shown
    assert [a["jobids"] for a in asked] == [["555"], ["555"]]
    assert [a["pagination"] for a in asked] == [{"limit": "100", "next": "0"}, {"limit": "100", "next": "1"}]


def test_endless_pagination_is_a_protocol_error():
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        entry = {"jobid": str(len(calls)), "status": "waiting"}  # a new job on every page, and always a next
        return httpx.Response(200, json={"status": "SUCCESS", "data": {"jobs": [entry], "pagination": {"next": "500"}}})

    with pytest.raises(VendorProtocolError, match="did not end") as raised:
        exporter(answer).poll(job())
    assert len(calls) == MAX_STATUS_PAGES and raised.value.answer


def test_a_status_page_that_repeats_is_a_protocol_error_not_a_loop():
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"status": "SUCCESS", "data": {"jobs": [{"jobid": "1"}], "pagination": {"next": "1"}}})

    with pytest.raises(VendorProtocolError, match="repeats"):
        exporter(answer).poll(job())
    assert len(calls) == 2


def test_an_empty_status_page_ends_the_pages_whatever_its_next():
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"status": "SUCCESS", "data": {"jobs": [], "pagination": {"next": "5"}}})

    assert exporter(answer).poll(job()).state is VendorState.RUNNING  # not listed yet, within the grace period
    assert len(calls) == 1


def test_status_pages_capped_below_the_limit_ask_from_the_entries_received():
    asked: list[str] = []
    listed = [{"jobid": str(n), "status": "waiting"} for n in range(550, 556)]
    listed[-1] = {"jobid": "555", "status": "complete", "url": "https://na01.mypinpointe.com/555.json"}

    def answer(request: httpx.Request) -> httpx.Response:
        start = int(json.loads(request.content)["details"]["pagination"]["next"])
        asked.append(str(start))
        page = listed[start : start + 4]  # at most 4 a page, whatever limit was asked
        following = str(start + len(page)) if start + len(page) < len(listed) else "0"
        return httpx.Response(200, json={"status": "SUCCESS", "data": {"jobs": page, "pagination": {"next": following}}})

    assert exporter(answer).poll(job()).state is VendorState.DONE and asked == ["0", "4"]


def test_an_unknown_status_word_is_running_and_keeps_a_redacted_excerpt_of_the_entry():
    entry = {"jobid": "555", "status": "Thinking", "url": f"https://na01.mypinpointe.com/555.json?token={TOKEN}"}
    outcome = exporter(api_answer({"status": "SUCCESS", "data": {"jobs": [entry]}})).poll(job())
    # The link is honoured for an unknown word (rule 3), and the entry is kept for the timeline.
    assert outcome.state is VendorState.DONE and outcome.raw_status == "Thinking"
    assert "Thinking" in outcome.unknown_status_answer and TOKEN not in outcome.unknown_status_answer
    running = exporter(api_answer({"status": "SUCCESS", "data": {"555": {"status": "Thinking"}}})).poll(job())
    assert running.state is VendorState.RUNNING and '"Thinking"' in running.unknown_status_answer


def test_a_running_word_with_a_link_and_100_percent_stays_running():
    entry = {"jobid": "555", "status": "PROCESSING", "url": "https://na01.mypinpointe.com/555.json", "percent": "100"}
    outcome = exporter(api_answer({"status": "SUCCESS", "data": {"jobs": [entry]}})).poll(job())
    assert outcome.state is VendorState.RUNNING and outcome.progress.percent == 100
    assert outcome.unknown_status_answer is None and outcome.vendor_ref is None  # nothing to keep yet


def test_a_finished_entry_s_count_is_kept_for_collect():
    entry = {"JobId": "555", "Status": "Finished", "Url": "https://na01.mypinpointe.com/555.json", "Records": "42"}
    outcome = exporter(api_answer({"status": "SUCCESS", "data": {"jobs": [entry]}})).poll(job())
    assert outcome.vendor_ref == linked_ref("https://na01.mypinpointe.com/555.json", status_count=42)
    assert outcome.vendor_ref.shown() == {**REF.shown(), "status_count": 42}
    assert outcome.vendor_ref.secrets() == {"result_url": "https://na01.mypinpointe.com/555.json"}


def test_a_failed_job_is_reported_with_pinpointe_s_reason():
    failed = {"jobid": "555", "status": "failed", "errormessage": "out of memory"}
    payload = {"status": "SUCCESS", "data": {"jobs": [failed]}}
    outcome = exporter(api_answer(payload)).poll(job())
    assert (outcome.state, outcome.raw_status, outcome.message) == (VendorState.FAILED, "failed", "out of memory")


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (400, {"status": "FAILED", "errormessage": "Jobs not found"}),
        (200, {"status": "SUCCESS", "data": {"jobs": [{"jobid": "999", "status": "waiting"}]}}),
    ],
)
def test_an_unlisted_job_is_running_within_the_grace_period_and_failed_after(status, payload):
    inside = exporter(api_answer(payload, status), now=T0 + timedelta(seconds=59), grace=60).poll(job())
    assert inside.state is VendorState.RUNNING and "does not list job 555 yet" in inside.progress.note
    with pytest.raises(VendorJobFailed, match="no longer knows job 555"):
        exporter(api_answer(payload, status), now=T0 + timedelta(seconds=61), grace=60).poll(job())


def test_other_status_failures_are_rejections():
    with pytest.raises(VendorRejected, match="Invalid pagination"):
        exporter(api_answer({"status": "FAILED", "errormessage": "Invalid pagination"}, 400)).poll(job())


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


def with_link(url: str) -> Job:
    return job(linked_ref(url))


def test_collect_uses_the_webhook_link_when_the_status_gave_none():
    results = NamedResults()
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return streamed(b'{"count": 0, "subscribers": []}')

    notice = WebhookNotice(jobid="555", status="complete", result_url="https://files.mypinpointe.com/555.json")
    outcome = exporter(answer).collect(job(webhook_notice=notice), results)
    assert asked == ["https://files.mypinpointe.com/555.json"]
    assert results.files["result.json"] == b'{"count": 0, "subscribers": []}' and outcome.result.size == 31
    assert [f.name for f in outcome.result.files] == ["result.json", "summary.json"]
    assert results.summary()["reconciliation"]["reconciled"] is True and not outcome.partial


def test_collect_prefers_the_status_link_to_the_webhook_s():
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return streamed(b'{"count": 0, "subscribers": []}')

    notice = WebhookNotice(jobid="555", result_url="https://files.mypinpointe.com/from-the-webhook.json")
    linked = with_link("https://na01.mypinpointe.com/555.json").model_copy(update={"webhook_notice": notice})
    exporter(answer).collect(linked, NamedResults())
    assert asked == ["https://na01.mypinpointe.com/555.json"]


@pytest.mark.parametrize("notice", [None, WebhookNotice(jobid="555", status="complete")])
def test_collect_without_a_link_is_a_protocol_error(notice):
    with pytest.raises(VendorProtocolError, match="no result link"):
        exporter(api_answer({})).collect(job(webhook_notice=notice), ListResults())


@pytest.mark.parametrize("stored", [{}, {"requestmethod": "GetListSubscribersAsync"}, {"jobid": "555", "started_at": "x"}])
def test_a_job_without_a_usable_export_reference_is_a_protocol_error(stored):
    jobs = exporter(api_answer({}))
    for step in (jobs.poll, lambda j: jobs.collect(j, ListResults())):
        with pytest.raises(VendorProtocolError, match="no usable ExportRef"):
            step(job(None, vendor_ref=stored))


def test_collect_follows_redirects_only_to_allowed_hosts():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "na01.mypinpointe.com":
            return httpx.Response(302, headers={"Location": "https://cdn.pinpointe.com/555.json"})
        if request.url.host == "cdn.pinpointe.com":
            return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest"})
        raise AssertionError(f"followed a link to {request.url}")

    with pytest.raises(VendorProtocolError, match="scheme"):
        exporter(answer).collect(with_link("https://na01.mypinpointe.com/555.json"), ListResults())


def test_a_download_shorter_than_its_content_length_is_transient():
    """A cut file is asked for again (transient), not mistaken for one that is not JSON; one that is
    cut at the same byte every time makes no progress and ends as an unavailable vendor."""
    answer = lambda r: streamed(b'{"count": 9, "subscribers": [', **{"Content-Length": "100"})  # noqa: E731
    with pytest.raises(VendorUnavailable, match="cut: 29 of 100 bytes"):
        exporter(answer).collect(with_link("https://na01.mypinpointe.com/555.json"), ListResults())


def test_a_compressed_download_is_stored_decoded_and_not_mistaken_for_a_cut_one():
    document = b'{"count": 1000, "subscribers": [' + b",".join([b'{"email":"a@example.org"}'] * 1000) + b"]}"
    answer = lambda r: streamed(gzip.compress(document), **{"Content-Encoding": "gzip"})  # noqa: E731
    results = NamedResults()
    outcome = exporter(answer).collect(with_link("https://na01.mypinpointe.com/555.json"), results)
    assert results.files["result.json"] == document and results.summary()["records"] == 1000
    assert not outcome.partial


@pytest.mark.parametrize(("status", "error"), [(503, VendorUnavailable), (404, VendorProtocolError), (410, VendorProtocolError)])
def test_download_statuses(status, error):
    jobs = exporter(lambda r: httpx.Response(status))
    with pytest.raises(error, match=f"HTTP {status}"):
        jobs.collect(with_link("https://na01.mypinpointe.com/555.json"), ListResults())


def test_start_needs_a_webhook_url_and_valid_params():
    jobs = exporter(api_answer({"status": "SUCCESS", "data": "1"}))
    with pytest.raises(ValueError, match="webhook URL"):
        jobs.start(job(), None)
    with pytest.raises(VendorRejected, match=r"params\.list"):
        jobs.start(job(params={"list": []}), HOOK)
    with pytest.raises(ValueError, match="not a Pinpointe async export"):
        jobs.start(job(operation="which50.contact_import"), HOOK)
    with pytest.raises(ValueError, match="not a Pinpointe async export"):
        jobs.start(ar_job(all=True), HOOK)  # a paged read is checked and collected, never started


def test_the_port_basics():
    jobs = exporter(api_answer({}))
    assert jobs.wait_mode is WaitMode.WEBHOOK and jobs.cancel(job()) is False
    reads = reader(api_answer({}))
    assert reads.cancel(ar_job(all=True)) is False
    assert account().max_concurrent_jobs == jobs.max_concurrent_jobs == reads.max_concurrent_jobs


def test_account_secrets():
    assert account(base_url="https://na01.mypinpointe.com/apijson.php").base_url == "https://na01.mypinpointe.com"
    assert account(base_url="http://127.0.0.1:3100/", allow_http=True).base_url == "http://127.0.0.1:3100"
    plain_http = {"base_url": "http://na01.mypinpointe.com", "username": "u", "usertoken": TOKEN}
    numeric_token = {**plain_http, "base_url": "https://na01.mypinpointe.com", "usertoken": 12345}
    for factory in (pinpointe_exports, pinpointe_autoresponder_results):
        with pytest.raises(VendorRejected, match="base_url") as raised:
            factory(plain_http, not_found_grace_seconds=1)
        assert TOKEN not in str(raised.value)
        with pytest.raises(VendorRejected, match="usertoken"):
            factory(numeric_token, not_found_grace_seconds=1)
    assert TOKEN not in repr(account())


def test_no_log_line_carries_the_token(caplog):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(".json"):
            return streamed(b'{"count": 0, "subscribers": []}')
        if json.loads(request.content)["requestmethod"] == "AsyncJobStatus":
            listed = {"jobid": "555", "url": "https://a.pinpointe.com/r.json"}
            return httpx.Response(200, json={"status": "SUCCESS", "data": {"jobs": [listed]}})
        return httpx.Response(200, json={"status": "SUCCESS", "data": {"jobid": "555"}})

    jobs = exporter(answer)
    with caplog.at_level(logging.DEBUG):
        jobs.start(job(), HOOK)
        jobs.collect(job(jobs.poll(job()).vendor_ref), ListResults())
    assert "555" in caplog.text and TOKEN not in caplog.text


# --- GetAutoresponderResults (docs/VENDORS.md 1.3, 1.10): params, page readings, paging -------------------------

AR_OPERATION = "pinpointe.autoresponder_results"


def ar_job(**params) -> Job:
    return job(None, operation=AR_OPERATION, params=params or {"all": True})


@pytest.mark.parametrize(
    ("params", "details"),
    [
        ({"autoresponderid": 301}, {"autoresponderid": "301", "grouping": "autoresponder"}),
        ({"autoresponderid": "301", "grouping": "send"}, {"autoresponderid": "301", "grouping": "send"}),
        ({"autorespondername": " Welcome series "}, {"autorespondername": "Welcome series", "grouping": "autoresponder"}),
        ({"all": True, "grouping": "send", "limit": 50}, {"grouping": "send"}),
    ],
)
def test_autoresponder_params_become_details_with_the_one_choice_and_the_grouping(params, details):
    assert autoresponder_details(p.AutoresponderResultsParams.model_validate(params)) == details


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({}, "params", "exactly one of 'autoresponderid', 'autorespondername' or 'all'"),
        ({"all": False}, "params", "exactly one of"),
        ({"autoresponderid": "1", "autorespondername": "x"}, "params", "got autoresponderid and autorespondername"),
        ({"autorespondername": "x", "all": True}, "params", "got autorespondername and all"),
        ({"autoresponderid": "abc"}, "params.autoresponderid", "pattern"),
        ({"autoresponderid": True}, "params.autoresponderid", ""),
        ({"autorespondername": ""}, "params.autorespondername", ""),
        ({"all": True, "grouping": "daily"}, "params.grouping", "'autoresponder' or 'send'"),
        ({"all": True, "limit": 0}, "params.limit", "greater than or equal to 1"),
        ({"all": True, "limit": 10_001}, "params.limit", "less than or equal to 10000"),
        ({"all": True, "limit": True}, "params.limit", "not true or false"),
        ({"all": True, "next": "0"}, "params.next", "Extra inputs"),
    ],
)
def test_autoresponder_params_are_refused_readably_by_field(params, field, words):
    with pytest.raises(InvalidRequest) as caught:
        OPERATIONS[AR_OPERATION].validate_params(params)
    problems = {d["field"]: d["message"] for d in caught.value.details}
    assert field in problems and words in problems[field]


def test_autoresponder_params_defaults_and_schema():
    params = p.AutoresponderResultsParams.model_validate({"autoresponderid": 7})
    assert (params.grouping, params.limit, params.all) == ("autoresponder", 1000, False)
    schema = OPERATIONS[AR_OPERATION].params_schema()
    assert {"autoresponderid", "autorespondername", "all", "grouping", "limit"} <= set(schema["properties"])


RECORD_A, RECORD_B = {"autoresponderid": "1", "emailopens": "5"}, {"autoresponderid": "2", "emailopens": "0"}


@pytest.mark.parametrize(
    ("data", "records"),
    [
        ([RECORD_A, RECORD_B], [RECORD_A, RECORD_B]),
        ({"item": [RECORD_A, RECORD_B], "pagination": {"next": "0"}}, [RECORD_A, RECORD_B]),
        ({"items": [RECORD_A]}, [RECORD_A]),
        ({"results": [RECORD_B], "count": "1"}, [RECORD_B]),
        ({"autoresponders": RECORD_A}, [RECORD_A]),
        ({"item": RECORD_A}, [RECORD_A]),
        ({**RECORD_A, "pagination": {"next": "0"}}, [RECORD_A]),  # data is the one record
        ({"count": "3", **RECORD_A}, [{"count": "3", **RECORD_A}]),  # a record's own fields are kept
        (None, []),
        ("", []),
        ([], []),
        ({}, []),
        ({"item": []}, []),
        ({"item": None, "pagination": {"next": "0"}}, []),
        ({"pagination": {"next": "0"}, "count": "0"}, []),
    ],
)
def test_result_pages_find_records_in_every_assumed_place(data, records):
    page = ResultsPage.from_response(ApiResponse(status="SUCCESS", data=data), "Autoresponders/GetAutoresponderResults")
    assert page.records == records and page.more is False and page.note is None


@pytest.mark.parametrize("data", [["a", "b"], {"item": [RECORD_A, 3]}, 42, "some text", True])
def test_result_records_that_are_not_objects_are_protocol_errors(data):
    with pytest.raises(VendorProtocolError, match="GetAutoresponderResults"):
        ResultsPage.from_response(ApiResponse(status="SUCCESS", data=data), "Autoresponders/GetAutoresponderResults")


@pytest.mark.parametrize(
    "response",
    [
        ApiResponse(status="FAILED", errormessage="No statistical information is available for this autoresponder"),
        ApiResponse(status="ERROR", errormessage="no results"),
        ApiResponse(status="SUCCESS", data="No data"),
    ],
)
def test_a_no_results_answer_is_an_empty_last_page_that_keeps_pinpointe_s_words(response):
    page = ResultsPage.from_response(response, "X/Y")
    assert page.records == [] and page.more is False and page.note and page.note.lower().startswith("no")


@pytest.mark.parametrize(
    ("body", "vendor_next"),
    [
        ({"status": "SUCCESS", "data": {"item": [RECORD_A], "pagination": {"next": "1000"}}}, 1000),
        ({"status": "SUCCESS", "data": {"item": [RECORD_A]}, "pagination": {"next": 1000}}, 1000),
        ({"status": "SUCCESS", "data": {"Item": [RECORD_A], "PAGINATION": {"NEXT": "1000"}}}, 1000),
        ({"status": "SUCCESS", "data": [RECORD_A], "pagination": {"next": "0"}}, None),
        ({"response": {"status": "SUCCESS", "data": {"item": [RECORD_A]}}}, None),
    ],
)
def test_result_pages_read_next_inside_or_beside_data(body, vendor_next):
    page = ResultsPage.from_response(ApiResponse.from_body(body, "X/Y"), "X/Y")
    assert (page.more, page.vendor_next) == (vendor_next is not None, vendor_next) and page.records == [RECORD_A]


@pytest.mark.parametrize(
    ("data", "records"),
    [
        (
            {"item": {"301": {"emailopens": "5"}, "302": {"emailopens": "0"}}},
            [{"autoresponderid": "301", "emailopens": "5"}, {"autoresponderid": "302", "emailopens": "0"}],
        ),
        ({"item": {"301": {"autoresponderid": "301", "emailopens": "5"}}}, [{"autoresponderid": "301", "emailopens": "5"}]),
        (
            {"301": {"emailopens": "5"}, "302": {"emailopens": "0"}, "count": "2", "pagination": {"next": "0"}},
            [{"autoresponderid": "301", "emailopens": "5"}, {"autoresponderid": "302", "emailopens": "0"}],
        ),
        ({"ITEM": RECORD_A, "Count": "1"}, [RECORD_A]),
    ],
)
def test_result_records_keyed_by_id_get_their_id_and_each_is_one_record(data, records):
    page = ResultsPage.from_response(ApiResponse(status="SUCCESS", data=data), "X/Y", id_key="autoresponderid")
    assert page.records == records


@pytest.mark.parametrize(
    ("data", "pagination", "page_count", "total"),
    [
        ({"item": [RECORD_A], "count": "1"}, None, 1, None),
        ({"item": [RECORD_A], "Total": "30"}, None, None, 30),
        ({"item": [RECORD_A], "totalRecords": 30, "count": "1"}, None, 1, 30),
        ({"item": [RECORD_A], "pagination": {"next": "1", "count": "30"}}, None, None, 30),
        ({"item": [RECORD_A]}, {"next": "1", "total": "30"}, None, 30),
        ({**RECORD_A, "count": "7"}, None, None, None),  # one record: its own count is a field, not a count
    ],
)
def test_counts_beside_the_records_are_told_apart(data, pagination, page_count, total):
    page = ResultsPage.from_response(ApiResponse(status="SUCCESS", data=data, pagination=pagination), "X/Y")
    assert (page.page_count, page.total) == (page_count, total)


def paged(records: list[dict], *, wrap: bool = False, seen: list | None = None, faults: dict | None = None) -> Answer:
    """Pinpointe paging `records` by the limit/next it is sent (next "0" after the last page);
    `faults` maps a `next` value to the HTTP status its first call answers."""
    faults = dict(faults or {})

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["requestmethod"] == "GetAutoresponderResults" and body["requesttype"] == "Autoresponders"
        details = body["details"]
        if seen is not None:
            seen.append(details)
        start, limit = int(details["pagination"]["next"]), int(details["pagination"]["limit"])
        if details["pagination"]["next"] in faults:
            return httpx.Response(faults.pop(details["pagination"]["next"]), text="Service Unavailable")
        end = min(start + limit, len(records))
        element = {
            "status": "SUCCESS",
            "data": {"item": records[start:end], "pagination": {"next": str(end) if end < len(records) else "0"}},
        }
        return httpx.Response(200, json={"response": element} if wrap else element)

    return answer


def numbered(count: int) -> list[dict]:
    return [{"sendid": str(n), "autorespondername": "Welcome ✉", "emailopens": str(n % 7)} for n in range(count)]


def stored_lines(results: "ListResults") -> list[dict]:
    return [json.loads(line) for line in b"".join(results.chunks).decode().splitlines()]


class NamedResults(ListResults):
    """Keeps each file's bytes by name (the JSON Lines file and summary.json)."""

    def __init__(self):
        super().__init__()
        self.files: dict[str, bytes] = {}

    def put_stream(self, job_id, name, chunks, content_type) -> StoredFile:
        parts = [bytes(chunk) for chunk in chunks]
        self.files[name] = b"".join(parts)
        if name.endswith(".jsonl"):
            self.chunks = parts
        return StoredFile(
            name=name, s3_uri=f"mem://{job_id}/{name}", size=len(self.files[name]), sha256="0" * 64, content_type=content_type
        )

    def summary(self) -> dict:
        return json.loads(self.files["summary.json"])


@pytest.mark.parametrize("wrap", [False, True])
def test_collect_reads_every_page_in_order_into_json_lines(wrap):
    seen: list[dict] = []
    records = numbered(2500)
    results = NamedResults()
    outcome = reader(paged(records, wrap=wrap, seen=seen)).collect(ar_job(all=True, grouping="send", limit=1000), results)

    assert [d["pagination"] for d in seen] == [
        {"limit": "1000", "next": "0"},
        {"limit": "1000", "next": "1000"},
        {"limit": "1000", "next": "2000"},
    ]
    assert all(set(d) == {"grouping", "pagination"} and d["grouping"] == "send" for d in seen)
    assert stored_lines(results) == records  # every record once, in order, each line a JSON object
    assert len(results.chunks) == 3  # one chunk per page: pages are streamed, not gathered
    assert "✉" in results.files["autoresponder_results.jsonl"].decode()  # written as UTF-8, not escaped
    result = outcome.result
    assert result.s3_uri.endswith("/autoresponder_results.jsonl") and not outcome.partial
    assert [(f.name, f.content_type) for f in result.files] == [
        ("autoresponder_results.jsonl", "application/x-ndjson"),
        ("summary.json", "application/json"),
    ]
    summary = results.summary()
    reconciliation, note = summary.pop("reconciliation"), summary.pop("note")
    assert summary == {
        "operation": AR_OPERATION,
        "all": True,
        "grouping": "send",
        "records": 2500,
        "pages": 3,
        "page_limit": 1000,
        "file": "autoresponder_results.jsonl",
    }
    assert reconciliation == {
        "ours": {"written": 2500, "pages": 3},
        "vendor": {},
        "checks": [],
        "reconciled": None,
        "shortfall": [],
    }  # Pinpointe gave no count: nothing to check
    assert note == "Pinpointe's pages carry no count: the records could not be checked against Pinpointe's counts"


def test_collect_sends_the_one_autoresponder_asked_for():
    seen: list[dict] = []
    reader(paged(numbered(1), seen=seen)).collect(ar_job(autorespondername="Welcome"), NamedResults())
    assert seen == [{"autorespondername": "Welcome", "grouping": "autoresponder", "pagination": {"limit": "1000", "next": "0"}}]


def test_a_page_that_repeats_is_a_protocol_error_not_an_endless_loop():
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        following = "10" if len(calls) % 2 else "20"
        return httpx.Response(200, json={"status": "SUCCESS", "data": {"item": [RECORD_A], "pagination": {"next": following}}})

    with pytest.raises(VendorProtocolError, match="page 2 repeats page 1") as raised:
        reader(answer).collect(ar_job(all=True, limit=10), NamedResults())
    assert len(calls) == 2 and "emailopens" in raised.value.answer


def test_a_cursor_seen_before_is_a_protocol_error():
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        data = {"item": [{"n": len(calls)}], "pagination": {"next": "abc" if len(calls) % 2 else "def"}}
        return httpx.Response(200, json={"status": "SUCCESS", "data": data})

    with pytest.raises(VendorProtocolError, match="'abc' again"):
        reader(answer).collect(ar_job(all=True, limit=10), NamedResults())
    sent = [json.loads(c.content)["details"]["pagination"]["next"] for c in calls]
    assert sent == ["0", "abc", "def"]  # an opaque cursor is sent back as given


def test_pages_that_never_end_stop_at_the_page_cap(monkeypatch):
    monkeypatch.setattr(pinpointe_client, "MAX_RESULT_PAGES", 5)
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        data = {"item": [{"n": len(calls)}], "pagination": {"next": str(len(calls))}}
        return httpx.Response(200, json={"status": "SUCCESS", "data": data})

    with pytest.raises(VendorProtocolError, match="did not end after 5 pages"):
        reader(answer).collect(ar_job(all=True, limit=10), NamedResults())
    assert len(calls) == 5


@pytest.mark.parametrize("fault", [503, 429])
def test_a_5xx_mid_way_asks_for_that_page_again_and_writes_each_record_once(fault):
    records = numbered(25)
    stored = NamedResults()
    reader(paged(records, faults={"10": fault})).collect(ar_job(all=True, limit=10), stored)
    assert stored_lines(stored) == records and stored.summary()["records"] == 25


def test_a_page_that_keeps_timing_out_ends_as_an_unavailable_vendor():
    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["details"]["pagination"]["next"] != "0":
            raise httpx.ReadTimeout("timed out", request=request)
        return paged(numbered(20))(request)

    with pytest.raises(VendorUnavailable, match="page 2 failed 6 times in a row; the last time: .*timed out"):
        reader(answer).collect(ar_job(all=True, limit=10), NamedResults())


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (200, {"status": "SUCCESS", "data": {"item": [], "pagination": {"next": "0"}}}),
        (200, {"status": "SUCCESS", "data": None}),
        (200, {"status": "SUCCESS"}),
        (400, {"status": "FAILED", "errormessage": "No statistical information is available"}),
    ],
)
def test_no_results_are_an_empty_file_and_a_count_of_zero(status, payload):
    results = NamedResults()
    outcome = reader(api_answer(payload, status)).collect(ar_job(autoresponderid="301"), results)
    assert results.files["autoresponder_results.jsonl"] == b"" and outcome.result.size == 0
    summary = results.summary()
    assert (summary["records"], summary["pages"]) == (0, 1)
    assert summary.get("vendor_note") == payload.get("errormessage")


def test_a_refusal_mid_way_is_rejected_with_pinpointe_s_reason():
    with pytest.raises(VendorRejected, match="for autorespondername 'Gone': Autoresponder not found"):
        answer = api_answer({"status": "FAILED", "errormessage": "Autoresponder not found"}, 400)
        reader(answer).collect(ar_job(autorespondername="Gone"), NamedResults())


def test_a_record_json_cannot_hold_is_a_protocol_error():
    answer = lambda r: httpx.Response(  # noqa: E731
        200, content=b'{"status": "SUCCESS", "data": [{"emailopens": NaN}]}', headers={"Content-Type": "application/json"}
    )
    with pytest.raises(VendorProtocolError, match="NaN or Infinity"):
        reader(answer).collect(ar_job(all=True), NamedResults())


def test_check_looks_up_a_named_autoresponder_with_one_record():
    seen: list[dict] = []
    outcome = reader(paged(numbered(3), seen=seen)).check(ar_job(autorespondername="Welcome", grouping="send"))
    assert seen == [{"autorespondername": "Welcome", "grouping": "send", "pagination": {"limit": "1", "next": "0"}}]
    assert outcome.vendor_ref == AutoresponderResultsRef(requesttype="Autoresponders", requestmethod="GetAutoresponderResults")
    assert outcome.vendor_ref.shown() == {"requesttype": "Autoresponders", "requestmethod": "GetAutoresponderResults"}
    assert outcome.vendor_ref.secrets() == {}
    assert "'Welcome' found" in outcome.note


def test_check_for_all_autoresponders_calls_nobody():
    def answer(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no call was expected")

    outcome = reader(answer).check(ar_job(all=True))
    assert isinstance(outcome.vendor_ref, AutoresponderResultsRef) and "all autoresponders" in outcome.note


@pytest.mark.parametrize(
    ("params", "named"),
    [({"autoresponderid": "999"}, "autoresponderid '999'"), ({"autorespondername": "Nope"}, "autorespondername 'Nope'")],
)
def test_check_fails_for_an_autoresponder_pinpointe_does_not_know(params, named):
    answer = api_answer({"status": "FAILED", "errormessage": "Autoresponder not found"}, 400)
    with pytest.raises(VendorRejected, match=f"for {named}: Autoresponder not found"):
        reader(answer).check(ar_job(**params))


def test_check_accepts_an_autoresponder_without_results():
    answer = api_answer({"status": "FAILED", "errormessage": "No statistical information is available"}, 400)
    outcome = reader(answer).check(ar_job(autoresponderid="5"))
    assert isinstance(outcome.vendor_ref, AutoresponderResultsRef) and "has no results" in outcome.note


def test_a_synchronous_read_has_nothing_to_start_or_poll():
    """Its kind (a paged read) is what says "collect at once": the adapter offers no start and no poll,
    so no status call can ever be made for it."""

    def answer(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no call was expected")

    reads = reader(answer)
    assert OPERATIONS[AR_OPERATION].kind is OperationKind.PAGED_READ
    assert not hasattr(reads, "start") and not hasattr(reads, "poll") and not hasattr(reads, "wait_mode")
    assert reads.cancel(ar_job(all=True)) is False


def test_stored_autoresponder_params_that_no_longer_fit_end_the_job():
    with pytest.raises(VendorRejected, match="exactly one of"):
        reader(api_answer({})).collect(ar_job(autoresponderid="1", all=True), NamedResults())


# --- reconciliation (issue 9: no silent shortfall) ---------------------------------------------------------


def counted_pages(records: list[dict], *, cap: int | None = None, lie: bool = False, extra=None) -> Answer:
    """Pinpointe paging `records`, at most `cap` a page; `lie`: its next counts from the limit asked,
    not from the records sent; `extra(start, page, sent_until)` adds keys to `data`."""

    def answer(request: httpx.Request) -> httpx.Response:
        pagination = json.loads(request.content)["details"]["pagination"]
        start, limit = int(pagination["next"]), int(pagination["limit"])
        end = min(start + min(limit, cap or limit), len(records))
        following = start + limit if lie else end
        data = {"item": records[start:end], "pagination": {"next": str(following) if following < len(records) else "0"}}
        data |= extra(start, records[start:end], end) if extra else {}
        return httpx.Response(200, json={"status": "SUCCESS", "data": data})

    return answer


def collect_ar(answer: Answer, **params) -> tuple[NamedResults, object]:
    results = NamedResults()
    outcome = reader(answer).collect(ar_job(**(params or {"all": True, "limit": 10})), results)
    return results, outcome


@pytest.mark.parametrize(
    ("extra", "vendor"),
    [
        (lambda start, page, end: {"total": "25"}, {"total": 25}),
        (lambda start, page, end: {"count": str(len(page))}, {"page_counts_sum": 25}),
        (lambda start, page, end: {"count": "25"}, {"total": 25}),  # the same count on every page: a total
        (lambda start, page, end: {"pagination": {"next": str(end) if end < 25 else "0", "count": 25}}, {"total": 25}),
    ],
)
def test_records_written_are_reconciled_with_any_count_pinpointe_gives(extra, vendor):
    results, outcome = collect_ar(counted_pages(numbered(25), cap=7, extra=extra), all=True, limit=10)
    assert len(stored_lines(results)) == 25 and not outcome.partial
    reconciliation = results.summary()["reconciliation"]
    assert reconciliation["reconciled"] is True and reconciliation["vendor"] == vendor
    assert reconciliation["ours"] == {"written": 25, "pages": 4}


def test_a_total_above_the_records_sent_is_partial_with_the_shortfall_explained():
    results, outcome = collect_ar(counted_pages(numbered(20), extra=lambda *_: {"total": "23"}), all=True, limit=10)
    assert outcome.partial and outcome.reconciliation.shortfall == [
        "autoresponder_results.jsonl holds 20 records but Pinpointe's total says 23: 3 missing"
    ]
    assert results.summary()["reconciliation"]["reconciled"] is False


def test_page_counts_that_disagree_with_the_pages_are_partial():
    extra = lambda start, page, end: {"count": str(len(page) + (1 if start == 10 else 0))}  # noqa: E731
    _, outcome = collect_ar(counted_pages(numbered(25), extra=extra), all=True, limit=10)
    assert outcome.partial
    assert "disagrees with the records it sent on 1 page(s) (page 2: counted 11, sent 10)" in outcome.reconciliation.shortfall[0]


def test_a_next_that_disagrees_with_the_records_sent_is_partial_even_when_every_record_arrived():
    results, outcome = collect_ar(counted_pages(numbered(25), cap=7, lie=True), all=True, limit=10)
    assert stored_lines(results) == numbered(25)
    assert outcome.partial and outcome.reconciliation.reconciled is False
    (check,) = outcome.reconciliation.checks
    assert (check.ours, check.vendor, check.agree) == (7, 10, False)


def test_json_lines_hold_one_record_per_line_whatever_the_text():
    tricky = [{"name": "a\u2028b", "note": "c\u2029d\x85e\nf\r"}, {"x": "\u2028"}]
    results, _ = collect_ar(counted_pages(tricky), all=True, limit=10)
    text = results.files["autoresponder_results.jsonl"].decode()
    assert len(text.splitlines()) == 2 and [json.loads(line) for line in text.splitlines()] == tricky


def file_job(status_count: int | None = None) -> Job:
    return job(linked_ref("https://na01.mypinpointe.com/555.json", status_count))


def collect_file(body: bytes, status_count: int | None = None) -> tuple[NamedResults, object]:
    results = NamedResults()
    outcome = exporter(lambda r: streamed(body)).collect(file_job(status_count), results)
    assert results.files["result.json"] == body  # stored unchanged
    return results, outcome


SUBSCRIBERS = [{"email": f"s{n}@example.org", "subscriberid": str(n)} for n in range(1, 4)]


@pytest.mark.parametrize(
    ("document", "shape"),
    [
        ({"count": 3, "subscribers": SUBSCRIBERS}, "list"),
        ({"Count": "3", "Subscribers": SUBSCRIBERS}, "list"),
        ({"count": 3, "subscribers": {s["subscriberid"]: s for s in SUBSCRIBERS}}, "keyed_by_id"),
        ({"response": {"status": "SUCCESS", "data": {"count": 3, "events": SUBSCRIBERS}}}, "list"),
        ({"DATA": {"TOTAL": 3, "Records": SUBSCRIBERS}}, "list"),
        ({"count": 3, "data": SUBSCRIBERS}, "list"),
    ],
)
def test_result_files_of_every_assumed_shape_are_counted_and_reconciled(document, shape):
    results, outcome = collect_file(json.dumps(document).encode(), status_count=3)
    summary = results.summary()
    assert (summary["records"], summary["vendor_count"], summary["records_shape"]) == (3, 3, shape)
    assert not outcome.partial and outcome.reconciliation.reconciled is True
    assert [c.check for c in outcome.reconciliation.checks] == [
        "records in result.json vs the count in the file",
        "records in result.json vs the count AsyncJobStatus reported",
    ]


def test_a_single_object_is_one_record_and_a_bare_list_has_no_count():
    results, outcome = collect_file(b'{"count": "1", "subscribers": {"email": "a@example.org", "lists": {"1": "x"}}}')
    assert (results.summary()["records"], results.summary()["records_shape"]) == (1, "single") and not outcome.partial
    results, outcome = collect_file(json.dumps(SUBSCRIBERS).encode())
    assert results.summary()["records_shape"] == "bare_list" and outcome.reconciliation.reconciled is None
    assert not outcome.partial


@pytest.mark.parametrize(
    ("document", "status_count", "reason"),
    [
        (
            {"count": 5, "subscribers": SUBSCRIBERS},
            None,
            "result.json holds 3 records but the file's own count says 5: 2 missing",
        ),
        (
            {"count": 3, "subscribers": SUBSCRIBERS},
            4,
            "result.json holds 3 records but the count AsyncJobStatus reported says 4: 1 missing",
        ),
        (
            {"count": 2, "subscribers": SUBSCRIBERS},
            None,
            "result.json holds 3 records but the file's own count says 2: 1 more than counted",
        ),
    ],
)
def test_a_count_that_disagrees_with_the_file_is_partial_and_explained(document, status_count, reason):
    results, outcome = collect_file(json.dumps(document).encode(), status_count)
    assert outcome.partial and outcome.reconciliation.shortfall == [reason]
    assert results.summary()["reconciliation"]["shortfall"] == [reason]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (f"<html>Fatal error: usertoken={TOKEN}</html>".encode(), "is not JSON"),
        (b'{"count": 3}', "holds no record collection"),
        (b'{"status": "SUCCESS", "data": {"jobid": "1"}}', "holds no record collection"),
        (b'"text"', "holds no record collection"),
        (b'{"count": 1, "subscribers": ["a@example.org"]}', "record 1 of its list is not a JSON object"),
        (b'{"count": 1, "subscribers": [{}]} trailing', "is not JSON"),
    ],
)
def test_a_result_file_we_cannot_read_is_a_protocol_error_with_an_excerpt_of_its_start(body, why):
    with pytest.raises(VendorProtocolError, match=why) as raised:
        exporter(lambda r: streamed(body)).collect(file_job(), NamedResults())
    assert raised.value.answer and TOKEN not in raised.value.answer


def test_result_file_counting_survives_any_chunking():
    from jobrelay.vendors.pinpointe.result_file import ResultFileCounter

    document = json.dumps({"response": {"data": {"Count": "3", "subscribers": {s["subscriberid"]: s for s in SUBSCRIBERS}}}})
    for size in (1, 2, 7, 64):
        counter = ResultFileCounter("the file")
        for start in range(0, len(document), size):
            counter.feed(document[start : start + size].encode())
        counted = counter.finish()
        assert (counted.records, counted.vendor_count, counted.shape) == (3, 3, "keyed_by_id")
