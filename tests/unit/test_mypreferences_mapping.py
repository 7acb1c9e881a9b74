"""MyPreferences' mapping rules, without sockets: params, record checks, the status table (casings,
synonyms, qualified completions), the stage body, the access token's expiry, both auth schemes,
answers read in any casing and shape, exception paging, Initiate's unknown outcomes, error answers,
and the reconciliation arithmetic under every reading of NotHonored. The auth flows, client and
adapter are driven through httpx.MockTransport with answers the sandbox cannot produce (or only
slowly, such as an OAuth token's renewal)."""

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import Secret, SecretStr, ValidationError

from jobrelay.domain.bulk_import import ImportTotals
from jobrelay.domain.errors import VendorOutcomeUnknown, VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.domain.job import Job, Progress
from jobrelay.domain.operation import validation_details
from jobrelay.domain.reconciliation import Reconciler
from jobrelay.domain.vendor_outcomes import VendorState
from jobrelay.vendors.mypreferences.adapter import ImportRef, MyPreferencesImports, mypreferences_imports
from jobrelay.vendors.mypreferences.api import (
    BulkImportStatus,
    ExceptionRecord,
    ExceptionsPage,
    UserProfilePreference,
    access_token_expiry,
    read_status,
    vendor_message,
    vendor_state,
)
from jobrelay.vendors.mypreferences.auth import (
    MyPreferencesAccount,
    OAuthClientCredentials,
    PnAuthInfo3,
    pnauthinfo3_header,
    pnauthinfo3_signature,
    pnauthinfo3_timestamp,
)
from jobrelay.vendors.mypreferences.client import MyPreferencesClient
from jobrelay.vendors.mypreferences.limits import MB
from jobrelay.vendors.mypreferences.params import BulkImportParams

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BASE = "https://pmstg.mypreferences.com"
SOURCE = {"source": "s3://imports-bucket/2026/profiles.jsonl", "format": "jsonl", "name": "nightly"}
HMAC_SECRET = "pn-secret-0123456789"
OAUTH_SECRET = "oauth-client-secret-9f8e7d"


def problems(exc: ValidationError) -> list[str]:
    return [f"{d['field']}: {d['message']}" for d in validation_details(exc)]


# --- params (docs/VENDORS.md 2.3.1) -----------------------------------------------------------------------


def test_params_defaults_follow_the_vendor():
    params = BulkImportParams.model_validate(SOURCE)
    assert (params.import_action, params.data_stage_duration, params.batch_bytes) == ("Add", 3, 25 * MB)
    assert (params.match_criteria, params.match_value) == (None, None)
    assert not any([params.refresh_contacts, params.refresh_tags, params.allow_prior_consents])


def test_params_accept_every_option():
    params = BulkImportParams.model_validate(
        {**SOURCE, "format": "csv", "import_action": "Delete", "match_criteria": "AlternateIdType",
         "match_value": "CRM_ID", "refresh_alternate_ids": True, "refresh_contacts": True,
         "refresh_custom_fields": True, "refresh_groups": True, "refresh_tags": True, "allow_prior_consents": True,
         "data_stage_duration": 10, "batch_bytes": 28 * MB}
    )  # fmt: skip
    assert params.match_value == "CRM_ID" and params.batch_bytes == 28_000_000


@pytest.mark.parametrize(
    "given", [{"match_criteria": "AlternateIdType"}, {"match_value": "CRM_ID"}], ids=["criteria-alone", "value-alone"]
)
def test_match_criteria_and_match_value_go_together(given):
    with pytest.raises(ValidationError) as raised:
        BulkImportParams.model_validate({**SOURCE, **given})
    expected = "body: Value error, match_criteria and match_value go together: give both or neither"
    assert problems(raised.value) == [expected]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"match_criteria": "ProfileId", "match_value": "x"}, "match_criteria"),
        ({"source": "https://bucket.s3.amazonaws.com/key"}, "source"),
        ({"source": "s3://bucket-only"}, "source"),
        ({"source": "s3://Upper_Case/key"}, "source"),
        ({"format": "xlsx"}, "format"),
        ({"name": ""}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"import_action": "Update"}, "import_action"),
        ({"data_stage_duration": 11}, "data_stage_duration"),
        ({"data_stage_duration": -1}, "data_stage_duration"),
        ({"batch_bytes": 28 * MB + 1}, "batch_bytes"),
        ({"batch_bytes": MB - 1}, "batch_bytes"),
        ({"RefreshContacts": True}, "RefreshContacts"),
    ],
)
def test_params_are_refused_naming_the_field(change, field):
    with pytest.raises(ValidationError) as raised:
        BulkImportParams.model_validate({**SOURCE, **change})
    assert [d["field"] for d in validation_details(raised.value)] == [field]


# --- records (CreateBulkUserProfilePreference, docs/VENDORS.md 2.3.2) ------------------------------------

DOCS_RECORD = {
    "CustomerType": "Customer",
    "DefaultLocale": "en-us",
    "CustomerName": {"FirstName": "Ada", "LastName": "Lovelace"},
    "AlternateIds": [{"AlternateIdType": "CRM_ID", "AlternateId": "C-1001"}],
    "Emails": [{"EmailAddressType": "Personal", "EmailAddress": "ada@example.org", "IsDefault": True}],
}


@pytest.mark.parametrize(
    "record",
    [
        DOCS_RECORD,
        {"ProfileId": 42},
        {"ProfileId": "42", "IsActive": "true"},  # CSV cells are text
        {"AlternateIds": [{"AlternateIdType": "CRM_ID", "AlternateId": 1001}]},
        {"Emails": [{"EmailAddress": "o'brien+news@mail.example.co.uk"}], "Consents": [{"Anything": 1}]},
        {"ProfileId": 1, "CustomerName": {"FirstName": "Ada", "Title": "Countess"}},  # assumed names: extras pass
    ],
)
def test_records_the_vendor_documents_are_accepted(record):
    UserProfilePreference.model_validate(record)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"CustomerType": "Customer"},
            "body: Value error, the record does not identify a profile: give a ProfileId, AlternateIds or Emails",
        ),
        ({"ProfileId": 1, "Nickname": "x"}, "Nickname: Extra inputs are not permitted"),
        (
            {"Emails": [{"EmailAddress": "bad@"}]},
            "Emails.0.EmailAddress: Value error, is not a plausible email address (name@domain.tld)",
        ),
        ({"Emails": [{"EmailAddress": "a b@example.org"}]}, "Emails.0.EmailAddress: Value error, is not a plausible"),
        ({"Emails": [{"EmailAddress": "ada@localhost"}]}, "Emails.0.EmailAddress: Value error, is not a plausible"),
        ({"Emails": [{"EmailAddress": "a" * 250 + "@ex.org"}]}, "Emails.0.EmailAddress: String should have at most"),
        ({"Emails": [{}]}, "Emails.0.EmailAddress: Field required"),
        ({"ProfileId": 1, "Emails": [{"EmailAddress": "a@b.co", "Primary": True}]}, "Emails.0.Primary: Extra inputs"),
        ({"ProfileId": 1, "DefaultLocale": "x" * 16}, "DefaultLocale: String should have at most 15 characters"),
        ({"ProfileId": 1, "CustomerType": "x" * 101}, "CustomerType: String should have at most 100 characters"),
        ({"ProfileId": True}, "ProfileId: Value error, must be a number, not true/false"),
        ({"ProfileId": "abc"}, "ProfileId: Input should be a valid integer"),
        ({"AlternateIds": [{"AlternateId": "C-1"}]}, "AlternateIds.0.AlternateIdType: Field required"),
    ],
)
def test_bad_records_are_refused_with_a_readable_reason(record, expected):
    with pytest.raises(ValidationError) as raised:
        UserProfilePreference.model_validate(record)
    assert any(problem.startswith(expected) for problem in problems(raised.value)), problems(raised.value)


@pytest.mark.parametrize(
    ("record", "key"),
    [
        (DOCS_RECORD, "C-1001"),
        ({"ProfileId": 7, "Emails": [{"EmailAddress": "ada@example.org"}, {"EmailAddress": "b@example.org"}]},
         "ada@example.org"),
        ({"ProfileId": 7}, "7"),
    ],
)  # fmt: skip
def test_a_record_s_key_is_its_alternate_id_else_its_email_else_its_profile_id(record, key):
    imports = mypreferences_imports(account_secret())
    assert imports.record_key(UserProfilePreference.model_validate(record)) == key


def test_a_stage_body_is_the_exact_wrapped_compact_body_without_unset_or_null_fields():
    imports = mypreferences_imports(account_secret())
    records = [
        imports.validate(job(), {"ProfileId": "12", "CustomerType": None, "IsActive": False}),
        imports.validate(job(), {**DOCS_RECORD, "Emails": [{"EmailAddress": " ada@example.org ", "IsDefault": None}]}),
    ]
    assert imports.batch_format(job()).encode(records) == (
        b'{"UserProfilePreferences":[{"ProfileId":12,"IsActive":false},'
        b'{"DefaultLocale":"en-us","CustomerType":"Customer","CustomerName":{"FirstName":"Ada","LastName":"Lovelace"},'
        b'"AlternateIds":[{"AlternateIdType":"CRM_ID","AlternateId":"C-1001"}],'
        b'"Emails":[{"EmailAddress":"ada@example.org"}]}]}'
    )


UNUSUAL_RECORDS = [
    {"ProfileId": "12", "CustomerType": None, "IsActive": False},
    {**DOCS_RECORD, "CustomerName": {"FirstName": "Zoë", "LastName": "Łukasiewicz 李"}},  # escaped as json.dumps does
    {"Emails": [{"EmailAddress": "a@example.org"}], "CustomFields": [{"Score": 1e-07, "Big": 1e16, "Half": 0.5, "None": None}]},
    {"ProfileId": 3, "Consents": [{"Text": 'tab\there, "quoted", \u0001 and \u2028'}], "Groups": []},
]


def test_a_stage_body_joined_from_records_encoded_alone_is_what_json_dumps_gives_for_the_whole():
    """The batch cutter builds a body by joining records encoded alone inside the format's framing:
    that must be, byte for byte, what json.dumps gave for the records together."""
    imports = mypreferences_imports(account_secret())
    records = [imports.validate(job(), record) for record in UNUSUAL_RECORDS]
    stage_format = imports.batch_format(job())

    body = stage_format.encode(records)

    assert (
        body
        == json.dumps(
            {"UserProfilePreferences": [r.model_dump(mode="json", exclude_unset=True, exclude_none=True) for r in records]},
            separators=(",", ":"),
        ).encode()
    )
    assert body.isascii()
    assert (stage_format.prefix, stage_format.separator, stage_format.suffix) == (b'{"UserProfilePreferences":[', b",", b"]}")
    assert stage_format.encode([]) == json.dumps({"UserProfilePreferences": []}, separators=(",", ":")).encode()


def test_the_batch_cutter_joins_mypreferences_bodies():
    from jobrelay.bulk_import.batches import cut_batches
    from jobrelay.bulk_import.records import SourceRecord
    from jobrelay.domain.bulk_import import Batch, BatchLimits

    imports = mypreferences_imports(account_secret())
    records = [imports.validate(job(), UNUSUAL_RECORDS[n % 4] | {"ProfileId": n}) for n in range(1, 41)]
    stage_format = imports.batch_format(job())

    cut_up = cut_batches(
        ((SourceRecord(n, n * 10, n + 1), record) for n, record in enumerate(records, start=1)),
        BatchLimits(max_bytes=2_000),
        stage_format,
    )
    staged = [item for item in cut_up if isinstance(item, Batch)]

    assert len(staged) > 2 and sum(batch.count for batch in staged) == 40
    assert all(len(batch.body) <= 2_000 for batch in staged)
    assert all(batch.body == stage_format.encode(records[batch.first_line - 1 :][: batch.count]) for batch in staged)


# --- the status table (docs/VENDORS.md 2.3.4) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("Initiated", VendorState.RUNNING),
        ("Staging", VendorState.RUNNING),
        ("Queued", VendorState.RUNNING),
        ("processing", VendorState.RUNNING),
        ("Completed", VendorState.DONE),
        ("Complete", VendorState.DONE),
        ("COMPLETED", VendorState.DONE),
        ("completed", VendorState.DONE),
        ("Done", VendorState.DONE),
        ("Success", VendorState.DONE),
        ("Succeeded", VendorState.DONE),
        ("In Progress", VendorState.RUNNING),
        ("in_progress", VendorState.RUNNING),
        ("QUEUED", VendorState.RUNNING),
        ("Failed", VendorState.FAILED),
        (" failed ", VendorState.FAILED),
        ("FAILURE", VendorState.FAILED),
    ],
)
def test_status_words(word, state, caplog):
    with caplog.at_level(logging.WARNING):
        assert vendor_state(word) is state
        assert not read_status(word).qualified
    assert not caplog.records


@pytest.mark.parametrize(
    "word", ["CompletedWithErrors", "Completed With Exceptions", "COMPLETED_WITH_WARNINGS", "CompleteWithErrors"]
)
def test_completed_with_errors_is_done_but_qualified(word):
    assert read_status(word) == read_status(word, processed=5)
    assert read_status(word).state is VendorState.DONE and read_status(word).qualified


def test_failed_with_records_processed_is_done_so_nobody_imports_them_twice():
    assert read_status("Failed", processed=0).state is VendorState.FAILED
    reading = read_status("Failed", processed=3)
    assert reading.state is VendorState.DONE and reading.qualified
    status = BulkImportStatus.model_validate({"Status": "Failed", "Processed": 3, "ValidationSuccessful": 10})
    assert status.state is VendorState.DONE and status.percent_done() == 100


@pytest.mark.parametrize("word", [None, "", "Archived", "Incomplete"])
def test_unknown_status_words_count_as_running_and_are_logged_raw(word, caplog):
    with caplog.at_level(logging.WARNING):
        assert vendor_state(word) is VendorState.RUNNING
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert repr(word) in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("answer", "percent"),
    [
        ({"Status": "Staging", "ValidationSuccessful": 0}, None),
        ({"Status": "Processing", "ValidationSuccessful": 8, "Processed": 2}, 25),
        ({"Status": "Processing", "ValidationSuccessful": 3, "Processed": 9}, 100),
        ({"Status": "Completed", "ValidationSuccessful": 0}, 100),
    ],
)
def test_progress_is_processed_over_validation_successful(answer, percent):
    assert BulkImportStatus.model_validate(answer).percent_done() == percent


def test_a_status_answer_tolerates_null_and_missing_counters():
    status = BulkImportStatus.model_validate({"AccessToken": 5, "Status": "Queued", "Exceptions": None})
    assert status.counts() == dict.fromkeys(
        ("received", "validation_ok", "validation_failed", "processed", "pending", "exceptions", "not_honored"), 0
    )


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"Message": "Database unavailable"}, "Database unavailable"),
        ({"ErrorMessage": " Quota "}, "Quota"),
        ({}, "MyPreferences reports the import as 'Failed': none of the staged records were added"),
    ],
)
def test_a_failed_import_s_reason(extra, reason):
    assert BulkImportStatus.model_validate({"Status": "Failed", **extra}).failure_reason() == reason


# --- the access token's expiry (docs/VENDORS.md 2.3.1, Unknown 11) -------------------------------------------


@pytest.mark.parametrize(
    ("expires", "expected"),
    [
        ("2026-03-02T21:00:00", T0 + timedelta(hours=6)),  # the documented 12 h: we plan for 6
        ("2026-03-02T15:00:00", T0 + timedelta(hours=6)),  # exactly 6 h
        ("2026-03-02T11:30:00", T0 + timedelta(hours=2, minutes=30)),  # the vendor says less: honoured
        ("2026-03-02T11:30:00.250Z", T0 + timedelta(hours=2, minutes=30, milliseconds=250)),
        ("2026-03-02T13:30:00+02:00", T0 + timedelta(hours=2, minutes=30)),  # an offset is honoured
        ("2026-03-02T08:00:00", T0 + timedelta(hours=6)),  # before the Initiate: a misread zone, ignored
        ("next Tuesday", T0 + timedelta(hours=6)),
        (None, T0 + timedelta(hours=6)),
    ],
)
def test_the_access_token_dies_at_the_earlier_of_expires_and_six_hours(expires, expected):
    assert access_token_expiry(expires, T0) == expected


def test_calls_after_the_expiry_are_refused_before_anything_is_sent():
    clock = {"now": T0}
    transport = Recorder(lambda request: httpx.Response(200, json={"Status": "Processing"}))
    imports = adapter(transport, now=lambda: clock["now"])
    expiring = job(ref=ImportRef(access_token=Secret(7), expires_at=T0 + timedelta(hours=6)))
    assert imports.usable_until(expiring) == T0 + timedelta(hours=6)
    assert imports.poll(expiring).state is VendorState.RUNNING
    clock["now"] = T0 + timedelta(hours=6)
    for call in (imports.poll, imports.execute, imports.failures, lambda j: imports.stage(j, b"{}", 1)):
        with pytest.raises(VendorRejected, match=r"access token expired at 2026-03-02T15:00:00\+00:00"):
            call(expiring)
    assert len(transport.requests) == 1


# --- PNAUTHINFO3 (docs/VENDORS.md 2.2 B) -------------------------------------------------------------------


def test_pnauthinfo3_signature_known_answer():
    # printf '%s' 'ACME_CORP:John.Doe:2020-10-06T18:09:12.667Z' | openssl dgst -sha256 -hmac '<secret>' -binary | base64
    timestamp = "2020-10-06T18:09:12.667Z"
    expected = "RwpIOj77pkcQWIGYipGzEUdD0BoJPUry/tfG7JLDmts="
    assert pnauthinfo3_signature("ACME_CORP", "John.Doe", timestamp, HMAC_SECRET) == expected
    assert pnauthinfo3_header("ACME_CORP", "John.Doe", timestamp, HMAC_SECRET) == (
        f"PNAUTHINFO3-HMAC-SHA256 Credential=John.Doe/{timestamp} Signature={expected}"
    )


def test_pnauthinfo3_timestamps_are_utc_with_milliseconds_and_z():
    moment = datetime(2020, 10, 6, 20, 9, 12, 667_891, tzinfo=UTC).astimezone()
    assert pnauthinfo3_timestamp(moment) == "2020-10-06T20:09:12.667Z"


def test_pnauthinfo3_signs_every_request_fresh_and_a_little_in_the_past():
    moments = iter([T0, T0 + timedelta(minutes=20)])
    transport = Recorder(lambda request: httpx.Response(200, json={}))
    auth = PnAuthInfo3("ACME_CORP", "John.Doe", SecretStr(HMAC_SECRET), now=lambda: next(moments))
    with httpx.Client(transport=transport, auth=auth) as http:
        http.get(BASE)
        http.get(BASE)
    first, second = (r.headers["Authorization"] for r in transport.requests)
    pattern = r"PNAUTHINFO3-HMAC-SHA256 Credential=John\.Doe/(\S+) Signature=\S+"
    assert re.fullmatch(pattern, first).group(1) == "2026-03-02T08:59:55.000Z"  # 5 s back: clock skew
    assert re.fullmatch(pattern, second).group(1) == "2026-03-02T09:19:55.000Z"


# --- OAuth client credentials (docs/VENDORS.md 2.2 A) --------------------------------------------------------


class Recorder(httpx.MockTransport):
    """A MockTransport that keeps the requests it answered."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]):
        self.requests: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return answer(request)

        super().__init__(record)


class FakeOAuthServer:
    """Issues tok-1, tok-2, ...; the API accepts only the tokens in `valid`."""

    def __init__(self, expires_in: int | None = 3600, *, refuse_all: bool = False):
        self.issued = 0
        self.valid: set[str] = set()
        self.expires_in = expires_in
        self.refuse_all = refuse_all

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.issued += 1
            token = f"tok-{self.issued}"
            self.valid.add(token)
            body = {"access_token": token, "token_type": "Bearer"}
            return httpx.Response(200, json=body | ({"expires_in": self.expires_in} if self.expires_in else {}))
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return httpx.Response(200 if bearer in self.valid and not self.refuse_all else 401, json={})


def oauth_client(server: FakeOAuthServer, clock: Callable[[], float]) -> tuple[httpx.Client, Recorder]:
    transport = Recorder(server)
    auth = OAuthClientCredentials(
        f"{BASE}/oauth/token", "client-48", SecretStr(OAUTH_SECRET), scope="ACME_CORP/John.Doe",
        timeout=httpx.Timeout(5), clock=clock,
    )  # fmt: skip
    return httpx.Client(transport=transport, auth=auth), transport


def test_oauth_asks_for_a_token_with_the_documented_grant_scope_and_basic_credentials():
    server = FakeOAuthServer()
    http, transport = oauth_client(server, lambda: 0.0)
    assert http.get(f"{BASE}/api").status_code == 200
    token_request, call = transport.requests
    assert token_request.method == "POST" and token_request.url == f"{BASE}/oauth/token"
    assert dict(httpx.QueryParams(token_request.content.decode())) == {
        "grant_type": "client_credentials", "scope": "ACME_CORP/John.Doe",
    }  # fmt: skip
    assert token_request.headers["Authorization"] == httpx.BasicAuth("client-48", OAUTH_SECRET)._auth_header
    assert token_request.extensions["timeout"]["read"] == 5
    assert call.headers["Authorization"] == "Bearer tok-1"


def test_oauth_tokens_are_cached_until_a_minute_before_they_expire():
    server, now = FakeOAuthServer(expires_in=3600), {"t": 0.0}
    http, transport = oauth_client(server, lambda: now["t"])
    http.get(f"{BASE}/a")
    now["t"] = 3539.0
    http.get(f"{BASE}/b")
    assert server.issued == 1
    now["t"] = 3541.0
    http.get(f"{BASE}/c")
    assert server.issued == 2 and transport.requests[-1].headers["Authorization"] == "Bearer tok-2"


def test_an_oauth_answer_without_expires_in_is_taken_to_live_an_hour():
    server, now = FakeOAuthServer(expires_in=None), {"t": 0.0}
    http, _ = oauth_client(server, lambda: now["t"])
    http.get(f"{BASE}/a")
    now["t"] = 3500.0
    http.get(f"{BASE}/b")
    assert server.issued == 1


def test_a_cached_token_refused_with_401_is_renewed_once_and_the_call_retried():
    server = FakeOAuthServer()
    http, transport = oauth_client(server, lambda: 0.0)
    http.get(f"{BASE}/a")
    server.valid.clear()  # revoked at the vendor
    assert http.get(f"{BASE}/b").status_code == 200
    assert server.issued == 2
    assert [r.url.path for r in transport.requests] == ["/oauth/token", "/a", "/b", "/oauth/token", "/b"]


def test_a_fresh_token_refused_with_401_is_not_retried():
    server = FakeOAuthServer(refuse_all=True)
    http, transport = oauth_client(server, lambda: 0.0)
    assert http.get(f"{BASE}/a").status_code == 401
    assert [r.url.path for r in transport.requests] == ["/oauth/token", "/a"]


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (httpx.Response(401, json={"error": "invalid_client"}), VendorRejected, "refused the account's client "
         "credentials \\(HTTP 401: invalid_client\\); check oauth_client_id, oauth_client_secret and the scope"),
        (httpx.Response(503), VendorTransientError, "token endpoint answered HTTP 503"),
        (httpx.Response(200, text="<html>"), VendorProtocolError, "without an access_token"),
        (httpx.Response(200, json={"token_type": "Bearer"}), VendorProtocolError, "without an access_token"),
    ],
)  # fmt: skip
def test_token_endpoint_failures_are_step_errors_without_the_secret(answer, error, match):
    http, _ = oauth_client(FakeOAuthServer(), lambda: 0.0)
    http._transport = httpx.MockTransport(lambda request: answer)
    with pytest.raises(error, match=match) as raised:
        http.get(f"{BASE}/a")
    assert OAUTH_SECRET not in str(raised.value)


# --- the account secret --------------------------------------------------------------------------------


def account_secret(**changes) -> dict:
    return {"base_url": BASE, "client_id": "ACME_CORP", "user_id": "John.Doe",
            "auth": {"scheme": "pnauthinfo3", "secret": HMAC_SECRET}, **changes}  # fmt: skip


def test_both_schemes_are_read_from_the_secret_and_never_shown():
    oauth = {"scheme": "oauth", "token_url": f"{BASE}/oauth/token", "oauth_client_id": "c" * 48,
             "oauth_client_secret": OAUTH_SECRET}  # fmt: skip
    pn = MyPreferencesAccount.model_validate(account_secret(base_url=f"{BASE}/Profiles/"))
    oa = MyPreferencesAccount.model_validate(account_secret(auth=oauth, stage_concurrency=2))
    assert isinstance(pn.authenticator(), PnAuthInfo3) and isinstance(oa.authenticator(), OAuthClientCredentials)
    assert pn.base_url == BASE and oa.stage_concurrency == 2
    assert HMAC_SECRET not in repr(pn) and OAUTH_SECRET not in repr(oa)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"base_url": "http://pmstg.mypreferences.com"}, "base_url must be an https URL"),
        ({"auth": {"scheme": "oauth", "token_url": "http://x/token", "oauth_client_id": "c",
                   "oauth_client_secret": OAUTH_SECRET}}, "auth.token_url must be an https URL"),
        ({"auth": {"scheme": "basic", "secret": HMAC_SECRET}}, "auth: Input tag 'basic'"),
        ({"auth": {"scheme": "pnauthinfo3", "secret": ""}}, "auth.pnauthinfo3.secret"),
        ({"client_id": "ACME/../x"}, "client_id"),
        ({"stage_concurrency": 0}, "stage_concurrency"),
    ],
)  # fmt: skip
def test_an_invalid_secret_is_rejected_without_echoing_it(changes, field):
    with pytest.raises(VendorRejected, match="account secret is not valid") as raised:
        mypreferences_imports(account_secret(**changes))
    assert field in str(raised.value)
    assert HMAC_SECRET not in str(raised.value) and OAUTH_SECRET not in str(raised.value)


def test_http_is_allowed_only_with_allow_http():
    assert MyPreferencesAccount.model_validate(account_secret(base_url="http://127.0.0.1:1", allow_http=True))


# --- exception records (docs/VENDORS.md 2.3.5) ----------------------------------------------------------


def test_reasons_are_flattened_from_the_record_and_its_nested_elements():
    record = ExceptionRecord.model_validate(
        {
            "SequenceNumber": 42,
            "CustomerType": "Customer",
            "Exceptions": [{"Code": "E1", "Message": "Profile is locked"}, {"Message": "Consent is older"}],
            "Emails": [
                {"EmailAddress": "ok@example.org", "Exceptions": []},
                {"EmailAddress": "bad@", "Exceptions": [{"Code": 17, "Message": "Email does not match RegEx"}],
                 "EmailPreferences": [{"Exceptions": [{"Code": "P9"}]}]},
            ],
            "CustomerName": {"Exceptions": [{"Message": "FirstName is too long"}]},
        }
    )  # fmt: skip
    assert record.reasons() == [
        "E1: Profile is locked",
        "Consent is older",
        "Emails[1]: 17: Email does not match RegEx",
        "Emails[1].EmailPreferences[0]: P9",
        "CustomerName: FirstName is too long",
    ]
    assert record.key == "ok@example.org"


def test_a_record_listed_without_reasons_still_says_so():
    record = ExceptionRecord.model_validate({"SequenceNumber": 3, "Exceptions": None, "ProfileId": 9})
    assert record.reasons() == ["MyPreferences listed the record as an exception without giving a reason"]
    assert record.key == "9"


@pytest.mark.parametrize("wrapper", ["UserProfilePreferences", "Records", "Items"])
def test_exception_pages_are_read_under_any_assumed_wrapper(wrapper):
    page = ExceptionsPage.from_body({"Count": 1, "HasMore": True, wrapper: [{"SequenceNumber": 5}]})
    assert page.HasMore and [r.SequenceNumber for r in page.records] == [5]


@pytest.mark.parametrize("body", [[], {"UserProfilePreferences": [{"Exceptions": []}]}])
def test_unreadable_exception_pages_are_protocol_errors(body):
    with pytest.raises(VendorProtocolError):
        ExceptionsPage.from_body(body)


def test_an_empty_page_ends_the_pages_even_when_it_promises_more():
    pages = iter([{"HasMore": True, "UserProfilePreferences": [{"SequenceNumber": 1}]}, {"HasMore": True}])
    imports = adapter(Recorder(lambda request: httpx.Response(200, json=next(pages))), page_size=1)
    assert [number for number, _, _ in imports.failures(job(ref=LIVE_REF))] == [1]


# --- answers in other casings and shapes (api.py ASSUMPTIONS: jobrelay.vendors.reading) -------------


def test_a_status_answer_in_camel_case_with_numbers_as_text_is_read():
    status = BulkImportStatus.model_validate(
        {"accessToken": "918273", "status": "COMPLETED", "totalRecordsReceived": "12", "validationSuccessful": 10,
         "validation_failed": 2, "processed": 9, "pending": 0, "exceptions": 1, "notHonored": 0, "message": "x"}
    )  # fmt: skip
    assert status.AccessToken == 918273 and status.state is VendorState.DONE
    assert status.counts() == {"received": 12, "validation_ok": 10, "validation_failed": 2, "processed": 9,
                               "pending": 0, "exceptions": 1, "not_honored": 0}  # fmt: skip


def test_a_failure_reason_is_read_in_any_casing():
    assert BulkImportStatus.model_validate({"status": "failed", "errorMessage": "Quota"}).failure_reason() == "Quota"


@pytest.mark.parametrize(
    "records",
    [
        [{"SequenceNumber": 4, "Exceptions": [{"Code": "E", "Message": "bad"}]}],  # the documented list
        {"4": {"Exceptions": [{"Code": "E", "Message": "bad"}]}},  # an object keyed by SequenceNumber
        {"SequenceNumber": 4, "Exceptions": {"Code": "E", "Message": "bad"}},  # a single object
        [{"sequenceNumber": "4", "exceptions": {"E": {"message": "bad"}}}],  # camelCase, definitions keyed by Code
    ],
    ids=["list", "keyed", "single", "camel"],
)
def test_exception_records_are_read_in_any_shape(records):
    page = ExceptionsPage.from_body({"count": 1, "hasMore": False, "userProfilePreferences": records})
    assert page.HasMore is False and [(r.SequenceNumber, r.reasons()) for r in page.records] == [(4, ["E: bad"])]


def test_an_exception_record_s_echo_is_read_in_any_casing():
    record = ExceptionRecord.model_validate(
        {"sequenceNumber": 7, "emails": {"emailAddress": "bad@", "exceptions": ["Email does not match RegEx"]},
         "alternateIds": [{"alternateIdType": "CRM_ID", "alternateId": "C-7"}]}
    )  # fmt: skip
    assert record.reasons() == ["emails: Email does not match RegEx"] and record.key == "C-7"


def test_a_page_without_has_more_leaves_the_end_to_an_empty_page():
    assert ExceptionsPage.from_body({"Count": 0}).HasMore is None


@pytest.mark.parametrize(
    "body",
    [{"Count": 2, "Failures": [{"SequenceNumber": 1}]}, {"Count": 2, "UserProfilePreferences": []}],
    ids=["unknown-wrapper", "empty-list"],
)
def test_a_page_that_counts_records_it_does_not_hold_is_a_protocol_error_with_an_excerpt(body):
    with pytest.raises(VendorProtocolError, match="counts 2 records but holds") as raised:
        ExceptionsPage.from_body(body)
    assert raised.value.answer is not None and '"Count": 2' in raised.value.answer


def test_an_unreadable_status_answer_carries_a_redacted_excerpt():
    with pytest.raises(VendorProtocolError, match="not a readable import status") as raised:
        answering(200, {"AccessToken": "abc-918273", "Status": "Staging"}).poll(job(ref=LIVE_REF))
    assert "abc-918273" not in raised.value.answer and "Staging" in raised.value.answer


def test_an_unknown_status_word_stays_running_with_a_redacted_excerpt_of_the_answer():
    imports = answering(200, {"AccessToken": 918273, "Status": "Archived", "Processed": 3})
    outcome = imports.poll(job(ref=LIVE_REF))
    assert outcome.state is VendorState.RUNNING and outcome.raw_status == "Archived"
    assert '"Status": "Archived"' in outcome.unknown_status_answer and "918273" not in outcome.unknown_status_answer
    assert answering(200, {"Status": "Processing"}).poll(job(ref=LIVE_REF)).unknown_status_answer is None


# --- exception pages (docs/VENDORS.md 2.3.5) -------------------------------------------------------------


def paged_vendor(failed: list[int], *, cap: int, has_more: bool = True):
    """A vendor that lists `failed` 1-based, serving at most `cap` records per page whatever the limit."""

    def answer(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        page = failed[offset - 1 : offset - 1 + min(cap, limit)]
        body = {"Count": len(page), "UserProfilePreferences": [{"SequenceNumber": n} for n in page]}
        if has_more:
            body["HasMore"] = offset - 1 + len(page) < len(failed)
        return httpx.Response(200, json=body)

    return Recorder(answer)


@pytest.mark.parametrize("has_more", [True, False], ids=["has-more", "has-more-missing"])
def test_pages_smaller_than_asked_for_lose_no_record(has_more):
    failed = [2, 3, 5, 8, 13, 21, 34]
    transport = paged_vendor(failed, cap=3, has_more=has_more)
    listed = [number for number, _, _ in adapter(transport, page_size=5).failures(job(ref=LIVE_REF))]
    assert listed == failed
    offsets = [int(r.url.params["offset"]) for r in transport.requests]
    # The next page starts after the records sent (1, 4, 7), not at 1 + n*5; without HasMore an
    # empty page ends it.
    assert offsets == ([1, 4, 7] if has_more else [1, 4, 7, 8])


def test_a_page_repeating_the_one_before_is_a_protocol_error_not_a_loop():
    same = {"UserProfilePreferences": [{"SequenceNumber": 1}, {"SequenceNumber": 2}]}
    transport = Recorder(lambda request: httpx.Response(200, json=same))
    with pytest.raises(VendorProtocolError, match="page at offset 3 holds only records it listed before") as raised:
        list(adapter(transport, page_size=2).failures(job(ref=LIVE_REF)))
    assert "SequenceNumbers" in raised.value.answer and len(transport.requests) == 2


def test_a_page_of_records_already_listed_is_a_protocol_error():
    # A vendor that ignores offset past the first page: page 2 is page 1 in another order.
    pages = iter([[1, 2], [2, 1], [3]])

    def body(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"HasMore": True, "UserProfilePreferences": [{"SequenceNumber": n} for n in next(pages)]})

    with pytest.raises(VendorProtocolError, match="only records it listed before") as raised:
        list(adapter(Recorder(body), page_size=2).failures(job(ref=LIVE_REF)))
    assert raised.value.answer is not None


def test_a_record_listed_twice_is_reported_once():
    pages = iter([[1, 2], [2, 3], []])
    body = lambda request: httpx.Response(200, json={"UserProfilePreferences": [{"SequenceNumber": n} for n in next(pages)]})  # noqa: E731
    assert [n for n, _, _ in adapter(Recorder(body), page_size=2).failures(job(ref=LIVE_REF))] == [1, 2, 3]


# --- error answers (docs/VENDORS.md 2.4) ---------------------------------------------------------------------

LIVE_REF = ImportRef(access_token=Secret(918273), expires_at=datetime(2999, 1, 1, tzinfo=UTC))


def job(ref: ImportRef | None = None, **params) -> Job:
    """A job with `params`, carrying `ref` as the job store keeps it (shown fields, and secrets apart)."""
    created = Job(
        job_id="job-1",
        operation="mypreferences.bulk_import",
        vendor="mypreferences",
        deadline_at=T0 + timedelta(hours=8),
        params={**SOURCE, **params},
    )
    if ref is None:
        return created
    return created.model_copy(update={"vendor_ref": ref.shown(), "vendor_secrets": ref.secrets()})


def adapter(transport: httpx.MockTransport, *, now=lambda: T0, page_size: int = 1000) -> MyPreferencesImports:
    account = MyPreferencesAccount.model_validate(account_secret())
    http = httpx.Client(transport=transport)
    return MyPreferencesImports(account, http=http, now=now, exceptions_page_size=page_size)


def answering(status: int, body: bytes | dict) -> MyPreferencesImports:
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    return adapter(httpx.MockTransport(lambda request: httpx.Response(status, content=content)))


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (503, b"", VendorTransientError, "MyPreferences Stage answered HTTP 503"),
        (500, {"Message": "An error has occurred."}, VendorTransientError, "HTTP 500: An error has occurred."),
        (429, b"slow down", VendorTransientError, "HTTP 429: slow down"),
        (401, {"Message": "Authorization has been denied"}, VendorRejected,
         "refused the import's access token on Stage \\(HTTP 401: Authorization has been denied\\): it expired or is"),
        (413, b"", VendorRejected, "stage request too large .* lower batch_bytes"),
        (400, {"Message": "The request exceeds the maximum allowed size"}, VendorRejected, "stage request too large"),
        (400, {"Message": "The request is invalid.", "ModelState": {"request.Name": ["Name is required"]}},
         VendorRejected, "refused Stage \\(HTTP 400: The request is invalid.; Name is required\\)"),
        (403, {"Message": "User group lacks permission"}, VendorRejected, "HTTP 403: User group lacks permission"),
        (404, b"<html>Not Found</html>", VendorRejected, "HTTP 404: <html>Not Found</html>; check the clientId "
         "'ACME_CORP'"),
        (200, b"<html>Fatal error</html>", VendorProtocolError, "Stage \\(HTTP 200\\) with a body that is not JSON"),
        (200, b"[1, 2]", VendorProtocolError, "not a readable import status"),
    ],
)  # fmt: skip
def test_answers_to_stage_become_step_errors(status, body, error, match):
    with pytest.raises(error, match=match):
        answering(status, body).stage(job(ref=LIVE_REF), b'{"UserProfilePreferences":[]}', 0)


def test_401_on_initiate_means_the_account_s_credentials():
    with pytest.raises(VendorRejected, match="rejected the account's credentials on Initiate \\(HTTP 401"):
        answering(401, {"Message": "Authorization has been denied for this request."}).open(job())


# --- Initiate is never repeated blindly (api.py ASSUMPTIONS; rule: outcome unknown) ---------------------

QUOTA = "an import may have been opened at MyPreferences.* counts against the account's daily import quota.* not sent again"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (json.dumps({"Status": "Initiated", "Name": "nightly"}).encode(), "answered without an AccessToken"),
        (b'{"Name": "nightly", "AccessToken": 918273, "Status": "Initi', "answered with a body that is not JSON"),
        (b"[1, 2]", "answered with something that is not an import status"),
        (
            json.dumps({"AccessToken": "T-1", "Status": "Initiated"}).encode(),
            "answered with something that is not an import status",
        ),
    ],
    ids=["no-token", "cut-short", "not-a-status", "token-not-a-number"],
)
def test_an_unreadable_initiate_answer_is_an_unknown_outcome_sent_once(body, said):
    transport = Recorder(lambda request: httpx.Response(200, content=body))
    with pytest.raises(VendorOutcomeUnknown, match=f"Initiate {said}: {QUOTA}") as raised:
        adapter(transport).open(job())
    assert len(transport.requests) == 1
    assert raised.value.code == "VENDOR_PROTOCOL" and raised.value.answer and "918273" not in raised.value.answer


@pytest.mark.parametrize("error", [httpx.ReadTimeout("read"), httpx.RemoteProtocolError("closed"), httpx.WriteTimeout("w")])
def test_an_initiate_that_got_no_answer_is_an_unknown_outcome(error):
    def lose(request):
        raise error

    with pytest.raises(VendorOutcomeUnknown, match=f"Initiate got no answer \\({type(error).__name__}\\): {QUOTA}"):
        adapter(httpx.MockTransport(lose)).open(job())


def test_an_initiate_that_never_connected_or_got_an_error_answer_stays_transient():
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(VendorTransientError, match="Initiate failed: ConnectError"):
        adapter(httpx.MockTransport(refuse)).open(job())
    with pytest.raises(VendorTransientError, match="Initiate answered HTTP 503"):
        answering(503, b"busy").open(job())


def test_an_oauth_token_failure_before_initiate_is_not_an_unknown_outcome():
    oauth = {"scheme": "oauth", "token_url": f"{BASE}/oauth/token", "oauth_client_id": "c" * 48,
             "oauth_client_secret": OAUTH_SECRET}  # fmt: skip
    account = MyPreferencesAccount.model_validate(account_secret(auth=oauth))

    def token_endpoint_cut(request):
        if request.url.path == "/oauth/token":
            raise httpx.ReadTimeout("token endpoint hung")
        raise AssertionError("Initiate must not be sent without a token")

    imports = MyPreferencesImports(account, http=httpx.Client(transport=httpx.MockTransport(token_endpoint_cut)), now=lambda: T0)
    with pytest.raises(VendorTransientError, match="Initiate timed out"):
        imports.open(job())


def test_the_access_token_read_from_initiate_is_masked_in_later_excerpts():
    from jobrelay.vendors.redaction import excerpt

    ref = answering(200, {"AccessToken": 55501234, "Status": "Initiated"}).open(job())
    assert "55501234" not in excerpt("GET /Import/55501234 answered oddly")
    assert ref.secrets() == {"access_token": 55501234} and "55501234" not in json.dumps(ref.shown())


def test_transport_failures_are_transient():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(VendorTransientError, match="MyPreferences Retrieve status failed: ConnectError"):
        adapter(httpx.MockTransport(refuse)).poll(job(ref=LIVE_REF))


def test_long_vendor_messages_are_shortened():
    message = vendor_message(json.dumps({"Message": "x" * 1000}).encode())
    assert len(message) == 300 and message.endswith("...")
    assert vendor_message(b"") is None and vendor_message(b'{"Other": 1}') is None


def test_a_stage_body_above_the_job_s_cap_is_never_sent():
    transport = Recorder(lambda request: httpx.Response(200, json={}))
    imports = adapter(transport)
    small = job(ref=LIVE_REF, batch_bytes=MB)
    defaults = imports.limits_for(job(ref=LIVE_REF))
    assert imports.limits_for(small).max_bytes == MB and defaults.max_bytes == 25 * MB
    assert defaults.max_total_records == 10_000_000 and defaults.max_records is None
    with pytest.raises(ValueError, match="above this job's batch_bytes"):
        imports.stage(small, b"x" * (MB + 1), 1)
    assert transport.requests == []


@pytest.mark.parametrize(
    ("params", "problem"),
    [({"name": ""}, "params.name: String should have at least 1 character"),
     ({"match_value": "CRM_ID"}, "params: Value error, match_criteria and match_value go together")],
)  # fmt: skip
def test_invalid_job_params_are_rejected_naming_the_problem(params, problem):
    with pytest.raises(VendorRejected, match=re.escape(problem)):
        answering(200, {}).open(job(**params))


def test_initiate_sends_the_params_under_the_vendor_s_names():
    transport = Recorder(lambda request: httpx.Response(200, json={"AccessToken": 1, "Status": "Initiated"}))
    adapter(transport).open(job(match_criteria="AlternateIdType", match_value="CRM_ID", refresh_tags=True))
    (request,) = transport.requests
    assert request.url.path == "/Profiles/Async/ACME_CORP/Import"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "Name": "nightly", "DataStageDuration": 3, "ImportAction": "Add", "MatchCriteria": "AlternateIdType",
        "MatchValue": "CRM_ID", "RefreshAlternateIds": False, "RefreshContacts": False, "RefreshCustomFields": False,
        "RefreshGroups": False, "RefreshTags": True, "AllowPriorConsents": False,
    }  # fmt: skip


def test_the_client_uses_the_inferred_paths():
    transport = Recorder(lambda request: httpx.Response(200, json={"AccessToken": 5, "Status": "Staging"}))
    client = MyPreferencesClient(
        BASE, "ACME_CORP", auth=httpx.Auth(), http=httpx.Client(transport=transport), timeout=httpx.Timeout(1)
    )
    client.stage(5, b"{}")
    client.execute(5)
    client.status(5)
    client.exceptions(5, limit=10, offset=11)
    assert [(r.method, str(r.url)) for r in transport.requests] == [
        ("POST", f"{BASE}/Profiles/Async/ACME_CORP/Import/5"),
        ("POST", f"{BASE}/Profiles/Async/ACME_CORP/Import/5/Execute"),
        ("GET", f"{BASE}/Profiles/Async/ACME_CORP/Import/5"),
        ("GET", f"{BASE}/Profiles/Async/ACME_CORP/Import/5/Exceptions?limit=10&offset=11"),
    ]


# --- reconciliation against the vendor's counts (docs/VENDORS.md 2.5; api.py ASSUMPTIONS, NotHonored) -----


def counts(received=10, ok=10, failed=0, processed=10, pending=0, exceptions=0, not_honored=0) -> dict[str, int]:
    return {"received": received, "validation_ok": ok, "validation_failed": failed, "processed": processed,
            "pending": pending, "exceptions": exceptions, "not_honored": not_honored}  # fmt: skip


def reconciled(vendor_counts: dict, *, sent: int = 10, listed: int = 0, status: str = "Completed"):
    finished = job(ref=LIVE_REF.model_copy(update={"status": status})).model_copy(
        update={"progress": Progress(percent=100, counts=vendor_counts), "vendor_status": status}
    )
    rec = Reconciler(vendor=vendor_counts)
    answering(200, {}).reconcile(finished, ImportTotals(read=sent, refused=0, sent=sent, listed_failures=listed, warnings=0), rec)
    return rec.result()


def disagreeing(result) -> list[str]:
    return [check.check for check in result.checks if not check.agree]


def test_a_clean_import_reconciles_completely():
    result = reconciled(counts())
    assert result.complete and result.reconciled is True and result.shortfall == []
    assert len(result.checks) == 5  # sent/received, validation, listed, processed, pending


@pytest.mark.parametrize("status", ["COMPLETED", "Complete", "done", "Success"])
def test_any_plain_completion_word_is_complete(status):
    assert reconciled(counts(), status=status).complete


def test_validation_failures_and_exceptions_that_are_all_listed_reconcile_but_are_partial():
    result = reconciled(counts(ok=8, failed=2, processed=7, exceptions=1), listed=3)
    assert result.reconciled is True and not result.complete
    assert result.shortfall == [
        "2 records failed MyPreferences' validation at staging and were not imported (see failed_records.jsonl)",
        "1 records became exceptions while MyPreferences imported them (see failed_records.jsonl)",
    ]


def test_failed_records_listed_short_of_the_vendor_s_counts_never_reconcile():
    # The paging bug: the vendor counted 2 refused + 3 exceptions, but only 2 records were listed.
    result = reconciled(counts(ok=8, failed=2, processed=5, exceptions=3), listed=2)
    assert result.reconciled is False and not result.complete
    assert disagreeing(result) == ["records listed as failed vs ValidationFailed + Exceptions (+ NotHonored)"]
    explained = "MyPreferences listed 2 failed records but its counts make 5 (2 failed validation, 3 exceptions, 0 not honoured)"
    assert explained in result.shortfall


@pytest.mark.parametrize(
    ("vendor_counts", "listed", "notes", "where"),
    [
        (counts(processed=7, not_honored=3), 3,
         ["the 3 not-honoured records are listed among the exceptions", "the 3 not-honoured records are counted apart from Processed"],
         " (see failed_records.jsonl)"),
        (counts(processed=10, not_honored=3), 3,
         ["the 3 not-honoured records are listed among the exceptions", "the 3 not-honoured records are counted among Processed"],
         " (see failed_records.jsonl)"),
        (counts(processed=7, not_honored=3), 0,
         ["the 3 not-honoured records are not listed among the exceptions", "the 3 not-honoured records are counted apart from Processed"],
         "; MyPreferences does not list which ones"),
        (counts(processed=10, not_honored=3), 0,
         ["the 3 not-honoured records are not listed among the exceptions", "the 3 not-honoured records are counted among Processed"],
         "; MyPreferences does not list which ones"),
    ],
    ids=["listed-apart", "listed-among-processed", "unlisted-apart", "unlisted-among-processed"],
)  # fmt: skip
def test_not_honoured_records_reconcile_under_the_reading_the_counts_fit_and_are_partial(vendor_counts, listed, notes, where):
    result = reconciled(vendor_counts, listed=listed)
    assert result.reconciled is True and not result.complete
    assert [check.note for check in result.checks if check.note] == notes
    assert result.shortfall == [f"3 records were not honoured by MyPreferences during the import{where}"]


def test_not_honoured_counts_that_fit_neither_reading_disagree():
    result = reconciled(counts(processed=5, not_honored=3), listed=1)
    assert disagreeing(result) == [
        "records listed as failed vs ValidationFailed + Exceptions (+ NotHonored)",
        "ValidationSuccessful vs Processed + Exceptions (+ NotHonored)",
    ]
    assert (
        "10 records passed MyPreferences' validation but only 8 (or 5 without the not-honoured records) are accounted "
        "for (5 processed, 0 exceptions, 3 not honoured)"
    ) in result.shortfall


@pytest.mark.parametrize(
    ("vendor_counts", "sent", "check", "explained"),
    [
        (counts(received=9, ok=9, processed=9), 10, "records staged vs MyPreferences' TotalRecordsReceived",
         "we staged 10 records but MyPreferences counts 9 received"),
        (counts(ok=7, processed=7), 10, "TotalRecordsReceived vs ValidationSuccessful + ValidationFailed",
         "MyPreferences received 10 records but counts 7 as validated (7 passed, 0 failed)"),
        (counts(processed=8, pending=2), 10, "records still Pending once MyPreferences said the import ended",
         "MyPreferences says the import ended but still counts 2 records pending: its counts are not final"),
    ],
    ids=["sent-vs-received", "received-vs-validated", "pending"],
)  # fmt: skip
def test_counts_that_do_not_add_up_are_never_complete(vendor_counts, sent, check, explained):
    result = reconciled(vendor_counts, sent=sent)
    assert check in disagreeing(result) and explained in result.shortfall and not result.complete


@pytest.mark.parametrize("status", ["CompletedWithErrors", "Completed_With_Exceptions", "completedWithWarnings"])
def test_a_completed_with_errors_word_is_partial_even_when_the_counts_add_up(status):
    result = reconciled(counts(), status=status)
    assert result.reconciled is True and not result.complete
    assert result.shortfall == [f"MyPreferences ended the import as {status!r}, not plainly completed"]


def test_failed_with_records_processed_is_partial_and_says_not_to_run_it_again():
    result = reconciled(counts(processed=4), status="Failed")
    assert not result.complete and result.reconciled is False
    assert result.shortfall[-1] == (
        "MyPreferences reports the import as 'Failed' (by its docs: nothing added) yet counts 4 records processed: "
        "those were imported, so do not run the whole import again"
    )


def test_without_vendor_counts_nothing_is_checked():
    result = reconciled({})
    assert result.checks == [] and result.reconciled is None and result.complete
