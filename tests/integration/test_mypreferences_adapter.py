"""The MyPreferences adapter against the MyPreferences sandbox over real sockets, with each of the
two auth schemes: a whole import from Initiate to its failed records and its reconciliation, each
doc-consistent variant the sandbox can take (smaller pages, no HasMore, NotHonored, camelCase, other
status words, CompletedWithErrors, an unusable Initiate answer), and each fault it can switch on, as
the step errors the state machine expects."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devstack.sandbox.mypreferences import MyPreferencesSandbox
from jobrelay.domain.bulk_import import ImportTotals
from jobrelay.domain.errors import VendorOutcomeUnknown, VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.domain.job import Job
from jobrelay.domain.reconciliation import Reconciler, Reconciliation
from jobrelay.domain.vendor_outcomes import PollOutcome, VendorState
from jobrelay.vendors.mypreferences.adapter import ImportRef, MyPreferencesAccount, MyPreferencesImports

SCHEMES = ["pnauthinfo3", "oauth"]
PROCESS_SECONDS = 0.3
PARAMS = {"source": "s3://imports/profiles.jsonl", "format": "jsonl", "name": "sandbox import",
          "match_criteria": "AlternateIdType", "match_value": "CRM_ID"}  # fmt: skip
EXCEPTION = "ProcessingException: The profile could not be imported"


@pytest.fixture
def sandbox() -> Iterator[MyPreferencesSandbox]:
    with MyPreferencesSandbox(process_seconds=PROCESS_SECONDS) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as client:
        yield client


@pytest.fixture(params=SCHEMES)
def scheme(request) -> str:
    return request.param


def make_imports(sandbox: MyPreferencesSandbox, http: httpx.Client, scheme: str, **secret) -> MyPreferencesImports:
    account = MyPreferencesAccount.model_validate({**sandbox.account_secret(scheme), **secret})
    return MyPreferencesImports(account, http=http, exceptions_page_size=2)


@pytest.fixture
def imports(sandbox, http, scheme) -> MyPreferencesImports:
    return make_imports(sandbox, http, scheme)


def new_job(**params) -> Job:
    return Job(
        job_id=f"job-{time.monotonic_ns()}",
        operation="mypreferences.bulk_import",
        vendor="mypreferences",
        deadline_at=datetime.now(UTC) + timedelta(hours=1),
        params={**PARAMS, **params},
    )


def with_ref(job: Job, ref: ImportRef, **changes) -> Job:
    """`job` carrying `ref` as the job store keeps it: its shown fields, and its secrets apart."""
    return job.model_copy(update={"vendor_ref": ref.shown(), "vendor_secrets": ref.secrets(), **changes})


def opened(imports: MyPreferencesImports, job: Job) -> Job:
    return with_ref(job, imports.open(job))


def profile(n: int, domain: str = "example.org", id_type: str = "CRM_ID") -> dict:
    return {
        "CustomerName": {"FirstName": "Ada", "LastName": f"Number {n}"},
        "AlternateIds": [{"AlternateIdType": id_type, "AlternateId": f"C-{n}"}],
        "Emails": [{"EmailAddressType": "Personal", "EmailAddress": f"person{n}@{domain}", "IsDefault": True}],
    }


def stage(imports: MyPreferencesImports, job: Job, raw_records: list[dict]):
    records = [imports.validate(job, record) for record in raw_records]
    return imports.stage(job, imports.batch_format(job).encode(records), len(records))


def poll_until_ended(imports: MyPreferencesImports, job: Job, timeout: float = 5.0) -> tuple[PollOutcome, list[str]]:
    deadline, seen = time.monotonic() + timeout, []
    while (outcome := imports.poll(job)).state is VendorState.RUNNING:
        seen.append(outcome.raw_status)
        assert time.monotonic() < deadline, f"still running: {outcome}"
        time.sleep(0.03)
    return outcome, seen


def calls(sandbox: MyPreferencesSandbox, kind: str) -> list[dict]:
    return [call for call in sandbox.calls() if call.get("kind") == kind]


def imported_all(sandbox: MyPreferencesSandbox, http: httpx.Client) -> list[dict]:
    return http.get(f"{sandbox.base_url}/_sandbox/imports").json()


def imported(sandbox: MyPreferencesSandbox, http: httpx.Client) -> dict:
    (only,) = imported_all(sandbox, http)
    return only


def run_import(imports: MyPreferencesImports, records: list[dict]) -> tuple[Job, PollOutcome, list[tuple]]:
    """One import from Initiate to its listed failures; the job as Collect sees it."""
    job = opened(imports, new_job())
    stage(imports, job, records)
    imports.execute(job)
    outcome, _ = poll_until_ended(imports, job)
    job = with_ref(job, outcome.vendor_ref, progress=outcome.progress, vendor_status=outcome.raw_status)
    return job, outcome, list(imports.failures(job))


def reconciliation(imports: MyPreferencesImports, job: Job, listed: int, sent: int) -> Reconciliation:
    rec = Reconciler(vendor=job.progress.counts)
    imports.reconcile(job, ImportTotals(read=sent, refused=0, sent=sent, listed_failures=listed, warnings=0), rec)
    return rec.result()


# --- a whole import --------------------------------------------------------------------------------


def test_an_import_runs_from_initiate_to_its_failed_records(imports, sandbox, http, scheme):
    sandbox.configure({"exception_every": 4})
    job = opened(imports, new_job())
    ref = ImportRef.of(job)
    assert ref.status == "Initiated" and isinstance(ref.access_token.get_secret_value(), int)
    # The token is the import's only key: kept in the job's secrets, never in the reference shown.
    assert "access_token" not in job.vendor_ref and job.vendor_secrets == {"access_token": ref.access_token.get_secret_value()}

    first = stage(imports, job, [profile(n) for n in (1, 2, 3, 4)])
    second = stage(imports, job, [profile(5), profile(6, domain="exception.test"), profile(7), profile(8)])
    # Records our checks pass but MyPreferences refuses at staging: AlternateIdType not in the account.
    third = stage(imports, job, [profile(9, id_type="NOPE"), profile(10), profile(11, id_type="NOPE")])
    assert first.counts["received"] == 4 and second.counts["validation_failed"] == 0
    assert third.counts == {"received": 11, "validation_ok": 9, "validation_failed": 2, "processed": 0,
                            "pending": 9, "exceptions": 0, "not_honored": 0}  # fmt: skip

    imports.execute(job)
    outcome, seen = poll_until_ended(imports, job)
    assert outcome.state is VendorState.DONE and outcome.raw_status == "Completed"
    assert set(seen) <= {"Queued", "Processing"} and "Queued" in seen
    assert outcome.progress.percent == 100 and outcome.vendor_ref == ref.model_copy(update={"status": "Completed"})
    assert outcome.progress.counts == {"received": 11, "validation_ok": 9, "validation_failed": 2, "processed": 6,
                                       "pending": 0, "exceptions": 3, "not_honored": 0}  # fmt: skip

    failures = list(imports.failures(job))
    assert [(number, key) for number, _, key in failures] == [(4, "C-4"), (6, "C-6"), (8, "C-8"), (9, "C-9"),
                                                               (11, "C-11")]  # fmt: skip
    assert all(reasons[0].startswith(EXCEPTION) for _, reasons, _ in failures[:3])
    assert failures[3][1] == ["InvalidAlternateIdType: AlternateIdType 'NOPE' is not configured"]
    assert [call["http_status"] for call in calls(sandbox, "exceptions")] == [200, 200, 200]  # pages of 2

    assert imported(sandbox, http)["staged_records"] == 11  # nothing was staged twice
    assert [call["records"] for call in calls(sandbox, "stage")] == [4, 4, 3]
    assert len(calls(sandbox, "token")) == (1 if scheme == "oauth" else 0)  # one OAuth token for the import


def test_progress_shows_while_the_import_processes(imports, sandbox):
    sandbox.configure({"process_seconds": 1.5})
    job = opened(imports, new_job())
    stage(imports, job, [profile(n) for n in range(1, 21)])
    imports.execute(job)
    time.sleep(1.0)  # Processing starts at a third of process_seconds
    outcome = imports.poll(job)
    assert outcome.raw_status == "Processing" and 0 < outcome.progress.percent < 100
    assert outcome.progress.counts["processed"] + outcome.progress.counts["pending"] == 20


def test_a_retried_execute_is_not_sent_twice(imports, sandbox):
    job = opened(imports, new_job())
    stage(imports, job, [profile(1)])
    assert imports.run_started(job) is False
    imports.execute(job)
    assert imports.run_started(job) is True  # a retried step asks first: the first Execute got through
    assert len(calls(sandbox, "execute")) == 1


def test_the_access_token_is_planned_for_six_hours_when_the_vendor_says_twelve(sandbox, http, scheme):
    sandbox.configure({"token_seconds": 12 * 3600})
    before = datetime.now(UTC)
    imports = make_imports(sandbox, http, scheme)
    job = opened(imports, new_job())
    expires_at = imports.usable_until(job)
    assert expires_at == ImportRef.of(job).expires_at
    assert before + timedelta(hours=6) - timedelta(seconds=1) <= expires_at <= datetime.now(UTC) + timedelta(hours=6)


# --- the access token's end --------------------------------------------------------------------------


def test_an_expired_access_token_is_rejected_naming_the_expiry_without_calling(imports, sandbox):
    sandbox.configure({"token_seconds": 0.3})
    job = opened(imports, new_job())
    expires_at = ImportRef.of(job).expires_at
    assert expires_at < datetime.now(UTC) + timedelta(seconds=1)
    time.sleep(0.35)
    count = len(sandbox.calls())
    with pytest.raises(VendorRejected, match=f"access token expired at {expires_at.isoformat()[:19]}"):
        imports.poll(job)
    assert len(sandbox.calls()) == count


def test_a_token_refused_before_its_stated_expiry_is_reported_as_refused(imports, sandbox):
    sandbox.configure({"token_seconds": 0.3, "reported_expires_seconds": 12 * 3600})  # the vendor's Expires lies
    job = opened(imports, new_job())
    time.sleep(0.35)
    with pytest.raises(VendorRejected, match="refused the import's access token on Retrieve status .*expired or is"):
        imports.poll(job)


def test_a_revoked_oauth_token_is_renewed_once(sandbox, http):
    imports = make_imports(sandbox, http, "oauth")
    job = opened(imports, new_job())
    http.post(f"{sandbox.base_url}/_sandbox/revoke_tokens")
    assert imports.poll(job).raw_status == "Initiated"
    assert len(calls(sandbox, "token")) == 2
    assert [call["http_status"] for call in calls(sandbox, "status")] == [401, 200]


# --- vendor outcomes and faults ------------------------------------------------------------------------


def test_a_failed_import_is_reported_failed_with_the_vendor_s_reason(imports, sandbox):
    sandbox.configure({"fail_imports": "The import could not be executed: database unavailable"})
    job = opened(imports, new_job())
    stage(imports, job, [profile(1), profile(2)])
    imports.execute(job)
    outcome, _ = poll_until_ended(imports, job)
    assert outcome.state is VendorState.FAILED and outcome.raw_status == "Failed"
    assert outcome.message == "The import could not be executed: database unavailable"
    assert outcome.progress.counts["processed"] == 0


def test_503_on_stage_is_transient_and_the_retry_stages_once(imports, sandbox, http):
    job = opened(imports, new_job())
    sandbox.configure({"http_5xx": 1, "fault_methods": ["stage"]})
    with pytest.raises(VendorTransientError, match="Stage answered HTTP 503"):
        stage(imports, job, [profile(1), profile(2)])
    assert stage(imports, job, [profile(1), profile(2)]).counts["received"] == 2
    assert imported(sandbox, http)["staged_records"] == 2


def test_a_hanging_call_times_out_as_transient(sandbox, http, scheme):
    imports = make_imports(sandbox, http, scheme, read_timeout_seconds=0.2, connect_timeout_seconds=0.2)
    job = opened(imports, new_job())
    sandbox.configure({"timeouts": 1, "timeout_hang_seconds": 3, "fault_methods": ["status"]})
    started = time.monotonic()
    with pytest.raises(VendorTransientError, match="Retrieve status timed out"):
        imports.poll(job)
    assert time.monotonic() - started < 1.5


def test_an_initiate_that_hangs_is_an_unknown_outcome_never_sent_again(sandbox, http, scheme):
    imports = make_imports(sandbox, http, scheme, read_timeout_seconds=0.2, connect_timeout_seconds=0.2)
    sandbox.configure({"timeouts": 1, "timeout_hang_seconds": 0.5, "fault_methods": ["initiate"]})
    with pytest.raises(VendorOutcomeUnknown, match="Initiate got no answer \\(ReadTimeout\\): an import may have been opened"):
        imports.open(new_job())
    time.sleep(0.6)  # the sandbox carries on after the hang: the import was opened all the same
    assert len(calls(sandbox, "initiate")) == 1 and len(imported_all(sandbox, http)) == 1


def test_an_initiate_whose_answer_was_lost_is_an_unknown_outcome(imports, sandbox, http):
    sandbox.configure({"lost_answers": 1, "fault_methods": ["initiate"]})
    with pytest.raises(VendorOutcomeUnknown, match="Initiate got no answer"):
        imports.open(new_job())
    assert len(imported_all(sandbox, http)) == 1


@pytest.mark.parametrize(
    ("variant", "said"), [("no_token", "without an AccessToken"), ("not_json", "with a body that is not JSON")]
)
def test_an_unusable_initiate_answer_is_an_unknown_outcome_without_the_token(imports, sandbox, http, variant, said):
    sandbox.configure({"initiate_answer": variant})
    with pytest.raises(VendorOutcomeUnknown, match=f"Initiate answered {said}: .*daily import quota") as raised:
        imports.open(new_job())
    (opened_import,) = imported_all(sandbox, http)
    token = str(opened_import["AccessToken"])
    assert raised.value.answer and token not in raised.value.answer and token not in str(raised.value)
    assert len(calls(sandbox, "initiate")) == 1


def test_a_stage_request_over_the_vendor_s_size_limit_is_rejected(imports, sandbox):
    sandbox.configure({"max_request_bytes": 300})
    job = opened(imports, new_job())
    with pytest.raises(VendorRejected, match="stage request too large .*HTTP 413"):
        stage(imports, job, [profile(n) for n in range(1, 6)])


def test_a_malformed_answer_is_a_protocol_error(imports, sandbox):
    job = opened(imports, new_job())
    sandbox.configure({"malformed": 1})
    with pytest.raises(VendorProtocolError, match="not JSON"):
        imports.poll(job)


@pytest.mark.parametrize(
    ("scheme", "auth", "match"),
    [
        ("pnauthinfo3", {"scheme": "pnauthinfo3", "secret": "not-the-secret"},
         "rejected the account's credentials on Initiate \\(HTTP 401"),
        ("oauth", {"oauth_client_secret": "not-the-secret"}, "token endpoint refused the account's client credentials"),
    ],
)  # fmt: skip
def test_bad_credentials_are_rejected(sandbox, http, scheme, auth, match):
    secret = sandbox.account_secret(scheme)
    imports = make_imports(sandbox, http, scheme, auth={**secret["auth"], **auth})
    with pytest.raises(VendorRejected, match=match) as raised:
        imports.open(new_job())
    assert "not-the-secret" not in str(raised.value)


def test_credentials_that_expired_are_rejected(imports, sandbox):
    sandbox.configure({"expired_auth": True})
    with pytest.raises(VendorRejected, match="credentials"):
        imports.open(new_job())


@pytest.mark.parametrize(
    ("scheme", "match"),
    [("pnauthinfo3", "Initiate answered HTTP 404: Client 'OTHER_CO' was not found; check the clientId 'OTHER_CO'"),
     ("oauth", "token endpoint refused .*HTTP 400: .*the scope 'OTHER_CO/sandbox.user'")],  # it names the clientId
)  # fmt: skip
def test_a_wrong_client_id_is_rejected(sandbox, http, scheme, match):
    with pytest.raises(VendorRejected, match=match):
        make_imports(sandbox, http, scheme, client_id="OTHER_CO").open(new_job())


# --- doc-consistent variants, reconciled -----------------------------------------------------------------


def test_a_clean_import_reconciles_complete(imports):
    job, outcome, failures = run_import(imports, [profile(n) for n in range(1, 6)])
    result = reconciliation(imports, job, len(failures), 5)
    assert outcome.state is VendorState.DONE and result.complete and result.reconciled is True


@pytest.mark.parametrize("has_more_missing", [False, True], ids=["has-more", "has-more-missing"])
def test_exceptions_paged_smaller_than_asked_are_all_listed_and_reconcile(sandbox, http, has_more_missing):
    sandbox.configure({"exceptions_page_cap": 2, "has_more_missing": has_more_missing, "exception_every": 2})
    imports = MyPreferencesImports(
        MyPreferencesAccount.model_validate(sandbox.account_secret()), http=http, exceptions_page_size=5
    )
    job, _, failures = run_import(imports, [profile(n) for n in range(1, 12)] + [profile(12, id_type="NOPE")])
    assert [number for number, _, _ in failures] == [2, 4, 6, 8, 10, 12]
    offsets = [call for call in sandbox.calls() if call.get("kind") == "exceptions"]
    assert len(offsets) == (4 if has_more_missing else 3)  # pages of 2 (and an empty one to end without HasMore)
    result = reconciliation(imports, job, len(failures), 12)
    assert result.reconciled is True and not result.complete
    assert result.shortfall == [
        "1 records failed MyPreferences' validation at staging and were not imported (see failed_records.jsonl)",
        "5 records became exceptions while MyPreferences imported them (see failed_records.jsonl)",
    ]


@pytest.mark.parametrize(
    ("config", "listed"),
    [({}, 2), ({"not_honored_in_processed": True}, 2), ({"not_honored_listed": False}, 0)],
    ids=["listed-apart", "listed-among-processed", "unlisted"],
)
def test_not_honoured_records_make_the_import_partial_under_any_reading(sandbox, imports, config, listed):
    sandbox.configure({"not_honored": 2, **config})
    job, outcome, failures = run_import(imports, [profile(n) for n in range(1, 6)])
    assert outcome.state is VendorState.DONE and outcome.progress.counts["not_honored"] == 2
    assert len(failures) == listed
    assert all(reasons == ["NotHonored: The profile was not honored (simulated)"] for _, reasons, _ in failures)
    result = reconciliation(imports, job, len(failures), 5)
    assert result.reconciled is True and not result.complete
    assert any(line.startswith("2 records were not honoured by MyPreferences") for line in result.shortfall)


def test_camel_case_answers_and_other_status_words_are_read(sandbox, imports):
    sandbox.configure({"camel_case": True, "status_words": {"Completed": "COMPLETED", "Processing": "In Progress"}})
    job, outcome, failures = run_import(imports, [profile(n) for n in range(1, 4)] + [profile(4, domain="exception.test")])
    assert outcome.state is VendorState.DONE and outcome.raw_status == "COMPLETED"
    assert outcome.progress.counts == {"received": 4, "validation_ok": 4, "validation_failed": 0, "processed": 3,
                                       "pending": 0, "exceptions": 1, "not_honored": 0}  # fmt: skip
    assert [(number, key) for number, _, key in failures] == [(4, "C-4")]
    assert reconciliation(imports, job, len(failures), 4).reconciled is True


def test_completed_with_errors_is_done_and_partial(sandbox, imports):
    sandbox.configure({"completed_with_errors": True, "exception_every": 3})
    job, outcome, failures = run_import(imports, [profile(n) for n in range(1, 4)])
    assert outcome.state is VendorState.DONE and outcome.raw_status == "CompletedWithErrors"
    result = reconciliation(imports, job, len(failures), 3)
    assert result.reconciled is True
    assert "MyPreferences ended the import as 'CompletedWithErrors', not plainly completed" in result.shortfall


def test_an_unknown_status_word_is_running_with_an_excerpt_that_hides_the_token(sandbox, imports):
    job = opened(imports, new_job())
    sandbox.configure({"status_words": {"Initiated": "Provisioning"}})
    outcome = imports.poll(job)
    assert outcome.state is VendorState.RUNNING and '"Status": "Provisioning"' in outcome.unknown_status_answer
    assert str(ImportRef.of(job).access_token.get_secret_value()) not in outcome.unknown_status_answer


def test_a_first_execute_goes_out_whatever_word_the_import_shows_before_it(imports, sandbox):
    sandbox.configure({"status_words": {"Initiated": "Prepared", "Staging": "Loading"}})  # words we do not know
    job = opened(imports, new_job())
    stage(imports, job, [profile(1)])

    imports.execute(job)  # nothing of ours sent it, so the engine does not ask first

    assert len(calls(sandbox, "execute")) == 1


def test_an_execute_that_may_have_landed_is_not_sent_again_when_the_status_cannot_tell(imports, sandbox):
    sandbox.configure({"status_words": {"Initiated": "Prepared", "Staging": "Loading"}})
    job = opened(imports, new_job())
    stage(imports, job, [profile(1)])

    with pytest.raises(VendorOutcomeUnknown, match="'Loading' is not one we know") as unknown:
        imports.run_started(job)

    assert calls(sandbox, "execute") == [] and "Loading" in unknown.value.answer
