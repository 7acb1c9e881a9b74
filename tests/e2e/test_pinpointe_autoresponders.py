"""pinpointe.autoresponder_results through the whole local stack: HTTP API -> Step Functions -> Start
(ready at once, no wait) -> Collect, which reads every page of the Pinpointe sandbox's
GetAutoresponderResults into a JSON Lines file in S3, over real sockets."""

import hashlib
import json

import httpx
import pytest

from tests.e2e.conftest import events, result_file, submit, wait_for

pytestmark = pytest.mark.e2e

OPERATION = "pinpointe.autoresponder_results"
RECORDS_FILE = "autoresponder_results.jsonl"


def json_lines(data: bytes) -> list[dict]:
    assert data == b"" or data.endswith(b"\n"), "a JSON Lines file ends with a newline"
    return [json.loads(line) for line in data.decode().split("\n")[:-1]]


def autoresponder_calls(sandbox) -> list[dict]:
    return [call for call in sandbox.calls() if call["requestmethod"] == "GetAutoresponderResults"]


def finished(api, params: dict) -> dict:
    return wait_for(api, submit(api, OPERATION, params)["job_id"], timeout=20)


def test_every_page_is_read_once_in_order_into_a_verified_json_lines_file(api, sandbox):
    sandbox.configure(autoresponder_sends=2500)
    job = finished(api, {"autorespondername": "Win-back", "grouping": "send", "limit": 1000})

    assert job["status"] == "SUCCEEDED", job
    result = job["result"]
    stored = httpx.get(result["download_url"]).content
    assert len(stored) == result["size"] and hashlib.sha256(stored).hexdigest() == result["sha256"]
    assert result["s3_uri"].endswith(f"/{RECORDS_FILE}")
    assert [f["name"] for f in result["files"]] == [RECORDS_FILE, "summary.json", "vendor_calls.jsonl"]
    records = json_lines(stored)
    assert [r["sendid"] for r in records] == [f"302-{n}" for n in range(1, 2501)]
    summary = json.loads(result_file(job, "summary.json"))
    assert (summary["records"], summary["pages"], summary["grouping"]) == (2500, 3, "send")
    pages = [call["details"]["pagination"] for call in autoresponder_calls(sandbox)]
    assert pages == [{"limit": "1", "next": "0"}] + [{"limit": "1000", "next": n} for n in ("0", "1000", "2000")]
    # Start went straight to Collect: no wait for a webhook, no poll.
    assert {"started", "collecting", "succeeded"} <= set(events(job)) and "vendor_status" not in events(job)
    assert not [call for call in sandbox.calls() if call["requestmethod"] == "AsyncJobStatus"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"autoresponderid": 301, "grouping": "send"}, ["301-1", "301-2", "301-3"]),
        ({"autoresponderid": "301"}, [None]),
        ({"all": True}, [None, None, None]),
    ],
)
def test_by_id_or_all_with_the_grouping_asked_for(api, sandbox, params, expected):
    job = finished(api, params)

    assert job["status"] == "SUCCEEDED", job
    records = json_lines(result_file(job, RECORDS_FILE))
    assert [r.get("sendid") for r in records] == expected
    assert json.loads(result_file(job, "summary.json"))["records"] == len(expected)
    sent = [call["details"] for call in autoresponder_calls(sandbox)]
    assert {d["grouping"] for d in sent} == {params.get("grouping", "autoresponder")}
    assert all(d.get("autoresponderid") == (None if params.get("all") else "301") for d in sent)


def test_an_unknown_autoresponder_name_fails_the_job_with_a_readable_reason(api, sandbox):
    job = finished(api, {"autorespondername": "Spring sale"})

    assert job["status"] == "FAILED" and job["result"] is None
    assert job["error"]["code"] == "VENDOR_REJECTED"
    assert "autorespondername 'Spring sale': Autoresponder not found" in job["error"]["message"]
    assert len(autoresponder_calls(sandbox)) == 1  # refused at the start: nothing was collected


def test_no_results_is_a_succeeded_job_with_an_empty_file_and_a_count_of_zero(api, sandbox):
    sandbox.configure(autoresponder_empty=True)
    job = finished(api, {"autorespondername": "Birthday", "grouping": "send"})

    assert job["status"] == "SUCCEEDED", job
    assert job["result"]["size"] == 0 and result_file(job, RECORDS_FILE) == b""
    assert json.loads(result_file(job, "summary.json"))["records"] == 0


def test_a_5xx_on_page_two_asks_for_page_two_again_and_the_file_has_no_duplicates(api, sandbox):
    sandbox.configure(autoresponder_sends=30, later_page_5xx=1)
    job = finished(api, {"all": True, "grouping": "send", "limit": 40})

    assert job["status"] == "SUCCEEDED", job
    records = json_lines(result_file(job, RECORDS_FILE))
    assert [r["sendid"] for r in records] == [f"{a}-{n}" for a in ("301", "302", "303") for n in range(1, 31)]
    assert json.loads(result_file(job, "summary.json"))["records"] == 90
    calls = [(call["details"]["pagination"]["next"], call["http_status"]) for call in autoresponder_calls(sandbox)]
    assert calls == [("0", 200), ("40", 503), ("40", 200), ("80", 200)]  # on from the page that failed
