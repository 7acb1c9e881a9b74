"""No silent shortfall, for Pinpointe exports through the whole local stack: a job says SUCCEEDED only
when every record is there, checked against Pinpointe's own counts; anything less is PARTIAL with the
shortfall explained in `reconciliation`, FAILED when nothing can be trusted. Each test switches the
sandbox to a variant Pinpointe's docs allow (docs/VENDORS.md 1, Unknowns 1, 2, 4 and 6)."""

import json

import pytest

from tests.e2e.conftest import events, result_file, submit, wait_for

pytestmark = pytest.mark.e2e

LIST_METHOD = "GetListSubscribersAsync"
AUTORESPONDERS = "pinpointe.autoresponder_results"
RECORDS_FILE = "autoresponder_results.jsonl"


def starts(sandbox, method: str = LIST_METHOD) -> list[dict]:
    """The async starts the vendor saw (answered or not)."""
    return [call for call in sandbox.calls() if call["requestmethod"] == method]


def usertoken(aws) -> str:
    secret = aws("secretsmanager").get_secret_value(SecretId="jobrelay/pinpointe/default")["SecretString"]
    return json.loads(secret)["usertoken"]


def json_lines(data: bytes) -> list[dict]:
    assert data == b"" or data.endswith(b"\n"), "a JSON Lines file ends with a newline"
    lines = data.decode().split("\n")[:-1]
    assert len(lines) == len(data.decode().splitlines()), "no record may span two lines"
    return [json.loads(line) for line in lines]


def test_a_job_id_spelled_jobid_succeeds_after_exactly_one_start(api, sandbox):
    sandbox.configure(start_jobid_key="Jobid")
    job = wait_for(api, submit(api, "pinpointe.list_subscribers", {"list": ["12"]})["job_id"])

    assert job["status"] == "SUCCEEDED", job
    (start,) = starts(sandbox)
    assert job["vendor_ref"]["jobid"] == start["jobid"]
    assert job["reconciliation"]["reconciled"] is True


def test_an_unreadable_start_answer_fails_once_keeping_a_redacted_excerpt(api, sandbox, aws, stack):
    sandbox.configure(start_answer="not_json")
    job = wait_for(api, submit(api, "pinpointe.list_subscribers", {"list": ["12"]})["job_id"])

    assert job["status"] == "FAILED", job
    assert job["error"]["code"] == "VENDOR_PROTOCOL"
    assert "may have started an export" in job["error"]["message"] and "not sent again" in job["error"]["message"]
    assert len(starts(sandbox)) == 1  # never sent again, although the state machine retries protocol errors
    assert len(sandbox.http.get("/_sandbox/jobs").json()) == 1  # and the vendor did start it
    (unreadable,) = [e for e in job["timeline"] if e["event"] == "vendor_answer_unreadable"]
    assert "Cannot modify header information" in unreadable["detail"]["answer"]  # what Pinpointe said, kept
    assert "usertoken=***" in unreadable["detail"]["answer"]
    token = usertoken(aws)
    assert token not in json.dumps(job) and token not in json.dumps(api.get(f"/jobs/{job['job_id']}").json())


def test_a_start_answer_without_a_job_id_fails_once(api, sandbox):
    sandbox.configure(start_answer="no_jobid")
    job = wait_for(api, submit(api, "pinpointe.segment_subscribers", {"segmentid": ["3"]})["job_id"])

    assert job["status"] == "FAILED" and job["error"]["code"] == "VENDOR_PROTOCOL"
    assert len(starts(sandbox, "GetSegmentSubscribersAsync")) == 1
    assert "vendor_answer_unreadable" in events(job)


@pytest.mark.parametrize("drop_webhook", [False, True], ids=["webhook", "polling"])
def test_status_data_keyed_by_job_id_finishes_the_job_promptly(api, sandbox, drop_webhook):
    sandbox.configure(
        status_shape="keyed_by_id", status_word_case="upper", status_words={"complete": "completed"}, drop_webhook=drop_webhook
    )
    accepted = submit(api, "pinpointe.tag_subscribers", {"tag": ["7"]}, timeout_seconds=600)
    job = wait_for(api, accepted["job_id"], timeout=30)  # far inside its deadline

    assert job["status"] == "SUCCEEDED", job
    assert job["vendor_ref"]["last_status"] == "COMPLETED"
    assert "vendor_status_unknown" not in events(job)


def test_autoresponder_records_keyed_by_id_on_capped_pages_arrive_one_per_line_and_reconciled(api, sandbox):
    sandbox.configure(
        autoresponder_sends=30, autoresponder_records_shape="keyed_by_id", autoresponder_page_cap=7, autoresponder_count="total"
    )
    job = wait_for(api, submit(api, AUTORESPONDERS, {"all": True, "grouping": "send", "limit": 20})["job_id"], timeout=30)

    assert job["status"] == "SUCCEEDED", job
    records = json_lines(result_file(job, RECORDS_FILE))
    assert [r["sendid"] for r in records] == [f"{a}-{n}" for a in ("301", "302", "303") for n in range(1, 31)]
    assert all({"sendid", "autoresponderid", "emailopens"} <= set(r) for r in records)
    reconciliation = job["reconciliation"]
    assert reconciliation["reconciled"] is True and reconciliation["shortfall"] == []
    assert reconciliation["ours"]["written"] == reconciliation["vendor"]["total"] == 90
    assert json.loads(result_file(job, "summary.json"))["reconciliation"] == reconciliation
    pages = [call["details"]["pagination"]["next"] for call in starts(sandbox, "GetAutoresponderResults")]
    assert pages == [str(n) for n in range(0, 90, 7)]  # each page after the records actually sent


def test_a_next_that_disagrees_with_the_records_sent_is_partial_and_explained(api, sandbox):
    sandbox.configure(autoresponder_sends=25, autoresponder_page_cap=7, autoresponder_next_lies=True)
    job = wait_for(
        api, submit(api, AUTORESPONDERS, {"autoresponderid": "302", "grouping": "send", "limit": 10})["job_id"], timeout=30
    )

    assert job["status"] == "PARTIAL", job
    (reason,) = job["reconciliation"]["shortfall"]
    assert "pagination.next said the next page starts at record 10, but it had sent 7 records" in reason
    assert job["reconciliation"]["reconciled"] is False


def test_a_result_file_whose_count_claims_more_than_it_holds_is_partial_with_the_shortfall_explained(api, sandbox):
    sandbox.configure(result_count_offset=5, records=40)
    job = wait_for(api, submit(api, "pinpointe.list_subscribers", {"list": ["12"]})["job_id"])

    assert job["status"] == "PARTIAL", job
    assert job["result"]["s3_uri"].endswith("/result.json")  # the file is kept, as Pinpointe sent it
    assert [f["name"] for f in job["result"]["files"]] == ["result.json", "summary.json", "vendor_calls.jsonl"]
    reconciliation = job["reconciliation"]
    assert reconciliation["reconciled"] is False
    assert reconciliation["shortfall"] == ["result.json holds 40 records but the file's own count says 45: 5 missing"]
    assert (reconciliation["ours"], reconciliation["vendor"]) == ({"written": 40}, {"file_count": 45})
    summary = json.loads(result_file(job, "summary.json"))
    assert (summary["records"], summary["vendor_count"]) == (40, 45)
    assert len(json.loads(result_file(job, "result.json"))["subscribers"]) == 40
    assert "partial" in events(job)


@pytest.mark.parametrize("shape", ["keyed_by_id", "wrapped", "capitalised"])
def test_result_files_in_other_shapes_are_counted_and_succeed(api, sandbox, shape):
    sandbox.configure(result_shape=shape, records=12, status_count=True)
    job = wait_for(api, submit(api, "pinpointe.newsletter_contact_data_summary", {"stat": "4711"})["job_id"])

    assert job["status"] == "SUCCEEDED", job
    assert job["reconciliation"]["reconciled"] is True
    assert job["reconciliation"]["vendor"] == {"file_count": 12, "status_count": 12}
