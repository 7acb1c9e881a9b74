"""Which50 contact imports through the whole local stack: a contacts file uploaded with a presigned
PUT, checked against the list, posted in batches to the Which50 sandbox over real sockets, run
once, followed to its final counts, and reported."""

import json
import time

import pytest

from tests.e2e.conftest import events, result_file, submit, upload, wait_for

pytestmark = pytest.mark.e2e
FIELDS = ["Email", "FirstName", "Mobile"]


def contacts(first: int, last: int, domain: str = "bulk.example.org") -> list[str]:
    return [json.dumps({"Email": f"c{n}@{domain}", "FirstName": f"Contact {n}"}) for n in range(first, last + 1)]


def contact_import(api, source: str, **params) -> str:
    body = {"contact_list_id": 12, "source": source, "format": "jsonl", "field_names": FIELDS, **params}
    return submit(api, "which50.contact_import", body)["job_id"]


def finished(api, job_id: str) -> dict:
    return wait_for(api, job_id, timeout=90)


def vendor_state(which50) -> dict:
    return which50.get("/_sandbox/imports").json()


def list_count(which50, list_id: int = 12) -> int:
    return next(entry["count"] for entry in vendor_state(which50)["lists"] if entry["id"] == list_id)


def test_a_clean_import_of_25000_contacts_goes_in_three_batches_and_runs_once(api, which50):
    before = list_count(which50)
    job = finished(api, contact_import(api, upload(api, contacts(1, 25_000)), custom_events=["SendWelcomeEmail"]))

    assert job["status"] == "SUCCEEDED", job
    summary = json.loads(result_file(job, "summary.json"))
    assert summary["records"]["staged"] == 25_000 and summary["batches"] == 3
    assert summary["vendor_counts"]["inserted"] == 25_000 and summary["vendor_counts"]["invalid_email"] == 0
    assert summary["vendor_status"] == "Completed" and summary["vendor"]["finished_at"].endswith("+00:00")
    assert [f["name"] for f in job["result"]["files"]] == ["summary.json", "vendor_calls.jsonl"]
    (vendor_job,) = vendor_state(which50)["jobs"]
    assert (vendor_job["batches"], vendor_job["contacts_received"], vendor_job["run_calls"]) == (3, 25_000, 1)
    assert vendor_job["customevents"] == ["SendWelcomeEmail"]
    assert list_count(which50) == before + 25_000
    assert job["progress"]["percent"] == 100 and "api_key" not in json.dumps(job)


def test_progress_percent_is_shown_live_while_the_vendor_imports(api, which50):
    which50.post("/_sandbox/config", json={"process_seconds": 4}).raise_for_status()
    job_id = contact_import(api, upload(api, contacts(1, 10)))
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while (job := api.get(f"/jobs/{job_id}").json())["status"] not in ("SUCCEEDED", "PARTIAL", "FAILED"):
        assert time.monotonic() < deadline, job
        if job["status"] == "RUNNING" and job["progress"]["percent"] is not None:  # None: no percentage from Which50 yet
            seen.add(job["progress"]["percent"])
        time.sleep(0.1)

    assert job["status"] == "SUCCEEDED"
    assert any(0 < percent < 100 for percent in seen), seen


def test_an_unknown_list_fails_at_once_and_creates_nothing(api, which50):
    job = finished(api, contact_import(api, upload(api, contacts(1, 3)), contact_list_id=99))

    assert job["status"] == "FAILED" and job["error"]["code"] == "VENDOR_REJECTED"
    assert "no contact list 99" in job["error"]["message"]
    assert vendor_state(which50)["jobs"] == []


def test_an_unknown_field_fails_at_once_naming_the_lists_fields(api, which50):
    job = finished(api, contact_import(api, upload(api, contacts(1, 3)), field_names=["Email", "ShoeSize"]))

    assert job["status"] == "FAILED" and job["error"]["code"] == "VENDOR_REJECTED"
    assert "no field 'ShoeSize'" in job["error"]["message"] and "FirstName" in job["error"]["message"]
    assert vendor_state(which50)["jobs"] == []


def test_invalid_emails_and_unidentified_records_are_reported_by_line(api, which50):
    lines = [
        json.dumps({"Email": "ok1@example.org", "FirstName": "One"}),
        json.dumps({"Email": "not-an-email", "FirstName": "Two"}),  # line 2: Which50 counts and warns
        json.dumps({"FirstName": "Nobody"}),  # line 3: no identifier, never sent
        json.dumps({"Email": "ok4@example.org", "Shoe": 42}),  # line 4: not a field of the import
        json.dumps({"Email": "also bad", "FirstName": "Five"}),  # line 5: Which50 counts and warns
        json.dumps({"Email": "ok6@example.org", "Mobile": "353871234567"}),
    ]
    job = finished(api, contact_import(api, upload(api, lines)))

    assert job["status"] == "PARTIAL", job
    summary = json.loads(result_file(job, "summary.json"))
    assert summary["vendor_counts"]["invalid_email"] == 2 and summary["vendor_counts"]["inserted"] == 2
    assert summary["records"]["staged"] == 4 and summary["records"]["invalid"] == 2 and summary["validation_warnings"] == 2
    failed = [json.loads(line) for line in result_file(job, "failed_records.jsonl").splitlines()]
    assert [(f["line"], f["stage"]) for f in failed] == [(3, "validation"), (4, "validation")]
    assert "no identifier" in failed[0]["reasons"][0] and "Shoe" in failed[1]["reasons"][0]
    warnings = [json.loads(line) for line in result_file(job, "validation_warnings.jsonl").splitlines()]
    assert [w["line"] for w in warnings] == [2, 5] and all("email" in w["warnings"][0].lower() for w in warnings)


def test_a_csv_file_imports_from_its_header(api, which50):
    rows = ["Email,FirstName,Mobile", "csv1@example.org,Ada,", "csv2@example.org,,353871234567"]
    job = finished(api, contact_import(api, upload(api, rows, name="contacts.csv"), format="csv"))

    assert job["status"] == "SUCCEEDED", job
    assert json.loads(result_file(job, "summary.json"))["vendor_counts"]["inserted"] == 2


def test_vendor_5xx_during_batches_is_recovered_without_duplicates(api, which50):
    which50.post("/_sandbox/config", json={"http_5xx": 2, "fault_methods": ["batch"]}).raise_for_status()
    before = list_count(which50)
    job = finished(api, contact_import(api, upload(api, contacts(1, 12_000)), batch_size=5_000))

    assert job["status"] == "SUCCEEDED", job
    (vendor_job,) = vendor_state(which50)["jobs"]
    assert (vendor_job["batches"], vendor_job["contacts_received"], vendor_job["run_calls"]) == (3, 12_000, 1)
    assert list_count(which50) == before + 12_000


def test_two_503s_before_every_batch_do_not_fail_an_import_that_progresses(api, which50):
    config = {"http_5xx": 100, "fault_burst": 2, "fault_spacing": 1, "fault_methods": ["batch"]}
    which50.post("/_sandbox/config", json=config).raise_for_status()
    before = list_count(which50)
    job = finished(api, contact_import(api, upload(api, contacts(1, 20_000)), batch_size=5_000))

    assert job["status"] == "SUCCEEDED", job
    (vendor_job,) = vendor_state(which50)["jobs"]
    assert (vendor_job["batches"], vendor_job["contacts_received"], vendor_job["run_calls"]) == (4, 20_000, 1)
    assert list_count(which50) == before + 20_000
    refused = [c for c in which50.get("/_sandbox/calls").json() if c.get("fault") == "http_5xx"]
    assert len(refused) == 8  # two before each of the four batches: more than one request's budget


def test_a_batch_whose_answer_was_lost_restarts_the_import_without_duplicates(api, which50):
    which50.post("/_sandbox/config", json={"lost_answers": 1, "fault_methods": ["batch"]}).raise_for_status()
    before = list_count(which50)
    job = finished(api, contact_import(api, upload(api, contacts(1, 12_000)), batch_size=5_000))

    assert job["status"] == "SUCCEEDED", job
    abandoned, used = vendor_state(which50)["jobs"]
    assert abandoned["run_calls"] == 0  # holding the doubtful batch, never run: imports nothing
    assert (used["contacts_received"], used["run_calls"]) == (12_000, 1)
    assert list_count(which50) == before + 12_000
    assert events(job).count("import_restarted") == 1
    assert json.loads(result_file(job, "summary.json"))["restarts"] == 1


def test_cancel_while_the_vendor_is_running_the_import(api, which50):
    which50.post("/_sandbox/config", json={"process_seconds": 60}).raise_for_status()
    job_id = contact_import(api, upload(api, contacts(1, 100)))
    job = wait_for(api, job_id, statuses={"RUNNING"})
    deadline = time.monotonic() + 30
    while "import_executed" not in events(job):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = api.get(f"/jobs/{job_id}").json()

    cancelled = api.post(f"/jobs/{job_id}/cancel").json()

    assert cancelled["status"] == "CANCELLED"
    time.sleep(1)  # any poll in flight ends; the job must stay cancelled
    final = api.get(f"/jobs/{job_id}").json()
    assert final["status"] == "CANCELLED"
    (vendor_cancel,) = [e["detail"] for e in final["timeline"] if e["event"] == "vendor_cancel"]
    assert vendor_cancel == {"aborted": False}  # Which50 has no way to stop an import job
    (vendor_job,) = vendor_state(which50)["jobs"]
    assert vendor_job["run_calls"] == 1
