"""The Which50 adapter against the Which50 sandbox over real sockets: a whole import from the list
check to its final counters, and each refusal and fault as the step errors the state machine
expects."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devstack.sandbox.which50 import Which50Sandbox
from jobrelay.domain.bulk_import import ImportTotals
from jobrelay.domain.errors import VendorOutcomeUnknown, VendorRejected, VendorTransientError
from jobrelay.domain.job import Job
from jobrelay.domain.reconciliation import Reconciler, Reconciliation
from jobrelay.domain.vendor_outcomes import PollOutcome, VendorState
from jobrelay.vendors.which50.adapter import ImportJobRef, Which50Account, Which50Imports, which50_imports
from tests.integration.sandbox_client import SandboxControl

PROCESS_SECONDS = 0.3
PARAMS = {
    "contact_list_id": 12,
    "source": "s3://imports/contacts.jsonl",
    "format": "jsonl",
    "field_names": ["Email", "FirstName", "Mobile"],
}


@pytest.fixture
def sandbox() -> Iterator[Which50Sandbox]:
    with Which50Sandbox(process_seconds=PROCESS_SECONDS) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as client:
        yield client


@pytest.fixture
def control(sandbox, http) -> SandboxControl:
    return SandboxControl(sandbox, http)


def make_imports(sandbox: Which50Sandbox, http: httpx.Client, **secret) -> Which50Imports:
    return Which50Imports(Which50Account.model_validate({**sandbox.account_secret(), **secret}), http=http)


@pytest.fixture
def imports(sandbox, http) -> Which50Imports:
    return make_imports(sandbox, http)


def new_job(**params) -> Job:
    return Job(
        job_id=f"job-{time.monotonic_ns()}",
        operation="which50.contact_import",
        vendor="which50",
        deadline_at=datetime.now(UTC) + timedelta(hours=1),
        params={**PARAMS, **params},
    )


def with_ref(job: Job, ref: ImportJobRef, **changes) -> Job:
    """`job` carrying `ref` as the job store keeps it: its shown fields, and its secrets apart."""
    return job.model_copy(update={"vendor_ref": ref.shown(), "vendor_secrets": ref.secrets(), **changes})


def opened(imports: Which50Imports, **params) -> Job:
    job = new_job(**params)
    return with_ref(job, imports.open(job))


def send(imports: Which50Imports, job: Job, records: list[dict]):
    contacts = [imports.validate(job, r) for r in records]
    return imports.stage(job, imports.batch_format(job).encode(contacts), len(contacts))


def finished(imports: Which50Imports, job: Job, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while (outcome := imports.poll(job)).state is VendorState.RUNNING:
        assert time.monotonic() < deadline, "the import never finished"
        time.sleep(0.05)
    return outcome


def test_a_whole_import_from_list_check_to_final_counts(imports, control):
    job = opened(imports, custom_events=["SendWelcomeEmail"], match=["Email"])
    ref = ImportJobRef.of(job)
    assert ref.identifier_fields == ["Email", "Mobile"] and ref.contact_list_name == "Newsletter"
    staged = send(imports, job, [
        {"Email": "new1@example.org", "FirstName": "New"},
        {"Email": "ada@example.org", "FirstName": "Ada"},  # seeded: an update
        {"Email": "not-an-email", "Mobile": "12ab"},
    ])  # fmt: skip
    assert [position for position, _ in staged.warnings] == [2]
    assert any("Invalid email" in w for w in staged.warnings[0][1])

    assert imports.run_started(job) is False
    imports.execute(job)
    assert imports.run_started(job) is True  # a retried step asks first: the job has started, run is not sent again
    outcome = finished(imports, job)

    assert outcome.state is VendorState.DONE and outcome.raw_status == "Completed"
    assert outcome.progress.percent == 100
    counts = outcome.progress.counts
    assert (counts["inserted"], counts["updated"], counts["invalid_email"], counts["invalid_sms"]) == (1, 1, 1, 1)
    assert outcome.vendor_ref.finished_at.endswith("+00:00") and outcome.vendor_ref.status == "Completed"
    assert outcome.vendor_ref.import_job_id == ImportJobRef.of(job).import_job_id  # the whole reference, updated
    (vendor_job,) = control.control("imports")["jobs"]
    assert vendor_job["run_calls"] == 1 and vendor_job["batches"] == 1
    assert vendor_job["customevents"] == ["SendWelcomeEmail"] and vendor_job["match"] == ["Email"]
    assert list(imports.failures(job)) == [] and imports.cancel(job) is False


def test_progress_is_read_while_the_job_runs(imports, control):
    control.configure(process_seconds=2.0)
    job = opened(imports)
    send(imports, job, [{"Email": "p@example.org"}])
    imports.execute(job)
    time.sleep(0.5)
    outcome = imports.poll(job)
    assert outcome.state is VendorState.RUNNING and 0 < outcome.progress.percent < 100


def test_an_unknown_list_or_field_is_a_readable_refusal(imports, control):
    with pytest.raises(VendorRejected, match="no contact list 99"):
        opened(imports, contact_list_id=99)
    with pytest.raises(VendorRejected, match=r"has no field 'Shoe'; its fields are Email, FirstName"):
        opened(imports, field_names=["Email", "Shoe"])
    assert control.control("imports")["jobs"] == []  # nothing was created


@pytest.mark.parametrize(("secret", "config", "status"), [({"api_key": "wrong"}, {}, "401"), ({}, {"forbidden": True}, "403")])
def test_refused_credentials_are_a_readable_refusal(sandbox, http, control, secret, config, status):
    control.configure(**config)
    with pytest.raises(VendorRejected, match=status) as refused:
        opened(make_imports(sandbox, http, **secret))
    assert sandbox.account_secret()["api_key"] not in str(refused.value)


def test_a_secret_that_sends_the_key_another_way_is_refused_by_this_vendor(sandbox, http):
    with pytest.raises(VendorRejected, match="401"):
        opened(make_imports(sandbox, http, auth_scheme="Bearer"))


def test_a_5xx_on_a_batch_is_transient_and_the_batch_is_not_taken(imports, control):
    job = opened(imports)
    control.configure(http_5xx=1, fault_methods=["batch"])
    with pytest.raises(VendorTransientError) as refused:
        send(imports, job, [{"Email": "x@example.org"}])
    assert refused.value.vendor_answered
    send(imports, job, [{"Email": "x@example.org"}])
    (vendor_job,) = control.control("imports")["jobs"]
    assert vendor_job["contacts_received"] == 1


def test_a_failed_job_that_applied_nothing_reads_as_failed_with_its_status(imports, control):
    control.configure(fail_jobs="Failed: list locked")
    job = opened(imports)
    send(imports, job, [{"Email": "f@example.org"}])
    imports.execute(job)
    outcome = finished(imports, job)
    assert outcome.state is VendorState.FAILED and "list locked" in outcome.message
    assert "no contact inserted or updated" in outcome.message


# --- doc-consistent variants: the status rule, reconciliation, answers we cannot read -----------


def run_import(imports: Which50Imports, contacts: int, **params) -> tuple[Job, list[PollOutcome]]:
    """Open, stage `contacts` new contacts in one batch, run, and poll until finished: the job as
    Collect sees it (the final poll's counts and status word), and every poll's outcome."""
    job = opened(imports, **params)
    send(imports, job, [{"Email": f"v{n}-{job.job_id}@example.org"} for n in range(contacts)])
    imports.execute(job)
    polls = [imports.poll(job)]
    deadline = time.monotonic() + 10
    while polls[-1].state is VendorState.RUNNING:
        assert time.monotonic() < deadline, "the import never finished"
        time.sleep(0.05)
        polls.append(imports.poll(job))
    job = with_ref(job, polls[-1].vendor_ref, progress=polls[-1].progress, vendor_status=polls[-1].raw_status)
    return job, polls


def reconcile(imports: Which50Imports, job: Job, sent: int) -> Reconciliation:
    rec = Reconciler()
    imports.reconcile(job, ImportTotals(read=sent, refused=0, sent=sent, listed_failures=0, warnings=0), rec)
    return rec.result()


def test_percent_100_before_the_status_flips_waits_for_the_final_counts(imports, control):
    control.configure(percent_before_status_seconds=0.6)
    job, polls = run_import(imports, 10)

    lagging = [p for p in polls if p.raw_status == "Processing"]
    assert lagging, "the sandbox never showed 100 % while Processing"
    assert all(p.state is VendorState.RUNNING and p.progress.percent == 99 for p in lagging)
    assert {p.progress.counts["inserted"] for p in lagging} == {5}  # half, not final
    assert polls[-1].state is VendorState.DONE and polls[-1].raw_status == "Completed"
    assert job.progress.counts["inserted"] == 10 and job.progress.percent == 100
    assert reconcile(imports, job, 10).complete


def test_completed_with_errors_is_done_and_reconciled_as_partial(imports, control):
    control.configure(finish_with_errors=True)
    job, polls = run_import(imports, 8)

    assert polls[-1].state is VendorState.DONE and polls[-1].raw_status == "CompletedWithErrors"
    assert (job.progress.counts["inserted"], job.progress.counts["not_updated"]) == (6, 2)
    result = reconcile(imports, job, 8)
    assert not result.complete and result.shortfall == [
        "Which50 inserted or updated 6 of the 8 contacts sent: 2 did not make it",
        "Which50 counted 2 existing contacts not updated",
        "Which50 finished the import with errors (status 'CompletedWithErrors')",
    ]


def test_failed_after_inserting_most_is_done_not_failed(imports, control):
    control.configure(fail_after_inserting=True)
    job, polls = run_import(imports, 10)

    assert polls[-1].state is VendorState.DONE and polls[-1].raw_status == "Failed" and polls[-1].message is None
    assert job.progress.counts["inserted"] == 8
    result = reconcile(imports, job, 10)
    assert result.shortfall == [
        "Which50 inserted or updated 8 of the 10 contacts sent: 2 did not make it, 2 of them counted by no Which50 counter",
        "Which50 reports the import as failed (status 'Failed') after applying some contacts",
    ]


def test_camel_case_answers_and_other_status_words_are_read(imports, control):
    control.configure(camel_case=True, status_words={"Completed": "COMPLETED", "Running": "Importing", "Created": "New"})
    job, polls = run_import(imports, 3)

    ref = ImportJobRef.of(job)
    assert ref.identifier_fields == ["Email", "Mobile"] and ref.contact_list_name == "Newsletter"
    assert polls[-1].state is VendorState.DONE and polls[-1].raw_status == "COMPLETED"
    assert job.progress.counts["inserted"] == 3 and reconcile(imports, job, 3).complete
    (vendor_job,) = control.control("imports")["jobs"]
    assert vendor_job["run_calls"] == 1


def test_a_status_word_we_do_not_know_is_running_until_finish_date_with_an_excerpt(sandbox, imports, control):
    control.configure(status_words={"Running": "Reticulating", "Completed": "Reticulated"})
    job, polls = run_import(imports, 2)

    assert polls[-1].state is VendorState.DONE  # by its FinishDate
    assert all(p.unknown_status_answer and "Reticulat" in p.unknown_status_answer for p in polls)
    assert sandbox.account_secret()["api_key"] not in "".join(p.unknown_status_answer for p in polls)


@pytest.mark.parametrize("answer", ["no_id", "not_json"])
def test_a_create_answer_we_cannot_read_is_never_sent_again(sandbox, imports, control, answer):
    control.configure(create_answer=answer)
    with pytest.raises(VendorOutcomeUnknown, match="an import job may have been created on Which50 contact list 12") as unknown:
        opened(imports)

    assert unknown.value.code == "VENDOR_PROTOCOL" and "not sent again" in str(unknown.value)
    assert unknown.value.answer and sandbox.account_secret()["api_key"] not in unknown.value.answer
    assert [c["kind"] for c in control.control("calls")].count("create") == 1
    assert len(control.control("imports")["jobs"]) == 1  # it was created; it is never run


def test_a_create_without_an_answer_is_never_sent_again(sandbox, http, control):
    control.configure(timeouts=1, timeout_hang_seconds=1.0, fault_methods=["create"])
    with pytest.raises(VendorOutcomeUnknown, match="got no answer") as unknown:
        opened(make_imports(sandbox, http, read_timeout_seconds=0.3))
    assert unknown.value.answer is None
    time.sleep(1.0)  # the sandbox finishes its hang
    assert [c["kind"] for c in control.control("calls")].count("create") == 1


def test_a_create_answered_with_5xx_is_transient(imports, control):
    control.configure(http_5xx=1, fault_methods=["create"])
    with pytest.raises(VendorTransientError) as refused:
        opened(imports)
    assert refused.value.vendor_answered
    assert ImportJobRef.of(opened(imports)).import_job_id


def test_a_job_gone_at_the_vendor_is_a_readable_refusal(imports):
    job = opened(imports)
    job = with_ref(job, ImportJobRef.of(job).model_copy(update={"import_job_id": 9_999}))
    with pytest.raises(VendorRejected, match="no import job 9999 of contact list 12"):
        imports.poll(job)


def test_the_secret_must_be_https_unless_it_allows_http(sandbox):
    with pytest.raises(VendorRejected, match="base_url must be an https URL"):
        which50_imports({**sandbox.account_secret(), "allow_http": False})
    body = json.dumps(Which50Account.model_validate(sandbox.account_secret()).model_dump(mode="json"))
    assert sandbox.account_secret()["api_key"] not in body


def test_a_first_run_goes_out_whatever_word_the_job_shows_before_it(imports, control):
    control.configure(status_words={"Created": "Gestating"})  # a word we do not know
    job = opened(imports)
    send(imports, job, [{"Email": "first@example.org"}])

    imports.execute(job)  # nothing of ours sent it, so the engine does not ask first

    (vendor_job,) = control.control("imports")["jobs"]
    assert vendor_job["run_calls"] == 1


def test_a_run_that_may_have_landed_is_not_sent_again_when_the_status_cannot_tell(imports, control):
    control.configure(status_words={"Created": "Gestating"})
    job = opened(imports)
    send(imports, job, [{"Email": "again@example.org"}])

    with pytest.raises(VendorOutcomeUnknown, match="'Gestating' for import job .* is not one we know"):
        imports.run_started(job)

    (vendor_job,) = control.control("imports")["jobs"]
    assert vendor_job["run_calls"] == 0
