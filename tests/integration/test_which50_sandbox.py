"""The Which50 sandbox over real sockets, spoken to in raw HTTP: the ApiKey header, the list and
import-job routes under the inferred root (docs/VENDORS.md 3), the counters a completed job reports, the
control routes and the faults a batch can suffer."""

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from devstack.sandbox.which50 import StagedContact, Which50Sandbox, stage_contact
from tests.integration.sandbox_client import SandboxControl

REPO = Path(__file__).resolve().parents[2]
NEWSLETTER = "/contactLists/12"


@pytest.fixture
def sandbox() -> Iterator[Which50Sandbox]:
    with Which50Sandbox(process_seconds=0.3) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        yield client


class Api(SandboxControl):
    """Raw calls under the account secret's base URL, with its ApiKey unless told otherwise."""

    def call(self, method: str, path: str, *, auth: str | None = None, **kwargs) -> httpx.Response:
        secret = self.sandbox.account_secret()
        header = auth if auth is not None else f"ApiKey {secret['api_key']}"
        return self.http.request(method, secret["base_url"] + path, headers={"Authorization": header}, **kwargs)

    def create(self, list_path: str = NEWSLETTER, fields: list[str] | None = None) -> dict:
        body = {"FieldNames": fields or ["Email", "FirstName", "Mobile"]}
        answer = self.call("POST", f"{list_path}/import", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def batch(self, job_id: int, contacts: list, list_path: str = NEWSLETTER, **kwargs) -> httpx.Response:
        return self.call("POST", f"{list_path}/import/{job_id}", json=contacts, **kwargs)

    def run(self, job_id: int, list_path: str = NEWSLETTER, **query) -> httpx.Response:
        return self.call("POST", f"{list_path}/import/{job_id}/run", params=query)

    def status(self, job_id: int, list_path: str = NEWSLETTER) -> dict:
        return self.call("GET", f"{list_path}/import/{job_id}").json()

    def wait_until(self, job_id: int, status: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while (answer := self.status(job_id))["CurrentStatus"] != status:
            assert time.monotonic() < deadline, f"job {job_id} stayed {answer['CurrentStatus']}"
            time.sleep(0.02)
        return answer

    def job(self, job_id: int) -> dict:
        return next(job for job in self.control("imports")["jobs"] if job["id"] == job_id)


@pytest.fixture
def api(sandbox, http) -> Api:
    return Api(sandbox, http)


def contact(email: str | None = None, mobile: str | None = None, *, list_id: int = 12, **values) -> dict:
    given = {"Email": email, "Mobile": mobile, **values}
    return {"ListId": list_id, "Values": {k: v for k, v in given.items() if v is not None}}


COUNTERS = ("InvalidEmailCount", "InvalidSmsCount", "InsertedContacts", "UpdatedContacts", "DroppedContacts",
            "NotUpdatedContacts", "TotalContacts")  # fmt: skip


def counters(job: dict) -> dict:
    return {name: job[name] for name in COUNTERS}


# --- setup and auth -----------------------------------------------------------------------------------


def test_binds_to_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        Which50Sandbox(host="0.0.0.0")


def test_the_account_secret_names_the_api_root_and_a_key_per_sandbox(sandbox):
    secret = sandbox.account_secret()
    assert secret["base_url"] == f"{sandbox.base_url}/Which50API" and secret["allow_http"] is True
    with Which50Sandbox() as other:
        assert other.account_secret()["api_key"] != secret["api_key"]


@pytest.mark.parametrize("header", ["", "ApiKey wrong", "Bearer {key}", "apikey {key}", "ApiKey", "{key}"])
def test_a_missing_or_wrong_api_key_answers_401(api, sandbox, header):
    answer = api.call("GET", "/contactLists", auth=header.format(key=sandbox.account_secret()["api_key"]))
    assert answer.status_code == 401
    assert answer.json() == {"Message": "Authorization has been denied for this request."}


def test_forbidden_refuses_every_call_with_the_right_key(api):
    api.configure(forbidden=True)
    calls = (("GET", "/contactLists"), ("POST", f"{NEWSLETTER}/import"), ("GET", f"{NEWSLETTER}/import/345"))
    for method, path in calls:
        answer = api.call(method, path, json={"FieldNames": ["Email"]})
        assert answer.status_code == 403
        assert answer.json() == {"Message": "The API key lacks permission for this resource."}
    assert api.call("GET", "/contactLists", auth="ApiKey wrong").status_code == 401  # who you are comes first


# --- lists and fields -----------------------------------------------------------------------------------


def test_lists_and_one_list(api):
    assert api.call("GET", "/contactLists").json() == [
        {"Id": 12, "Name": "Newsletter", "Count": 3}, {"Id": 31, "Name": "Customers", "Count": 0}
    ]  # fmt: skip
    assert api.call("GET", NEWSLETTER).json() == {"Id": 12, "Name": "Newsletter", "Count": 3}
    missing = api.call("GET", "/contactLists/99")
    assert missing.status_code == 404 and missing.json() == {"Message": "ContactList 99 was not found."}


def test_fields_of_a_list(api):
    fields = api.call("GET", f"{NEWSLETTER}/fields").json()
    assert [(f["Name"], f["MapType"], f["Position"]) for f in fields] == [
        ("Email", "Email", 1), ("FirstName", "Text", 2), ("LastName", "Text", 3), ("Mobile", "Sms", 4),
        ("Country", "Text", 5),
    ]  # fmt: skip
    assert all(isinstance(f["Id"], int) and f["ContactSchemaFieldValues"] == [] for f in fields)
    assert {f["Name"]: f["DefaultValue"] for f in fields}["Email"] is None
    assert [f["Name"] for f in api.call("GET", "/contactLists/31/fields").json()] == ["Email", "CustomerId", "Tier"]
    assert api.call("GET", "/contactLists/99/fields").status_code == 404


def test_unknown_routes_answer_404_and_wrong_methods_405(api):
    for method, path in (("GET", "/contacts/1"), ("GET", "/contactLists/x"), ("GET", f"{NEWSLETTER}/import/x/run")):
        answer = api.call(method, path)
        assert answer.status_code == 404 and answer.json()["Message"].startswith("No HTTP resource was found")
    assert api.http.get(f"{api.sandbox.base_url}/contactLists").status_code == 404  # outside the root
    wrong = api.call("DELETE", NEWSLETTER)
    assert wrong.status_code == 405 and "does not support http method 'DELETE'" in wrong.json()["Message"]
    assert api.call("GET", "/CONTACTLISTS/12").status_code == 200  # ASP.NET routes ignore case


# --- create -------------------------------------------------------------------------------------------------


def test_create_answers_a_fresh_job_and_ids_count_up_across_lists(api):
    first = api.create()
    assert first == {
        "Id": 345, "ContactListId": 12, "InvalidEmailCount": 0, "InvalidSmsCount": 0, "ProgressPercent": 0,
        "CurrentStatus": "Created", "StartDate": None, "FinishDate": None, "InsertedContacts": 0,
        "UpdatedContacts": 0, "DroppedContacts": 0, "NotUpdatedContacts": 0, "TotalContacts": 0,
    }  # fmt: skip
    second = api.create("/contactLists/31", ["Email", "Tier"])
    assert (second["Id"], second["ContactListId"]) == (346, 31)
    assert api.call("GET", f"{NEWSLETTER}/import/346").status_code == 404  # a job belongs to its list
    assert api.call("POST", "/contactLists/99/import", json={"FieldNames": ["Email"]}).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"FieldNames": ["Email", "Foo", "Bar"]}, "Unknown field(s) for ContactList 12: Foo, Bar"),
        ({"FieldNames": []}, "FieldNames must be a non-empty array of field names"),
        ({"FieldNames": "Email"}, "FieldNames must be a non-empty array of field names"),
        ({"FieldNames": ["Email", 3]}, "FieldNames must be a non-empty array of field names"),
        ({}, "FieldNames must be a non-empty array of field names"),
        (["Email"], "FieldNames must be a non-empty array of field names"),
    ],
)
def test_create_checks_its_field_names(api, body, message):
    answer = api.call("POST", f"{NEWSLETTER}/import", json=body)
    assert answer.status_code == 400 and answer.json() == {"Message": message}


# --- batches --------------------------------------------------------------------------------------------------


def test_a_batch_is_echoed_with_validation_warnings(api):
    job = api.create()["Id"]
    sent = [
        contact("ada@example.org", FirstName="Ada"),
        contact("not-an-email", "12ab"),
        contact("new@example.org", Foo="x"),
        {"EncContactId": "W50-12-0002", "ListId": 13, "Values": {"Email": "bob@example.org"}},
    ]
    answer = api.batch(job, sent)
    assert answer.status_code == 200
    assert answer.json() == [
        {"EncContactId": None, "ListId": 12, "Values": {"Email": "ada@example.org", "FirstName": "Ada"},
         "ValidationWarnings": []},
        {"EncContactId": None, "ListId": 12, "Values": {"Email": "not-an-email", "Mobile": "12ab"},
         "ValidationWarnings": ["Invalid email address: 'not-an-email'", "Invalid SMS number: '12ab'"]},
        {"EncContactId": None, "ListId": 12, "Values": {"Email": "new@example.org", "Foo": "x"},
         "ValidationWarnings": ["Unknown field 'Foo'"]},
        {"EncContactId": "W50-12-0002", "ListId": 13, "Values": {"Email": "bob@example.org"},
         "ValidationWarnings": ["ListId 13 does not match ContactList 12"]},
    ]  # fmt: skip
    before_run = api.status(job)
    assert (before_run["CurrentStatus"], before_run["TotalContacts"]) == ("Created", 0)  # no "received" counter
    assert (api.job(job)["batches"], api.job(job)["contacts_received"]) == (1, 4)


def test_a_batch_holds_at_most_10000_contacts_and_a_full_one_is_fast(api):
    job = api.create()["Id"]
    too_many = api.batch(job, [contact(f"p{n}@example.org") for n in range(10_001)])
    assert too_many.status_code == 400 and too_many.json() == {"Message": "A batch holds at most 10000 contacts"}
    started = time.monotonic()
    full = api.batch(job, [contact(f"p{n}@example.org", f"+35387000{n:04d}") for n in range(10_000)])
    assert full.status_code == 200 and len(full.json()) == 10_000
    assert time.monotonic() - started < 3
    assert api.job(job)["contacts_received"] == 10_000
    api.configure(max_batch_contacts=2)
    assert api.batch(job, [contact("a@b.io")] * 3).json() == {"Message": "A batch holds at most 2 contacts"}


@pytest.mark.parametrize("body", [{"ListId": 12}, [1], [{"Values": []}], [{"EncContactId": 5}], [{"ListId": "x"}]])
def test_a_batch_must_be_an_array_of_contact_objects(api, body):
    job = api.create()["Id"]
    answer = api.batch(job, body)
    assert answer.status_code == 400 and answer.json()["Message"].startswith("The request is invalid")
    assert api.job(job)["batches"] == 0


def test_a_batch_for_an_unknown_list_or_job_is_404(api):
    job = api.create()["Id"]
    assert api.batch(job, [], list_path="/contactLists/99").json() == {"Message": "ContactList 99 was not found."}
    assert api.batch(999, []).json() == {"Message": "ImportJob 999 was not found."}
    assert api.batch(job, [], list_path="/contactLists/31").status_code == 404


def test_staged_contacts_keep_only_their_identity_and_flags(sandbox):
    newsletter = sandbox._lists[12]
    fields = ("Email", "FirstName", "Mobile")
    kept, _ = stage_contact(contact("Ada@Example.org", "+353 87", FirstName="Ada"), newsletter, fields)
    assert kept == StagedContact("e:ada@example.org", invalid_email=False, invalid_sms=True, not_updatable=False)
    assert not hasattr(kept, "__dict__")  # slots: no room for the Values
    by_mobile, _ = stage_contact(contact("bad", "+353871234567"), newsletter, fields)
    assert by_mobile == StagedContact("s:353871234567", True, False, False)
    unknown_id, _ = stage_contact({"EncContactId": "nope", "ListId": 12, "Values": {}}, newsletter, fields)
    assert unknown_id == StagedContact(None, False, False, True)


# --- run and status ------------------------------------------------------------------------------------------


def test_the_full_lifecycle_counts_each_kind_of_contact(api):
    job = api.create()["Id"]
    api.batch(job, [
        contact("new1@example.org", FirstName="New"),        # inserted
        contact("ADA@example.org"),                          # updated: seeded (email compared lower-cased)
        contact(None, "353871234567"),                       # updated: the seeded mobile-only contact
        contact("not-an-email"),                             # invalid email, not imported
        contact("new2@example.org", "12ab"),                 # invalid SMS, still inserted by its email
    ])  # fmt: skip
    api.batch(job, [
        contact("bad@", "+447700900999"),                    # invalid email, inserted by its valid SMS
        contact("new1@example.org"),                         # updated: earlier in this job
        {"EncContactId": "W50-12-0002", "ListId": 12, "Values": {"FirstName": "Bob"}},  # updated by its id
        {"EncContactId": "W50-99-0000", "ListId": 12, "Values": {"Email": "x@example.org"}},  # not updated
    ])  # fmt: skip
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    ran = api.run(job, customevents="SendWelcomeEmail,Tag", match="Email,Mobile")
    assert ran.status_code == 200
    running = ran.json()
    assert running["CurrentStatus"] == "Running" and running["FinishDate"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", running["StartDate"])
    assert before <= datetime.fromisoformat(running["StartDate"]) <= before + timedelta(seconds=2)
    done = api.wait_until(job, "Completed")
    assert done["ProgressPercent"] == 100 and done["FinishDate"] >= done["StartDate"]
    assert counters(done) == {
        "InvalidEmailCount": 2, "InvalidSmsCount": 1, "InsertedContacts": 3, "UpdatedContacts": 4,
        "DroppedContacts": 0, "NotUpdatedContacts": 1, "TotalContacts": 7,
    }  # fmt: skip
    assert api.call("GET", NEWSLETTER).json()["Count"] == 6
    recorded = api.job(job)
    assert (recorded["customevents"], recorded["match"]) == (["SendWelcomeEmail", "Tag"], ["Email", "Mobile"])
    assert (recorded["batches"], recorded["contacts_received"], recorded["run_calls"]) == (2, 9, 1)

    # A later job finds the contacts this one imported.
    again = api.create()["Id"]
    api.batch(again, [contact("new1@example.org"), contact("new3@example.org")])
    api.run(again)
    assert counters(api.wait_until(again, "Completed"))["InsertedContacts"] == 1
    assert api.control("imports")["lists"][0] == {"id": 12, "name": "Newsletter", "count": 7}


def test_progress_rises_with_time_then_completes(api):
    api.configure(process_seconds=1.0)
    job = api.create()["Id"]
    api.batch(job, [contact("p@example.org")])
    assert api.run(job).json()["ProgressPercent"] < 20
    seen = []
    while (answer := api.status(job))["CurrentStatus"] == "Running":
        seen.append(answer["ProgressPercent"])
        assert answer["InsertedContacts"] == 0 and answer["FinishDate"] is None
        time.sleep(0.1)
    assert answer["CurrentStatus"] == "Completed" and answer["InsertedContacts"] == 1
    assert seen == sorted(seen) and len(set(seen)) >= 3 and 0 < max(seen) < 100


def test_a_second_run_answers_the_job_and_is_counted(api):
    job = api.create()["Id"]
    api.batch(job, [contact("p@example.org")])
    first = api.run(job, customevents="A").json()
    second = api.run(job, customevents="B")
    assert second.status_code == 200 and second.json()["StartDate"] == first["StartDate"]
    recorded = api.job(job)
    assert (recorded["run_calls"], recorded["customevents"], recorded["match"]) == (2, ["A"], None)
    assert counters(api.wait_until(job, "Completed"))["InsertedContacts"] == 1  # imported once


def test_a_batch_after_run_is_409(api):
    job = api.create()["Id"]
    api.run(job)
    late = api.batch(job, [contact("late@example.org")])
    assert late.status_code == 409 and late.json() == {"Message": f"ImportJob {job} has already been run"}
    assert api.job(job)["contacts_received"] == 0


@pytest.mark.parametrize(("fail_jobs", "status"), [(True, "Failed"), ("Aborted", "Aborted")])
def test_jobs_can_be_made_to_fail(api, fail_jobs, status):
    api.configure(fail_jobs=fail_jobs)
    job = api.create()["Id"]
    api.batch(job, [contact("p@example.org")])
    api.run(job)
    failed = api.wait_until(job, status)
    assert failed["ProgressPercent"] == 40 and failed["FinishDate"] is not None
    assert counters(failed)["TotalContacts"] == 0
    assert api.call("GET", NEWSLETTER).json()["Count"] == 3  # nothing imported


# --- doc-consistent variants (Unknowns 18-20) ---------------------------------------------------------


def run_new_contacts(api, count: int) -> int:
    job = api.create()["Id"]
    assert api.batch(job, [contact(f"v{n}@example.org") for n in range(count)]).status_code == 200
    assert api.run(job).status_code == 200
    return job


def test_percent_100_while_still_processing_shows_half_the_counts_then_the_final_ones(api):
    api.configure(process_seconds=0.2, percent_before_status_seconds=0.6)
    job = run_new_contacts(api, 10)
    lagging = api.wait_until(job, "Processing")
    assert (lagging["ProgressPercent"], lagging["FinishDate"], lagging["InsertedContacts"], lagging["TotalContacts"]) == (
        100,
        None,
        5,
        5,
    )
    done = api.wait_until(job, "Completed")
    assert (done["ProgressPercent"], done["InsertedContacts"], done["TotalContacts"]) == (100, 10, 10)
    assert done["FinishDate"] is not None


def test_finish_with_errors_refuses_one_contact_in_four_as_not_updated(api):
    api.configure(finish_with_errors=True)
    job = run_new_contacts(api, 8)
    done = api.wait_until(job, "CompletedWithErrors")
    assert (done["InsertedContacts"], done["NotUpdatedContacts"], done["TotalContacts"], done["ProgressPercent"]) == (
        6,
        2,
        6,
        100,
    )
    assert api.call("GET", NEWSLETTER).json()["Count"] == 3 + 6


def test_fail_after_inserting_applies_most_contacts_and_counts_no_other(api):
    api.configure(fail_after_inserting="Failed: connection reset")
    job = run_new_contacts(api, 10)
    failed = api.wait_until(job, "Failed: connection reset")
    assert (failed["InsertedContacts"], failed["NotUpdatedContacts"], failed["TotalContacts"]) == (8, 0, 8)
    assert failed["ProgressPercent"] == 80 and failed["FinishDate"] is not None
    assert api.call("GET", NEWSLETTER).json()["Count"] == 3 + 8


def test_status_words_and_camel_case_change_only_how_answers_are_written(api):
    api.configure(camel_case=True, status_words={"Created": "NEW", "Completed": "Finished"})
    created = api.create()
    assert created["currentStatus"] == "NEW" and "CurrentStatus" not in created
    echo = api.batch(created["id"], [contact("c@example.org", FirstName="Cy")]).json()
    assert echo == [
        {"encContactId": None, "listId": 12, "values": {"Email": "c@example.org", "FirstName": "Cy"}, "validationWarnings": []}
    ]
    api.run(created["id"])
    deadline = time.monotonic() + 5
    while (done := api.status(created["id"]))["currentStatus"] != "Finished":
        assert time.monotonic() < deadline, done
        time.sleep(0.02)
    assert done["insertedContacts"] == 1 and api.job(created["id"])["status"] == "Completed"  # the control route keeps its words
    assert api.call("GET", NEWSLETTER + "/import/999999").json() == {"message": "ImportJob 999999 was not found."}


@pytest.mark.parametrize("answer", ["no_id", "not_json"])
def test_a_create_answer_may_be_unreadable_though_the_job_is_created(api, sandbox, answer):
    api.configure(create_answer=answer)
    created = api.call("POST", f"{NEWSLETTER}/import", json={"FieldNames": ["Email"]})
    assert created.status_code == 200
    if answer == "no_id":
        assert "Id" not in created.json() and created.json()["CurrentStatus"] == "Created"
    else:
        assert created.headers["content-type"].startswith("text/html")
        assert sandbox.account_secret()["api_key"] in created.text  # echoed: what the client must never keep
    assert len(api.control("imports")["jobs"]) == 1


def test_the_most_jobs_running_at_once_is_reported(api):
    api.configure(process_seconds=0.5)
    jobs = [api.create()["Id"] for _ in range(3)]
    api.run(jobs[0])
    api.run(jobs[1])
    assert api.control("imports")["max_concurrent_running"] == 2
    api.wait_until(jobs[1], "Completed")
    api.run(jobs[2])
    assert api.control("imports")["max_concurrent_running"] == 2


# --- faults ------------------------------------------------------------------------------------------------------


def test_a_5xx_batch_is_not_recorded(api):
    job = api.create()["Id"]
    api.configure(http_5xx=1, fault_methods=["batch"])
    assert api.status(job)["CurrentStatus"] == "Created"  # another kind of call: no fault
    assert api.batch(job, [contact("p@example.org")]).status_code == 503
    assert api.job(job)["contacts_received"] == 0
    assert api.batch(job, [contact("p@example.org")]).status_code == 200
    assert (api.job(job)["batches"], api.job(job)["contacts_received"]) == (1, 1)


def test_a_batch_whose_answer_is_lost_is_recorded(api):
    job = api.create()["Id"]
    api.configure(lost_answers=1, fault_methods=["batch"])
    with pytest.raises(httpx.RemoteProtocolError):
        api.batch(job, [contact("p@example.org"), contact("q@example.org")])
    assert (api.job(job)["batches"], api.job(job)["contacts_received"]) == (1, 2)
    assert api.control("calls")[-1]["fault"] == "lost_answers"


def test_a_batch_that_times_out_is_recorded_before_the_hang(api):
    job = api.create()["Id"]
    api.configure(timeouts=1, timeout_hang_seconds=2, fault_methods=["batch"])
    with pytest.raises(httpx.ReadTimeout):
        api.batch(job, [contact("p@example.org")], timeout=0.3)
    assert api.job(job)["contacts_received"] == 1


def test_malformed_answers_and_slow_calls(api):
    api.configure(malformed=1, fault_methods=["lists"])
    answer = api.call("GET", "/contactLists")
    assert answer.status_code == 200 and answer.headers["content-type"] == "text/html"
    api.configure(slow_seconds=0.3, fault_methods=None)
    started = time.monotonic()
    assert api.call("GET", NEWSLETTER).status_code == 200
    assert 0.3 <= time.monotonic() - started < 1.5


# --- control routes -----------------------------------------------------------------------------------------------


def test_the_call_log_and_reset(api, sandbox, http):
    job = api.create()["Id"]
    api.batch(job, [contact("p@example.org")])
    api.run(job)
    logged = [{k: v for k, v in c.items() if k != "at"} for c in api.control("calls")]
    assert logged == [
        {"method": "POST", "kind": "create", "list_id": 12, "job_id": job, "http_status": 200},
        {"method": "POST", "kind": "batch", "list_id": 12, "job_id": job, "contacts": 1, "http_status": 200},
        {"method": "POST", "kind": "run", "list_id": 12, "job_id": job, "run_calls": 1, "http_status": 200},
    ]
    api.wait_until(job, "Completed")
    http.post(f"{sandbox.base_url}/_sandbox/reset").raise_for_status()
    imports = api.control("imports")
    assert imports["jobs"] == [] and imports["lists"][0]["count"] == 3 and api.control("calls") == []
    assert api.create()["Id"] == job + 1  # ids never repeat, so a stale one cannot match


def test_config_refuses_unknown_keys_and_bad_values(sandbox, http):
    for bad in ({"no_such_key": 1}, {"process_seconds": -1}, {"max_batch_contacts": 0}, {"forbidden": "maybe"}):
        answer = http.post(f"{sandbox.base_url}/_sandbox/config", json=bad)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid config"


def test_runs_standalone_and_prints_its_url_and_secret():
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.sandbox.which50", "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        url = re.fullmatch(r"Which50 sandbox on (http://127\.0\.0\.1:\d+)\n", process.stdout.readline()).group(1)
        assert process.stdout.readline().startswith(f'account secret: {{"base_url": "{url}/Which50API", "api_key": ')
        with httpx.Client(trust_env=False) as http:
            assert http.get(f"{url}/_sandbox/config").json()["process_seconds"] == 1.0
    finally:
        process.terminate()
        process.wait(timeout=5)
