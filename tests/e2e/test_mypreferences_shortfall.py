"""No silent shortfall (issue 9), through the whole local stack against doc-consistent variants of
the MyPreferences sandbox: a job says SUCCEEDED only when every record is there by the vendor's own
counts, PARTIAL with the shortfall explained otherwise, and an Initiate whose answer cannot be read
is never sent twice."""

import json

import httpx
import pytest

from tests.e2e.conftest import result_file, submit, upload, wait_for

pytestmark = pytest.mark.e2e


def record(n: int, domain: str = "example.org", id_type: str = "CRM_ID") -> dict:
    return {
        "CustomerName": {"FirstName": "Ada", "LastName": f"Lovelace{n}"},
        "AlternateIds": [{"AlternateIdType": id_type, "AlternateId": f"C-{n}"}],
        "Emails": [{"EmailAddress": f"ada{n}@{domain}", "IsDefault": True}],
    }


def import_job(api, lines: list[str]) -> dict:
    body = {"source": upload(api, lines), "format": "jsonl", "name": "shortfall",
            "match_criteria": "AlternateIdType", "match_value": "CRM_ID"}  # fmt: skip
    return wait_for(api, submit(api, "mypreferences.bulk_import", body)["job_id"], timeout=90)


def configure(box: httpx.Client, **config) -> None:
    box.post("/_sandbox/config", json=config).raise_for_status()


def failed_lines(job: dict) -> list[dict]:
    return [json.loads(line) for line in result_file(job, "failed_records.jsonl").splitlines()]


def test_exceptions_paged_smaller_than_asked_are_all_reported_and_reconciled(api, mypreferences):
    # The vendor serves 2 failed records a page whatever limit we ask: every one must still be listed.
    configure(mypreferences, exceptions_page_cap=2, exception_every=4)
    lines = [json.dumps(record(n)) for n in range(1, 21)] + [json.dumps(record(21, id_type="NO_SUCH_TYPE"))]
    job = import_job(api, lines)

    assert job["status"] == "PARTIAL", job
    failed = failed_lines(job)
    # Lines 4, 8, ... 20 failed at execution; line 21 at staging (an AlternateIdType the account lacks).
    assert [(f["line"], f["stage"]) for f in failed] == [(line, "vendor") for line in (4, 8, 12, 16, 20, 21)]
    summary = json.loads(result_file(job, "summary.json"))
    assert summary["reconciliation"]["reconciled"] is True
    assert summary["vendor_counts"]["exceptions"] + summary["vendor_counts"]["validation_failed"] == len(failed)
    assert job["reconciliation"]["reconciled"] is True and len(job["reconciliation"]["shortfall"]) == 2
    pages = [call for call in mypreferences.get("/_sandbox/calls").json() if call["kind"] == "exceptions"]
    assert len(pages) == 3  # 6 records, 2 a page


def test_records_the_vendor_did_not_honour_make_the_import_partial(api, mypreferences):
    configure(mypreferences, not_honored=2)
    job = import_job(api, [json.dumps(record(n)) for n in range(1, 6)])

    assert job["status"] == "PARTIAL", job
    assert job["progress"]["counts"]["not_honored"] == 2
    reconciliation = job["reconciliation"]
    assert reconciliation["reconciled"] is True
    assert reconciliation["shortfall"] == [
        "2 records were not honoured by MyPreferences during the import (see failed_records.jsonl)"
    ]
    assert [(f["line"], f["key"]) for f in failed_lines(job)] == [(1, "C-1"), (2, "C-2")]
    assert json.loads(result_file(job, "summary.json"))["reconciliation"]["shortfall"] == reconciliation["shortfall"]


def test_camel_case_answers_and_an_upper_case_status_word_succeed_on_a_clean_file(api, mypreferences):
    configure(mypreferences, camel_case=True, status_words={"Completed": "COMPLETED", "Processing": "InProgress"})
    job = import_job(api, [json.dumps(record(n)) for n in range(1, 11)])

    assert job["status"] == "SUCCEEDED", job
    assert job["vendor_ref"]["last_status"] == "COMPLETED"
    assert job["progress"]["counts"]["processed"] == 10 and job["progress"]["counts"]["received"] == 10
    assert job["reconciliation"]["reconciled"] is True and job["reconciliation"]["shortfall"] == []
    assert [f["name"] for f in job["result"]["files"]] == ["summary.json", "vendor_calls.jsonl"]


def test_an_unreadable_initiate_answer_fails_once_without_opening_a_second_import(api, mypreferences):
    configure(mypreferences, initiate_answer="not_json")  # cut short just after the AccessToken
    job = import_job(api, [json.dumps(record(n)) for n in range(1, 4)])

    assert job["status"] == "FAILED", job
    assert job["error"]["code"] == "VENDOR_PROTOCOL"
    assert "an import may have been opened at MyPreferences" in job["error"]["message"]
    assert "daily import quota" in job["error"]["message"]
    assert [call["kind"] for call in mypreferences.get("/_sandbox/calls").json() if call["kind"] != "token"] == ["initiate"]
    (opened,) = mypreferences.get("/_sandbox/imports").json()
    assert str(opened["AccessToken"]) not in json.dumps(api.get(f"/jobs/{job['job_id']}").json())
