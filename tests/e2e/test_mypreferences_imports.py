"""MyPreferences bulk imports through the whole local stack: a records file uploaded with a
presigned PUT, staged in batches to the MyPreferences sandbox over real sockets, run, followed,
and reported record by record."""

import json
import time

import httpx
import pytest

from tests.e2e.conftest import events, result_file, submit, upload, wait_for

pytestmark = pytest.mark.e2e
MB = 1_000_000


def record(n: int, domain: str = "example.org", id_type: str = "CRM_ID") -> dict:
    return {
        "CustomerName": {"FirstName": "Ada", "LastName": f"Lovelace{n}"},
        "AlternateIds": [{"AlternateIdType": id_type, "AlternateId": f"C-{n}"}],
        "Emails": [{"EmailAddress": f"ada{n}@{domain}", "IsDefault": True}],
    }


def import_job(api, source: str, fmt: str = "jsonl", **params) -> dict:
    body = {
        "source": source,
        "format": fmt,
        "name": "nightly preferences",
        "match_criteria": "AlternateIdType",
        "match_value": "CRM_ID",
        **params,
    }
    return wait_for(api, submit(api, "mypreferences.bulk_import", body)["job_id"], timeout=90)


def test_a_clean_import_stages_every_record_once_in_size_limited_batches(api, mypreferences):
    lines = [json.dumps(record(n)) for n in range(1, 12_001)]
    job = import_job(api, upload(api, lines), batch_bytes=MB)

    assert job["status"] == "SUCCEEDED", job
    summary = json.loads(result_file(job, "summary.json"))
    assert summary["records"]["staged"] == 12_000 and summary["records"]["failed_total"] == 0
    assert summary["reconciled"] and summary["batches"] >= 2
    assert [f["name"] for f in job["result"]["files"]] == ["summary.json", "vendor_calls.jsonl"]
    (vendor_import,) = mypreferences.get("/_sandbox/imports").json()
    assert vendor_import["staged_records"] == 12_000 and vendor_import["stage_requests"] == summary["batches"]
    assert "access_token" not in json.dumps(job)


def test_invalid_lines_and_vendor_exceptions_make_a_partial_import_with_an_exact_failure_file(api, mypreferences):
    lines = [
        json.dumps(record(1)),
        '{"Emails": [{"EmailAddress": "not-an-email"}]}',  # line 2: refused by our validation
        "not json at all",  # line 3: refused by our validation
        json.dumps(record(4, domain="exception.test")),  # line 4: an execution exception at the vendor
        json.dumps(record(5, id_type="NO_SUCH_TYPE")),  # line 5: refused by the vendor at staging
        json.dumps(record(6)),
    ]
    job = import_job(api, upload(api, lines))

    assert job["status"] == "PARTIAL", job
    failed = [json.loads(line) for line in result_file(job, "failed_records.jsonl").splitlines()]
    # Ours first, as the file was read; then the vendor's, in the order the records were staged.
    assert [(f["line"], f["stage"]) for f in failed] == [(2, "validation"), (3, "validation"), (4, "vendor"), (5, "vendor")]
    assert all(f["reasons"] for f in failed)
    assert {f["key"] for f in failed if f["stage"] == "vendor"} <= {"C-4", "C-5", None}
    summary = json.loads(result_file(job, "summary.json"))
    assert summary["records"]["staged"] == 4 and summary["records"]["invalid"] == 2


def test_an_import_the_vendor_fails_ends_failed_with_its_reason(api, mypreferences):
    mypreferences.post("/_sandbox/config", json={"fail_imports": "duplicate profile keys"}).raise_for_status()
    job = import_job(api, upload(api, [json.dumps(record(n)) for n in range(3)]))

    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "VENDOR_FAILED" and "duplicate profile keys" in job["error"]["message"]


def test_an_access_token_about_to_expire_fails_the_job_before_it_dies(api, mypreferences):
    mypreferences.post("/_sandbox/config", json={"token_seconds": 60}).raise_for_status()
    job = import_job(api, upload(api, [json.dumps(record(n)) for n in range(3)]))

    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "VENDOR_REJECTED" and "access token" in job["error"]["message"]


def test_a_stage_request_refused_with_5xx_is_retried_without_duplicates(api, mypreferences):
    mypreferences.post("/_sandbox/config", json={"http_5xx": 2, "fault_methods": ["stage"]}).raise_for_status()
    job = import_job(api, upload(api, [json.dumps(record(n)) for n in range(1, 501)]))

    assert job["status"] == "SUCCEEDED", job
    (vendor_import,) = mypreferences.get("/_sandbox/imports").json()
    assert vendor_import["staged_records"] == 500


def test_an_import_meeting_a_503_on_every_other_stage_request_succeeds_with_each_record_once(api, mypreferences):
    """More 503s than any one request's retry budget, spread over the import (never two in a row):
    each accepted batch gives the budget back, so the import succeeds."""
    config = {"http_5xx": 100, "fault_spacing": 1, "fault_methods": ["stage"]}
    mypreferences.post("/_sandbox/config", json=config).raise_for_status()
    job = import_job(api, upload(api, [json.dumps(record(n)) for n in range(1, 40_001)]), batch_bytes=MB)

    assert job["status"] == "SUCCEEDED", (job.get("error"), events(job))
    summary = json.loads(result_file(job, "summary.json"))
    (vendor_import,) = mypreferences.get("/_sandbox/imports").json()
    assert vendor_import["staged_records"] == summary["records"]["staged"] == 40_000
    assert vendor_import["stage_requests"] == summary["batches"] >= 7  # accepted requests: one per batch
    refused = [c for c in mypreferences.get("/_sandbox/calls").json() if c.get("fault") == "http_5xx"]
    assert len(refused) >= 7 and summary["reconciled"]


def test_a_file_that_is_not_jsonl_fails_at_once(api, mypreferences):
    ticket = api.post("/uploads", json={"filename": "photo.jsonl"}).json()
    httpx.put(
        ticket["upload_url"], content=b"\x89PNG\r\n\x1a\n" + bytes(range(256)), headers=ticket["headers"]
    ).raise_for_status()
    job = import_job(api, ticket["s3_uri"])

    assert job["status"] == "FAILED" and job["error"]["code"] == "INVALID_SOURCE"
    assert mypreferences.get("/_sandbox/imports").json() == []


def test_a_source_outside_the_upload_folders_is_refused(api, mypreferences, stack):
    params = {"source": f"s3://{stack['bucket']}/results/someone-elses/result.json", "format": "jsonl", "name": "nightly"}
    answer = api.post("/jobs", json={"operation": "mypreferences.bulk_import", "params": params})

    assert answer.status_code == 422  # at submit time: no job is made that could only fail
    assert [d["field"] for d in answer.json()["error"]["details"]] == ["params.source"]
    assert mypreferences.get("/_sandbox/imports").json() == []


def test_cancel_during_staging(api, mypreferences):
    mypreferences.post("/_sandbox/config", json={"slow_seconds": 2.0, "fault_methods": ["stage"]}).raise_for_status()
    lines = [json.dumps(record(n)) for n in range(1, 12_001)]
    body = {"source": upload(api, lines), "format": "jsonl", "name": "big", "batch_bytes": MB}
    job_id = submit(api, "mypreferences.bulk_import", body)["job_id"]
    deadline = time.monotonic() + 30
    while not any(call["kind"] == "stage" for call in mypreferences.get("/_sandbox/calls").json()):
        assert time.monotonic() < deadline, "staging never started"
        time.sleep(0.05)

    cancelled = api.post(f"/jobs/{job_id}/cancel").json()

    assert cancelled["status"] == "CANCELLED"
    final = wait_for(api, job_id)
    time.sleep(3)  # the stage request in flight ends; nothing may follow it
    assert final["status"] == "CANCELLED" and "import_executed" not in events(api.get(f"/jobs/{job_id}").json())
    (vendor_import,) = mypreferences.get("/_sandbox/imports").json()
    assert vendor_import["Status"] in ("Initiated", "Staging")  # never executed
    assert not any(call["kind"] == "execute" for call in mypreferences.get("/_sandbox/calls").json())


def test_a_batch_whose_answer_was_lost_is_not_staged_twice(api, mypreferences):
    # The vendor takes the first stage request but the answer never arrives: the step fails, is
    # retried, asks the vendor how many records it has, and carries on after that batch.
    mypreferences.post("/_sandbox/config", json={"lost_answers": 1, "fault_methods": ["stage"]}).raise_for_status()
    lines = [json.dumps(record(n)) for n in range(1, 12_001)]
    job = import_job(api, upload(api, lines), batch_bytes=MB)

    assert job["status"] == "SUCCEEDED", job
    (vendor_import,) = mypreferences.get("/_sandbox/imports").json()
    assert vendor_import["staged_records"] == 12_000
    reconciled = [e["detail"] for e in job["timeline"] if e["event"] == "batch_reconciled"]
    assert reconciled == [{"batch": 0, "outcome": "arrived"}]
    assert json.loads(result_file(job, "summary.json"))["reconciled"] is True
