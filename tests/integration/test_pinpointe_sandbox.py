"""The Pinpointe sandbox over real sockets, spoken to in raw JSON: the documented API (docs/VENDORS.md 1),
the shapes the adapter assumes, the control routes and every switchable fault."""

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.sandbox.http import RecordingServer
from devstack.sandbox.pinpointe import STREAM_PIECE_CHARS, PinpointeSandbox, SandboxJob, result_document
from jobrelay.vendors.pinpointe.adapter import PinpointeAccount
from tests.integration.sandbox_client import SandboxControl

REPO = Path(__file__).resolve().parents[2]
TOKEN = "sandbox-token-4f1e2d"
HOOK = "http://127.0.0.1:9/unused-hook"
LIST_DETAILS = {"list": ["12"], "notify": {"type": "webhook", "value": HOOK}}
LIST_METHOD = "GetListSubscribersAsync"


@pytest.fixture
def sandbox() -> Iterator[PinpointeSandbox]:
    with PinpointeSandbox(job_seconds=0.2, records=5, usertoken=TOKEN) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


class Api(SandboxControl):
    """Raw calls to the sandbox's /apijson.php with its credentials."""

    def call(self, requesttype: str, requestmethod: str, details: object = None, **envelope) -> httpx.Response:
        body = {"username": self.sandbox.username, "usertoken": TOKEN}
        body |= {"requesttype": requesttype, "requestmethod": requestmethod}
        if details is not None:
            body["details"] = details
        return self.http.post(f"{self.sandbox.base_url}/apijson.php", json={**body, **envelope})

    def start(self, details: dict = LIST_DETAILS, requesttype: str = "Lists", method: str = LIST_METHOD) -> str:
        answer = self.call(requesttype, method, details)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]["jobid"]

    def status(self, details: dict) -> httpx.Response:
        return self.call("API", "AsyncJobStatus", details)

    def entry(self, jobid: str) -> dict:
        (entry,) = self.status({"jobids": [jobid]}).json()["data"]["jobs"]
        return entry

    def deliveries(self, count: int, timeout: float = 5.0) -> list[dict]:
        """The sandbox's webhook records once there are `count` of them (it records after each POST)."""
        deadline = time.monotonic() + timeout
        while len(records := self.control("webhooks")) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return records

    def wait_until(self, jobid: str, status: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while (entry := self.entry(jobid))["status"] != status:
            assert time.monotonic() < deadline, f"job {jobid} stayed {entry['status']}"
            time.sleep(0.02)
        return entry


@pytest.fixture
def api(sandbox, http) -> Api:
    return Api(sandbox, http)


# --- setup ------------------------------------------------------------------------------------------


def test_binds_to_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        PinpointeSandbox(host="0.0.0.0")


def test_the_account_secret_is_one_the_adapter_accepts(sandbox):
    secret = sandbox.account_secret()
    assert set(secret) == {"base_url", "username", "usertoken", "result_hosts", "allow_http"}
    account = PinpointeAccount.model_validate(secret)
    assert account.base_url == sandbox.base_url and account.usertoken.get_secret_value() == TOKEN
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.base_url)


def test_a_generated_token_differs_per_sandbox():
    with PinpointeSandbox() as first, PinpointeSandbox() as second:
        assert first.account_secret()["usertoken"] != second.account_secret()["usertoken"]


# --- the API ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("envelope", [{"usertoken": "wrong"}, {"username": "someone-else"}, {"usertoken": None}])
def test_bad_credentials_answer_401(api, envelope):
    answer = api.call("API", "Test", {"something": 1}, **envelope)
    assert answer.status_code == 401
    assert answer.json() == {"status": "FAILED", "errormessage": "Unable to verify user credentials"}


def test_api_test_echoes_the_details(api):
    answer = api.call("API", "Test", {"something": {"a": [1, "b"]}})
    assert answer.json() == {"status": "SUCCESS", "data": {"something": {"a": [1, "b"]}}}


def test_the_response_wrapper_can_be_switched_on(api):
    api.configure(wrap_response=True)
    assert api.call("API", "Test", {"x": 1}).json() == {"response": {"status": "SUCCESS", "data": {"x": 1}}}
    assert api.call("API", "Test", {}, usertoken="bad").json() == {
        "response": {"status": "FAILED", "errormessage": "Unable to verify user credentials"}
    }


@pytest.mark.parametrize(
    ("requesttype", "method", "details"),
    [
        ("Newsletters", "GetNewsletterContactDataSummaryAsync", {"stat": "4711", "startdate": "20250101"}),
        ("Lists", LIST_METHOD, {"list": ["1", "2"], "status": "active", "include_membership": "true"}),
        ("Segments", "GetSegmentSubscribersAsync", {"segmentid": ["3"], "include_membership": "0"}),
        ("Tags", "GetTagSubscribersAsync", {"tagname": "VIP", "extag": ["8"], "emailonly": "false"}),
    ],
)
def test_the_four_async_starts(api, requesttype, method, details):
    answer = api.call(requesttype, method, {**details, "notify": {"type": "webhook", "value": HOOK}})
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "SUCCESS"
    assert set(body["data"]) == {"jobid", "elapsed", "timestamp"} and body["data"]["jobid"].isdigit()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["data"]["timestamp"])


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"notify": {"type": "webhook", "value": HOOK}}, "Missing required element 'list'"),
        ({"list": ["1"]}, "Missing required element 'notify'"),
        ({"list": ["1"], "notify": {"type": "sms", "value": "x"}}, "Invalid value for 'notify'"),
        ({"list": ["1"], "notify": {"type": "webhook", "value": "ftp://x"}}, "Invalid value for 'notify'"),
        ({"list": [1], "notify": {"type": "webhook", "value": HOOK}}, "Invalid value for 'list'"),
        ({**LIST_DETAILS, "startdate": "2025-01-01"}, "Invalid value for 'startdate'"),
        ({**LIST_DETAILS, "enddate": "20251301"}, "Invalid value for 'enddate'"),
        ({**LIST_DETAILS, "include_membership": True}, "Invalid value for 'include_membership'"),
        ({**LIST_DETAILS, "status": "gone"}, "Invalid value for 'status'"),
        ({**LIST_DETAILS, "customfields": []}, "Empty element 'customfields': delete optional elements you do not use"),
        ({**LIST_DETAILS, "pagination": {}}, "Unknown element 'pagination'"),
        ({**LIST_DETAILS, "segmentid": ["1"]}, "Unknown element 'segmentid'"),
        (None, "Missing details element"),
    ],
)
def test_starts_are_validated_like_pinpointe_would(api, details, message):
    answer = api.call("Lists", "GetListSubscribersAsync", details)
    assert answer.status_code == 400 and answer.json() == {"status": "FAILED", "errormessage": message}


def test_tags_need_a_tag_or_a_tagname(api):
    answer = api.call("Tags", "GetTagSubscribersAsync", {"notify": LIST_DETAILS["notify"]})
    assert answer.json()["errormessage"] == "Missing required element 'tag or tagname'"


@pytest.mark.parametrize(
    ("requesttype", "method"),
    [("Lists", "GetSegmentSubscribersAsync"), ("Lists", "Nope"), ("seg", "GetSegmentSubscribersAsync")],
)
def test_unknown_calls_are_refused(api, requesttype, method):
    answer = api.call(requesttype, method, LIST_DETAILS)
    assert answer.status_code == 400 and answer.json()["errormessage"].startswith("Invalid request")


def test_non_json_requests_are_refused(sandbox, http):
    answer = http.post(f"{sandbox.base_url}/apijson.php", content=b"username=u")
    assert answer.status_code == 400 and answer.json()["status"] == "FAILED"


# --- job lifecycle and AsyncJobStatus -----------------------------------------------------------------


def test_a_job_waits_processes_and_completes_with_a_link(api, sandbox):
    api.configure(job_seconds=0.4)
    jobid = api.start()
    first = api.entry(jobid)
    assert first["status"] == "waiting" and "url" not in first
    assert set(first) == {"jobid", "requestmethod", "status", "created", "updated"}
    assert first["requestmethod"] == "GetListSubscribersAsync"
    assert api.wait_until(jobid, "processing")["updated"] >= first["created"]
    done = api.wait_until(jobid, "complete")
    assert done["url"] == f"{sandbox.base_url}/files/{jobid}.json"


@pytest.mark.parametrize(
    ("fail_jobs", "message"), [(True, "Simulated failure"), ("Export quota exceeded", "Export quota exceeded")]
)
def test_jobs_can_be_made_to_fail(api, fail_jobs, message):
    api.configure(fail_jobs=fail_jobs)
    failed = api.wait_until(api.start(), "failed")
    assert failed["errormessage"] == message and "url" not in failed


def test_job_status_pages_through_every_job(api):
    jobids = [api.start() for _ in range(3)]
    first = api.status({"pagination": {"limit": "2", "next": "0"}}).json()["data"]
    second = api.status({"pagination": {"limit": "2", "next": first["pagination"]["next"]}}).json()["data"]
    assert first["pagination"] == {"next": "2"} and second["pagination"] == {"next": "0"}
    assert [j["jobid"] for j in first["jobs"] + second["jobs"]] == jobids
    everything = api.status({}).json()["data"]
    assert [j["jobid"] for j in everything["jobs"]] == jobids and "pagination" not in everything


def test_job_status_filters_by_job_id(api):
    jobids = [api.start() for _ in range(3)]
    listed = api.status({"jobids": [jobids[2], jobids[0]]}).json()["data"]["jobs"]
    assert sorted(j["jobid"] for j in listed) == sorted([jobids[0], jobids[2]])


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"pagination": {"next": "2"}}, "pagination 'limit' is required when 'next' is given"),
        ({"pagination": {"limit": 2}}, "pagination 'limit' and 'next' must be numbers written as strings"),
        ({"jobids": "1"}, "Invalid value for 'jobids'"),
        ({"jobs": ["1"]}, "Invalid details element"),
    ],
)
def test_job_status_checks_its_details(api, details, message):
    api.start()
    answer = api.status(details)
    assert answer.status_code == 400 and answer.json()["errormessage"] == message


def test_unknown_jobs_are_not_found(api):
    assert api.status({}).json() == {"status": "FAILED", "errormessage": "Jobs not found"}
    api.start()
    answer = api.status({"jobids": ["1"]})
    assert answer.status_code == 400 and answer.json()["errormessage"] == "Jobs not found"


def test_new_jobs_can_be_kept_invisible(api):
    api.configure(not_visible_seconds=0.3)
    jobid = api.start()
    assert api.status({"jobids": [jobid]}).json()["errormessage"] == "Jobs not found"
    time.sleep(0.35)
    assert api.entry(jobid)["jobid"] == jobid


# --- result files ---------------------------------------------------------------------------------------


def download(api: Api, jobid: str) -> httpx.Response:
    return api.http.get(f"{api.sandbox.base_url}/files/{jobid}.json")


def test_subscriber_results_are_realistic_and_deterministic(api):
    details = {
        "list": ["12", "13"],
        "include_membership": "true",
        "customfields": ["City", "Loyalty"],
        "startdate": "20250101",
        "enddate": "20250201",
        "notify": LIST_DETAILS["notify"],
    }
    jobid = api.start(details)
    api.wait_until(jobid, "complete")
    answer = download(api, jobid)
    document = answer.json()
    assert document["count"] == 5 and len(document["subscribers"]) == 5
    first = document["subscribers"][0]
    assert set(first) == {"email", "subscriberid", "status", "confirmed", "subscribedate", "customfields", "lists"}
    assert set(first["customfields"]) == {"City", "Loyalty"} and first["lists"][0] in ("12", "13")
    assert all("2025-01-01T" <= s["subscribedate"] < "2025-02-01T" for s in document["subscribers"])
    assert len({s["email"] for s in document["subscribers"]}) == 5
    assert download(api, jobid).content == answer.content


def test_subscribers_without_options_have_no_optional_parts(api):
    jobid = api.start()
    api.wait_until(jobid, "complete")
    first = download(api, jobid).json()["subscribers"][0]
    assert "customfields" not in first and "lists" not in first


def test_contact_data_summary_results_are_open_and_click_events(api):
    details = {"stat": "4711", "startdate": "20250301", "enddate": "20250302", "notify": LIST_DETAILS["notify"]}
    api.configure(records=9)
    jobid = api.start(details, "Newsletters", "GetNewsletterContactDataSummaryAsync")
    api.wait_until(jobid, "complete")
    events = download(api, jobid).json()["events"]
    assert len(events) == 9 and {e["event"] for e in events} == {"open", "click"}
    assert all(("link" in e) == (e["event"] == "click") for e in events)
    assert all(e["event_time"].startswith("2025-03-01T") and e["event_time"].endswith("Z") for e in events)
    assert all(e["statid"] == "4711" for e in events)


@pytest.mark.parametrize("content_length", [False, True])
def test_results_stream_chunked_or_with_a_content_length(api, content_length):
    api.configure(records=2000, file_content_length=content_length)
    jobid = api.start()
    api.wait_until(jobid, "complete")
    answer = download(api, jobid)
    assert answer.json()["count"] == 2000
    if content_length:
        assert int(answer.headers["Content-Length"]) == len(answer.content)
    else:
        assert answer.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in answer.headers


def test_a_document_is_generated_piece_by_piece():
    job = SandboxJob("1", "Lists", "GetListSubscribersAsync", {"list": ["1"]}, 0.0, 0.0, 10_000_000, None)
    pieces = result_document(job)
    first = next(pieces)  # ten million records: only feasible if nothing is built up front
    assert first.startswith(b'{"count": 10000000, "subscribers": [{')
    assert all(len(next(pieces)) < STREAM_PIECE_CHARS + 1024 for _ in range(20))


def test_files_exist_only_for_completed_jobs(api):
    api.configure(job_seconds=5)
    assert download(api, api.start()).status_code == 404
    assert download(api, "123").status_code == 404


def test_file_5xx_answers_the_next_downloads_with_503(api):
    api.configure(file_5xx=1)
    jobid = api.start()
    api.wait_until(jobid, "complete")
    assert download(api, jobid).status_code == 503
    assert download(api, jobid).status_code == 200
    downloads = [c for c in api.control("calls") if c["requestmethod"] == "ResultDownload"]
    assert [c.get("fault") for c in downloads] == ["file_5xx", None]


# --- faults --------------------------------------------------------------------------------------------


def test_http_5xx_answers_the_next_n_calls_with_503(api):
    api.configure(http_5xx=2)
    assert [api.call("API", "Test", {}).status_code for _ in range(3)] == [503, 503, 200]
    assert api.control("config")["http_5xx"] == 0
    assert [c.get("fault") for c in api.control("calls")] == ["http_5xx", "http_5xx", None]


def test_faults_can_be_limited_to_some_methods(api):
    api.configure(http_5xx=1, fault_methods=["AsyncJobStatus"])
    jobid = api.start()
    assert api.call("API", "Test", {}).status_code == 200
    assert api.status({"jobids": [jobid]}).status_code == 503
    assert api.status({"jobids": [jobid]}).status_code == 200


def test_malformed_answers_are_not_json(api):
    api.configure(malformed=1)
    answer = api.call("API", "Test", {})
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()


def test_timeouts_hang_before_answering(api):
    api.configure(timeouts=1, timeout_hang_seconds=2)
    with pytest.raises(httpx.ReadTimeout):
        api.http.post(f"{api.sandbox.base_url}/apijson.php", json={}, timeout=0.2)
    started = time.monotonic()
    assert api.call("API", "Test", {}).status_code == 200 and time.monotonic() - started < 1


def test_an_expired_token_refuses_every_call(api):
    api.configure(expired_token=True)
    assert api.call("API", "Test", {}).status_code == 401
    refused = api.call("Lists", LIST_METHOD, LIST_DETAILS)
    assert refused.json()["errormessage"] == "Unable to verify user credentials"


# --- GetAutoresponderResults (synchronous, paginated) ------------------------------------------------------


def autoresponder_results(api: Api, details: dict | None, requesttype: str = "Autoresponders") -> httpx.Response:
    return api.call(requesttype, "GetAutoresponderResults", details)


def read_all(api: Api, details: dict, limit: int) -> tuple[list[dict], list[str]]:
    """Every page, following pagination.next until "0": the records and the `next` values sent."""
    records, sent, following = [], [], "0"
    while True:
        sent.append(following)
        answer = autoresponder_results(api, {**details, "pagination": {"limit": str(limit), "next": following}})
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        records += data["item"]
        following = data["pagination"]["next"]
        if following == "0":
            return records, sent


def test_autoresponder_results_page_by_limit_and_next_until_next_is_0(api):
    api.configure(autoresponder_sends=25)
    records, sent = read_all(api, {"autoresponderid": "302", "grouping": "send"}, limit=10)
    assert sent == ["0", "10", "20"]
    assert [r["sendid"] for r in records] == [f"302-{n}" for n in range(1, 26)]
    assert set(records[0]) == {
        "autoresponderid",
        "autorespondername",
        "sendid",
        "starttime",
        "sendsize",
        "emailopens",
        "linkclicks",
        "bouncecount_soft",
        "bouncecount_hard",
        "unsubscribecount",
    }
    assert all(isinstance(v, str) for v in records[0].values())  # numbers written as strings, as Pinpointe does
    again, _ = read_all(api, {"autoresponderid": "302", "grouping": "send"}, limit=7)
    assert again == records  # deterministic, whatever the page size


def test_autoresponder_grouping_adds_every_send_into_one_record(api):
    sends, _ = read_all(api, {"autorespondername": "Welcome series", "grouping": "send"}, limit=100)
    (total,) = autoresponder_results(api, {"autorespondername": "Welcome series"}).json()["data"]["item"]
    assert len(sends) == 3 and total["sends"] == "3" and "sendid" not in total
    assert int(total["linkclicks"]) == sum(int(s["linkclicks"]) for s in sends)


@pytest.mark.parametrize("requesttype", ["Autoresponders", "Stats"])
def test_all_autoresponders_without_an_id_or_a_name_under_either_documented_requesttype(api, requesttype):
    answer = autoresponder_results(api, {"grouping": "autoresponder"}, requesttype)
    assert [r["autorespondername"] for r in answer.json()["data"]["item"]] == ["Welcome series", "Win-back", "Birthday"]
    assert "pagination" not in answer.json()["data"]  # unpaginated: everything at once
    assert len(autoresponder_results(api, None).json()["data"]["item"]) == 3


def test_given_an_id_and_a_name_the_first_found_wins(api):
    first_id = autoresponder_results(api, {"autoresponderid": "303", "autorespondername": "Win-back"})
    first_name = autoresponder_results(api, {"autorespondername": "Win-back", "autoresponderid": "303"})
    assert first_id.json()["data"]["item"][0]["autorespondername"] == "Birthday"
    assert first_name.json()["data"]["item"][0]["autorespondername"] == "Win-back"


@pytest.mark.parametrize("details", [{"autoresponderid": "999"}, {"autorespondername": "Nope"}])
def test_an_unknown_autoresponder_is_not_found(api, details):
    answer = autoresponder_results(api, details)
    assert answer.status_code == 400 and answer.json() == {"status": "FAILED", "errormessage": "Autoresponder not found"}


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"grouping": "daily"}, "Invalid value for 'grouping'"),
        ({"autoresponderid": 301}, "Invalid value for 'autoresponderid'"),
        ({"autoresponderid": "abc"}, "Invalid value for 'autoresponderid'"),
        ({"autorespondername": ""}, "Empty element 'autorespondername': delete optional elements you do not use"),
        ({"notify": {"type": "email", "value": "a@example.org"}}, "Unknown element 'notify'"),
        ({"pagination": {"next": "10"}}, "pagination 'limit' is required when 'next' is given"),
        ({"pagination": {"limit": 10}}, "pagination 'limit' and 'next' must be numbers written as strings"),
    ],
)
def test_autoresponder_requests_are_validated_like_pinpointe_would(api, details, message):
    answer = autoresponder_results(api, details)
    assert answer.status_code == 400 and answer.json() == {"status": "FAILED", "errormessage": message}


def test_autoresponder_results_can_be_empty_or_refused_as_retired(api):
    api.configure(autoresponder_empty=True)
    paged = autoresponder_results(api, {"autoresponderid": "301", "pagination": {"limit": "5", "next": "0"}})
    assert paged.json() == {"status": "SUCCESS", "data": {"item": [], "pagination": {"next": "0"}}}
    api.configure(autoresponder_empty="No statistical information is available")
    refused = autoresponder_results(api, {"autoresponderid": "301"})
    assert refused.status_code == 400 and refused.json()["errormessage"] == "No statistical information is available"
    assert autoresponder_results(api, {"autoresponderid": "999"}).json()["errormessage"] == "Autoresponder not found"


def test_the_autoresponders_are_configurable_and_reset_restores_them(api, sandbox, http):
    api.configure(autoresponders={"7": "Onboarding"}, autoresponder_sends=2)
    records, _ = read_all(api, {"grouping": "send"}, limit=1)
    assert [(r["autorespondername"], r["sendid"]) for r in records] == [("Onboarding", "7-1"), ("Onboarding", "7-2")]
    http.post(f"{sandbox.base_url}/_sandbox/reset")
    assert len(autoresponder_results(api, {}).json()["data"]["item"]) == 3


def test_later_page_5xx_spares_first_pages_and_common_faults_apply(api):
    api.configure(later_page_5xx=1)
    first = {"grouping": "send", "pagination": {"limit": "2", "next": "0"}}
    second = {"grouping": "send", "pagination": {"limit": "2", "next": "2"}}
    assert autoresponder_results(api, first).status_code == 200
    assert autoresponder_results(api, second).status_code == 503
    assert autoresponder_results(api, second).status_code == 200
    api.configure(http_5xx=1, fault_methods=["GetAutoresponderResults"])
    assert api.call("API", "Test", {}).status_code == 200
    assert autoresponder_results(api, first).status_code == 503
    api.configure(expired_token=True)
    assert autoresponder_results(api, first).status_code == 401
    calls = [c for c in api.control("calls") if c["requestmethod"] == "GetAutoresponderResults"]
    assert [(c["http_status"], c.get("fault")) for c in calls] == [
        (200, None),
        (503, "later_page_5xx"),
        (200, None),
        (503, "http_5xx"),
        (401, None),
    ]
    assert calls[0]["details"] == first and calls[0]["records"] == 2


# --- control routes -------------------------------------------------------------------------------------


def test_config_merges_and_refuses_unknown_keys_and_bad_values(api, sandbox, http):
    assert api.configure(records=7)["records"] == 7 and api.control("config")["job_seconds"] == 0.2
    for bad in ({"no_such_key": 1}, {"http_5xx": -1}, {"records": "many"}):
        answer = http.post(f"{sandbox.base_url}/_sandbox/config", json=bad)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid config"
    assert http.post(f"{sandbox.base_url}/_sandbox/config", content=b"[]").status_code == 400


def test_reset_restores_the_start_config_and_forgets_jobs_and_calls(api, sandbox, http):
    api.start()
    api.configure(records=7, wrap_response=True)
    assert http.post(f"{sandbox.base_url}/_sandbox/reset").json()["records"] == 5
    assert api.control("jobs") == [] and api.control("calls") == [] and api.control("webhooks") == []
    assert api.control("config")["wrap_response"] is False


def test_the_call_log_and_the_job_list(api):
    jobid = api.start()
    api.status({"jobids": [jobid]})
    api.call("API", "Test", {}, usertoken="bad")
    calls = api.control("calls")
    assert [(c["requestmethod"], c.get("jobid"), c["http_status"]) for c in calls] == [
        ("GetListSubscribersAsync", jobid, 200),
        ("AsyncJobStatus", jobid, 200),
        ("Test", None, 401),
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", c["at"]) for c in calls)
    (job,) = api.control("jobs")
    assert (job["jobid"], job["requesttype"], job["details"], job["records"]) == (jobid, "Lists", LIST_DETAILS, 5)


def test_nothing_the_sandbox_shows_contains_the_token(api, sandbox, receiver, caplog):
    api.start({"list": ["1"], "notify": {"type": "webhook", "value": receiver.base_url}})
    api.call("API", "Test", {"echo": "hello"})
    api.call("API", "Test", {}, usertoken="wrong")
    receiver.wait_for(1)
    shown = json.dumps([api.control(route) for route in ("config", "calls", "jobs", "webhooks")])
    assert TOKEN not in shown and TOKEN not in caplog.text
    assert TOKEN not in receiver.received()[0].body.decode()


# --- webhooks -------------------------------------------------------------------------------------------


def hook_details(receiver: RecordingServer) -> dict:
    return {"list": ["1"], "notify": {"type": "webhook", "value": f"{receiver.base_url}/webhooks/pinpointe/j/t"}}


def test_a_webhook_notice_follows_the_end_of_a_job(api, sandbox, receiver):
    jobid = api.start(hook_details(receiver))
    (notice,) = receiver.wait_for(1)
    assert notice.method == "POST" and notice.path == "/webhooks/pinpointe/j/t"
    assert notice.headers["Content-Type"] == "application/json"
    assert json.loads(notice.body) == {
        "jobid": jobid,
        "status": "complete",
        "url": f"{sandbox.base_url}/files/{jobid}.json",
        "requestmethod": LIST_METHOD,
    }
    (delivery,) = api.deliveries(1)
    assert (delivery["jobid"], delivery["url"], delivery["status_code"]) == (jobid, notice_url(receiver), 200)


def notice_url(receiver: RecordingServer) -> str:
    return f"{receiver.base_url}/webhooks/pinpointe/j/t"


def test_a_failed_job_s_notice_has_no_link(api, receiver):
    api.configure(fail_jobs=True)
    jobid = api.start(hook_details(receiver))
    (notice,) = receiver.wait_for(1)
    assert json.loads(notice.body) == {"jobid": jobid, "status": "failed", "requestmethod": "GetListSubscribersAsync"}


def test_webhooks_can_be_duplicated(api, receiver):
    api.configure(duplicate_webhook=True)
    api.start(hook_details(receiver))
    first, second = receiver.wait_for(2)
    assert first.body == second.body and len(api.deliveries(2)) == 2


def test_webhooks_can_be_dropped(api, receiver):
    api.configure(drop_webhook=True)
    jobid = api.start(hook_details(receiver))
    api.wait_until(jobid, "complete")
    time.sleep(0.2)
    assert receiver.received() == []
    assert [(d["jobid"], d["dropped"]) for d in api.control("webhooks")] == [(jobid, True)]


def test_webhooks_can_be_late(api, receiver):
    api.configure(late_webhook_seconds=0.5)
    started = time.time()
    jobid = api.start(hook_details(receiver))
    api.wait_until(jobid, "complete")
    assert receiver.received() == []
    (notice,) = receiver.wait_for(1)
    assert notice.at - started >= 0.2 + 0.5


def test_an_unreachable_webhook_is_recorded_not_raised(api, receiver):
    url = notice_url(receiver)
    receiver.stop()
    api.start({"list": ["1"], "notify": {"type": "webhook", "value": url}})
    (delivery,) = api.deliveries(1)
    assert "ConnectError" in delivery["error"] and "status_code" not in delivery


def test_email_notices_send_no_webhook(api, receiver):
    jobid = api.start({"list": ["1"], "notify": {"type": "email", "value": "ops@example.org"}})
    api.wait_until(jobid, "complete")
    time.sleep(0.1)
    assert receiver.received() == [] and api.control("webhooks") == []


# --- standalone -----------------------------------------------------------------------------------------


def test_runs_standalone_and_prints_its_url_and_secret():
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.sandbox.pinpointe", "--port", "0", "--job-seconds", "0.1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": f"{REPO}:{REPO / 'layers/jobrelay'}"},
    )
    try:
        url = process.stdout.readline().split()[-1]
        secret = json.loads(process.stdout.readline().removeprefix("account secret: "))
        assert secret["base_url"] == url and secret["allow_http"] is True
        envelope = {**secret, "requesttype": "API", "requestmethod": "Test", "details": {"a": 1}}
        answer = httpx.post(f"{url}/apijson.php", json=envelope, trust_env=False)
        assert answer.json() == {"status": "SUCCESS", "data": {"a": 1}}
    finally:
        process.terminate()
        process.wait(timeout=5)


# --- doc-consistent variants (docs/VENDORS.md Unknowns 1, 2, 4 and 6) -----------------------------------------


def test_the_start_can_name_the_job_id_jobid_with_a_capital(api):
    api.configure(start_jobid_key="Jobid")
    data = api.call("Lists", LIST_METHOD, LIST_DETAILS).json()["data"]
    assert set(data) == {"Jobid", "elapsed", "timestamp"} and data["Jobid"].isdigit()


def test_an_unreadable_start_answer_still_starts_the_job(api, sandbox):
    api.configure(start_answer="no_jobid")
    assert set(api.call("Lists", LIST_METHOD, LIST_DETAILS).json()["data"]) == {"elapsed", "timestamp"}
    api.configure(start_answer="not_json")
    answer = api.call("Lists", LIST_METHOD, LIST_DETAILS)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert answer.text.startswith("<br />") and f"usertoken={TOKEN}" in answer.text  # a PHP warning echoing the request
    with pytest.raises(ValueError):
        answer.json()
    starts = [c for c in api.control("calls") if c["requestmethod"] == LIST_METHOD]
    assert [c["start_answer"] for c in starts] == ["no_jobid", "not_json"]
    assert len(api.control("jobs")) == 2  # both exports run at the vendor


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({}, ("waiting", "complete")),
        ({"status_word_case": "upper"}, ("WAITING", "COMPLETE")),
        ({"status_word_case": "title", "status_words": {"complete": "completed"}}, ("Waiting", "Completed")),
    ],
)
def test_status_words_can_be_cased_and_replaced(api, config, words):
    # "waiting" lasts a quarter of the job: long enough to be read first on a busy machine.
    api.configure(job_seconds=2, **config)
    jobid = api.start()
    assert api.entry(jobid)["status"] == words[0]
    assert api.wait_until(jobid, words[1])["url"].endswith(f"/files/{jobid}.json")


def test_status_data_can_be_keyed_by_job_id_or_a_single_entry(api):
    jobid = api.start()
    api.configure(status_shape="keyed_by_id")
    data = api.status({"jobids": [jobid], "pagination": {"limit": "10", "next": "0"}}).json()["data"]
    assert set(data) == {jobid, "pagination"} and "jobid" not in data[jobid] and data[jobid]["status"] == "waiting"
    api.configure(status_shape="single")
    data = api.status({"jobids": [jobid]}).json()["data"]
    assert data["jobid"] == jobid and "jobs" not in data


def test_status_pages_can_be_capped_with_next_after_the_entries_sent(api):
    jobids = [api.start() for _ in range(5)]
    api.configure(status_page_cap=2)
    data = api.status({"pagination": {"limit": "10", "next": "0"}}).json()["data"]
    assert [e["jobid"] for e in data["jobs"]] == jobids[:2] and data["pagination"] == {"next": "2"}


def test_a_finished_entry_can_carry_its_count(api):
    api.configure(status_count=True)
    jobid = api.start()
    assert "count" not in api.entry(jobid)
    assert api.wait_until(jobid, "complete")["count"] == "5"


def autoresponder_page(api, details: dict, limit: int, following: str = "0") -> dict:
    return api.call(
        "Autoresponders", "GetAutoresponderResults", {**details, "pagination": {"limit": str(limit), "next": following}}
    ).json()["data"]


def test_autoresponder_records_can_be_keyed_by_id_or_single(api):
    api.configure(autoresponder_records_shape="keyed_by_id")
    keyed = autoresponder_page(api, {"grouping": "send", "autoresponderid": "301"}, 10)["item"]
    assert list(keyed) == ["301-1", "301-2", "301-3"] and all("sendid" not in r for r in keyed.values())
    by_autoresponder = autoresponder_page(api, {"grouping": "autoresponder"}, 10)["item"]
    assert list(by_autoresponder) == ["301", "302", "303"]
    api.configure(autoresponder_records_shape="single")
    single = autoresponder_page(api, {"grouping": "send", "autoresponderid": "301"}, 1)["item"]
    assert isinstance(single, dict) and single["sendid"] == "301-1"


def test_autoresponder_pages_can_be_capped_and_next_can_count_from_the_limit(api):
    api.configure(autoresponder_sends=25, autoresponder_page_cap=7, autoresponder_count="total")
    data = autoresponder_page(api, {"grouping": "send", "autoresponderid": "302"}, 10)
    assert len(data["item"]) == 7 and data["pagination"] == {"next": "7"} and data["total"] == "25"
    api.configure(autoresponder_next_lies=True, autoresponder_count="page")
    data = autoresponder_page(api, {"grouping": "send", "autoresponderid": "302"}, 10)
    assert len(data["item"]) == 7 and data["pagination"] == {"next": "10"} and data["count"] == "7"
    assert autoresponder_page(api, {"grouping": "send", "autoresponderid": "302"}, 10, "21")["pagination"] == {"next": "0"}


@pytest.mark.parametrize(
    ("shape", "read"),
    [
        ("default", lambda d: (d["count"], len(d["subscribers"]))),
        ("keyed_by_id", lambda d: (d["count"], len(d["subscribers"]))),
        ("wrapped", lambda d: (d["response"]["data"]["count"], len(d["response"]["data"]["subscribers"]))),
        ("capitalised", lambda d: (int(d["Count"]), len(d["Subscribers"]))),
        ("bare_list", lambda d: (None, len(d))),
    ],
)
def test_result_files_come_in_every_shape_with_a_count_that_may_claim_more(api, http, shape, read):
    api.configure(result_shape=shape, result_count_offset=3)
    jobid = api.start()
    document = http.get(api.wait_until(jobid, "complete")["url"]).json()
    count, held = read(document)
    assert held == 5 and count == (None if shape == "bare_list" else 8)
    if shape == "keyed_by_id":
        assert all(key == record["subscriberid"] for key, record in document["subscribers"].items())
