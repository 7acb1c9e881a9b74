"""The MyPreferences sandbox over real sockets, spoken to in raw HTTP: both auth schemes, the five
import calls on the inferred paths (docs/VENDORS.md 2), the control routes, every switchable fault and
every doc-consistent variant (smaller pages, no HasMore, NotHonored, other status words, camelCase,
CompletedWithErrors, an unusable Initiate answer)."""

import base64
import hashlib
import hmac
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from devstack.sandbox.mypreferences import MyPreferencesSandbox, StagedRecord, stage_record
from jobrelay.vendors.mypreferences.auth import MyPreferencesAccount
from tests.integration.sandbox_client import SandboxControl

REPO = Path(__file__).resolve().parents[2]
IMPORT = "/Profiles/Async/SANDBOX_CO/Import"


@pytest.fixture
def sandbox() -> Iterator[MyPreferencesSandbox]:
    with MyPreferencesSandbox(process_seconds=0.3) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as client:
        yield client


def sign(sandbox: MyPreferencesSandbox, timestamp: str, *, secret: str | None = None, user: str = "sandbox.user") -> str:
    """A PNAUTHINFO3 header computed here, independently of the adapter's code."""
    key = (secret or sandbox.account_secret()["auth"]["secret"]).encode()
    digest = hmac.new(key, f"SANDBOX_CO:{user}:{timestamp}".encode(), hashlib.sha256).digest()
    return f"PNAUTHINFO3-HMAC-SHA256 Credential={user}/{timestamp} Signature={base64.b64encode(digest).decode()}"


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Api(SandboxControl):
    """Raw calls to the sandbox, signed with PNAUTHINFO3 unless told otherwise."""

    def call(self, method: str, path: str, *, auth: str | None = None, **kwargs) -> httpx.Response:
        header = auth if auth is not None else sign(self.sandbox, stamp(datetime.now(UTC) - timedelta(seconds=1)))
        return self.http.request(method, self.sandbox.base_url + path, headers={"Authorization": header}, **kwargs)

    def initiate(self, **body) -> dict:
        answer = self.call("POST", IMPORT, json={"Name": "raw import", **body})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def stage(self, token: int, records: list) -> httpx.Response:
        return self.call("POST", f"{IMPORT}/{token}", json={"UserProfilePreferences": records})

    def status(self, token: int) -> dict:
        return self.call("GET", f"{IMPORT}/{token}").json()

    def exceptions(self, token: int, **query) -> httpx.Response:
        return self.call("GET", f"{IMPORT}/{token}/Exceptions", params=query)

    def wait_until(self, token: int, status: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while (answer := self.status(token))["Status"] != status:
            assert time.monotonic() < deadline, f"import {token} stayed {answer['Status']}"
            time.sleep(0.02)
        return answer


@pytest.fixture
def api(sandbox, http) -> Api:
    return Api(sandbox, http)


def person(n: int, domain: str = "example.org") -> dict:
    return {"AlternateIds": [{"AlternateIdType": "CRM_ID", "AlternateId": f"C-{n}"}],
            "Emails": [{"EmailAddress": f"p{n}@{domain}"}]}  # fmt: skip


# --- setup --------------------------------------------------------------------------------------------


def test_binds_to_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        MyPreferencesSandbox(host="0.0.0.0")


@pytest.mark.parametrize("scheme", ["pnauthinfo3", "oauth"])
def test_the_account_secret_is_one_the_adapter_accepts(sandbox, scheme):
    secret = sandbox.account_secret(scheme)
    account = MyPreferencesAccount.model_validate(secret)
    assert account.base_url == sandbox.base_url and account.client_id == "SANDBOX_CO" and account.auth.scheme == scheme
    if scheme == "oauth":
        assert (len(secret["auth"]["oauth_client_id"]), len(secret["auth"]["oauth_client_secret"])) == (48, 64)
        assert secret["auth"]["token_url"] == f"{sandbox.base_url}/oauth/token"


def test_an_unknown_scheme_has_no_secret(sandbox):
    with pytest.raises(ValueError, match="unknown auth scheme"):
        sandbox.account_secret("basic")


def test_generated_credentials_differ_per_sandbox():
    with MyPreferencesSandbox() as first, MyPreferencesSandbox() as second:
        assert first.account_secret()["auth"] != second.account_secret()["auth"]


# --- PNAUTHINFO3 ----------------------------------------------------------------------------------------


def test_a_fresh_signature_is_accepted(api):
    assert api.initiate()["Status"] == "Initiated"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (lambda s, now: sign(s, stamp(now + timedelta(seconds=30))), "the timestamp is in the future"),
        (lambda s, now: sign(s, stamp(now - timedelta(minutes=16))), "the signature has expired"),
        (lambda s, now: sign(s, stamp(now), secret="wrong"), "the signature does not match"),
        (lambda s, now: sign(s, stamp(now), user="someone.else"), "the signature does not match"),
        (lambda s, now: sign(s, stamp(now)).replace("Z ", " "), "the timestamp has no time zone"),
        (lambda s, now: sign(s, "yesterday"), "the timestamp is not ISO-8601"),
        (lambda s, now: "PNAUTHINFO3-HMAC-SHA256 Signature=abc", "malformed PNAUTHINFO3 credentials"),
        (lambda s, now: "Basic dXNlcjpwYXNz", "no supported Authorization scheme"),
        (lambda s, now: "", "no supported Authorization scheme"),
    ],
)
def test_bad_signatures_answer_401_with_a_reason(api, sandbox, header, reason):
    signed = header(sandbox, datetime.now(UTC) - timedelta(seconds=1))
    answer = api.call("POST", IMPORT, auth=signed, json={"Name": "x"})
    assert answer.status_code == 401
    assert answer.json() == {"Message": f"Authorization has been denied for this request: {reason}"}


def test_the_scheme_name_is_case_insensitive(api, sandbox):
    header = sign(sandbox, stamp(datetime.now(UTC) - timedelta(seconds=1))).replace("PNAUTHINFO3", "pnauthinfo3")
    assert api.call("POST", IMPORT, auth=header, json={"Name": "x"}).status_code == 200


def test_the_signature_lifetime_is_configurable(api, sandbox):
    api.configure(signature_max_age_seconds=1)
    header = sign(sandbox, stamp(datetime.now(UTC) - timedelta(seconds=2)))
    assert api.call("POST", IMPORT, auth=header, json={"Name": "x"}).status_code == 401


# --- OAuth ----------------------------------------------------------------------------------------------


def token_request(sandbox: MyPreferencesSandbox, http: httpx.Client, **form) -> httpx.Response:
    auth = sandbox.account_secret("oauth")["auth"]
    body = {"grant_type": "client_credentials", "scope": "SANDBOX_CO/sandbox.user", **form}
    return http.post(auth["token_url"], data=body, auth=(auth["oauth_client_id"], auth["oauth_client_secret"]))


def test_the_token_endpoint_issues_bearer_tokens_the_api_accepts(api, sandbox, http):
    api.configure(oauth_token_seconds=120)
    answer = token_request(sandbox, http)
    token = answer.json()
    assert answer.status_code == 200 and token["token_type"] == "Bearer" and token["expires_in"] == 120
    assert api.call("POST", IMPORT, auth=f"Bearer {token['access_token']}", json={"Name": "x"}).status_code == 200


def test_client_credentials_may_also_come_in_the_form(sandbox, http):
    auth = sandbox.account_secret("oauth")["auth"]
    form = {"grant_type": "client_credentials", "scope": "SANDBOX_CO/sandbox.user",
            "client_id": auth["oauth_client_id"], "client_secret": auth["oauth_client_secret"]}  # fmt: skip
    assert http.post(auth["token_url"], data=form).status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"scope": "SANDBOX_CO"}, 400, "invalid_scope"),
    ],
)
def test_the_token_endpoint_checks_grant_and_scope(sandbox, http, form, status, error):
    answer = token_request(sandbox, http, **form)
    assert (answer.status_code, answer.json()["error"]) == (status, error)


def test_wrong_client_credentials_are_invalid_client(sandbox, http):
    auth = sandbox.account_secret("oauth")["auth"]
    form = {"grant_type": "client_credentials", "scope": "SANDBOX_CO/sandbox.user"}
    answer = http.post(auth["token_url"], data=form, auth=(auth["oauth_client_id"], "x"))
    assert answer.status_code == 401 and answer.json() == {"error": "invalid_client"}


def test_unknown_expired_and_revoked_bearer_tokens_answer_401(api, sandbox, http):
    assert api.call("POST", IMPORT, auth="Bearer made-up", json={"Name": "x"}).status_code == 401
    api.configure(oauth_token_seconds=1)
    expiring = token_request(sandbox, http).json()["access_token"]
    api.configure(oauth_token_seconds=3600)
    revoked = token_request(sandbox, http).json()["access_token"]
    assert http.post(f"{sandbox.base_url}/_sandbox/revoke_tokens").json() == {"revoked": 2}
    assert api.call("POST", IMPORT, auth=f"Bearer {revoked}", json={"Name": "x"}).status_code == 401
    time.sleep(1.05)
    answer = api.call("POST", IMPORT, auth=f"Bearer {expiring}", json={"Name": "x"})
    assert answer.json()["Message"].endswith("the bearer token is unknown or expired")


# --- Initiate --------------------------------------------------------------------------------------------


def test_initiate_answers_a_bulk_import_status_with_a_naive_utc_expires(api):
    before = datetime.now(UTC).replace(tzinfo=None)
    answer = api.initiate(MatchCriteria="AlternateIdType", MatchValue="CRM_ID", RefreshTags=True)
    assert isinstance(answer["AccessToken"], int) and answer["Status"] == "Initiated"
    assert {answer[k] for k in ("TotalRecordsReceived", "ValidationSuccessful", "Processed", "Exceptions")} == {0}
    assert (answer["Name"], answer["DataStageDuration"], answer["ImportAction"]) == ("raw import", 3, "Add")
    assert answer["MatchValue"] == "CRM_ID" and answer["RefreshTags"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", answer["Expires"])
    expires = datetime.fromisoformat(answer["Expires"])
    assert timedelta(hours=6) - timedelta(seconds=5) < expires - before <= timedelta(hours=6, seconds=1)


def test_the_reported_expiry_can_differ_from_the_real_one(api):
    api.configure(reported_expires_seconds=12 * 3600, token_seconds=0.2)
    answer = api.initiate()
    assert datetime.fromisoformat(answer["Expires"]) > datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=11)
    time.sleep(0.25)
    assert api.call("GET", f"{IMPORT}/{answer['AccessToken']}").status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Name": ""}, "Name is required (1-100 characters)"),
        ({"Name": "x" * 101}, "Name is required (1-100 characters)"),
        ({"Name": "x", "DataStageDuration": 11}, "The staging duration cannot exceed 10 days"),
        ({"Name": "x", "DataStageDuration": "3"}, "The value of 'DataStageDuration' is not valid"),
        ({"Name": "x", "ImportAction": "Update"}, "ImportAction is Add or Delete"),
        ({"Name": "x", "MatchCriteria": "AlternateIdType"}, "MatchCriteria must be AlternateIdType, and MatchValue "
                                                           "goes with it"),
        ({"Name": "x", "MatchCriteria": "Email", "MatchValue": "x"}, "MatchCriteria must be AlternateIdType, and "
                                                                     "MatchValue goes with it"),
        ({"Name": "x", "MatchCriteria": "AlternateIdType", "MatchValue": "SSN"}, "AlternateIdType 'SSN' is not "
                                                                                  "configured for the client"),
        ({"Name": "x", "RefreshEverything": True}, "Unknown property 'RefreshEverything'"),
    ],
)  # fmt: skip
def test_initiate_checks_its_body(api, body, message):
    answer = api.call("POST", IMPORT, json=body)
    assert answer.status_code == 400 and answer.json() == {"Message": message}


def test_a_wrong_client_id_is_404_and_an_unknown_path_is_404(api):
    assert api.call("POST", "/Profiles/Async/OTHER/Import", json={"Name": "x"}).json() == {
        "Message": "Client 'OTHER' was not found"
    }
    for method, path in (("GET", IMPORT), ("POST", f"{IMPORT}/1/Stage"), ("GET", "/Profiles/v4/SANDBOX_CO")):
        assert api.call(method, path).status_code == 404


# --- Stage, Execute, status, exceptions ------------------------------------------------------------------


def test_staged_records_are_validated_and_counted(api):
    token = api.initiate(MatchCriteria="AlternateIdType", MatchValue="CRM_ID")["AccessToken"]
    first = api.stage(token, [person(1), person(2)]).json()
    assert (first["Status"], first["TotalRecordsReceived"], first["ValidationSuccessful"]) == ("Staging", 2, 2)
    bad = [
        {"CustomerType": "Customer"},
        {"ProfileId": 9, "Emails": [{"EmailAddress": "bad@"}]},
        {"ProfileId": 10, "Nickname": "x"},
        {"AlternateIds": [{"AlternateIdType": "SSN", "AlternateId": "1"}]},
        "not an object",
        {"ProfileId": 11},
    ]
    second = api.stage(token, bad).json()
    assert {k: second[k] for k in ("TotalRecordsReceived", "ValidationSuccessful", "ValidationFailed", "Pending")} == {
        "TotalRecordsReceived": 8, "ValidationSuccessful": 3, "ValidationFailed": 5, "Pending": 3
    }  # fmt: skip
    records = api.exceptions(token).json()["UserProfilePreferences"]
    assert [(r["SequenceNumber"], r["Exceptions"]) for r in records] == [
        (3, [{"Code": "MissingIdentifier", "Message": "A ProfileId, AlternateId or Email is required to identify the "
                                                      "profile"}]),
        (4, []),
        (5, [{"Code": "UnknownProperty", "Message": "Unknown property 'Nickname'"}]),
        (6, [{"Code": "InvalidAlternateIdType", "Message": "AlternateIdType 'SSN' is not configured"}]),
        (7, [{"Code": "InvalidRecord", "Message": "The record is not an object"}]),
    ]  # fmt: skip
    assert records[1]["Emails"] == [
        {"EmailAddress": "bad@", "Exceptions": [{"Code": "InvalidEmail", "Message": "Email does not match RegEx"}]}
    ]


def test_an_import_moves_through_its_statuses_and_lists_execution_exceptions(api):
    api.configure(exception_every=3, process_seconds=0.6)
    token = api.initiate()["AccessToken"]
    assert api.status(token)["Status"] == "Initiated"
    api.stage(token, [person(n) for n in range(1, 7)] + [person(7, domain="Exception.Test")])
    executed = api.call("POST", f"{IMPORT}/{token}/Execute")
    assert executed.status_code == 200 and executed.json()["Status"] == "Queued"
    assert api.exceptions(token).json()["Count"] == 0  # execution exceptions show once it ends
    processing = api.wait_until(token, "Processing")
    assert processing["Processed"] + processing["Pending"] == 7
    done = api.wait_until(token, "Completed")
    assert {k: done[k] for k in ("Processed", "Pending", "Exceptions", "NotHonored")} == {
        "Processed": 4, "Pending": 0, "Exceptions": 3, "NotHonored": 0
    }  # fmt: skip
    page = api.exceptions(token).json()
    assert [r["SequenceNumber"] for r in page["UserProfilePreferences"]] == [3, 6, 7]
    assert page["UserProfilePreferences"][2]["Exceptions"][0]["Message"].endswith("email domain exception.test)")
    assert page["UserProfilePreferences"][0]["AlternateIds"] == [{"AlternateIdType": "CRM_ID", "AlternateId": "C-3"}]


def test_exceptions_are_paged_with_a_one_based_offset(api):
    token = api.initiate()["AccessToken"]
    api.stage(token, [{"ProfileId": n} if n % 2 else {"CustomerType": "x"} for n in range(1, 11)])
    pages = [api.exceptions(token, limit=2, offset=offset).json() for offset in (1, 3, 5)]
    assert [[r["SequenceNumber"] for r in p["UserProfilePreferences"]] for p in pages] == [[2, 4], [6, 8], [10]]
    assert [(p["Count"], p["HasMore"], p["Offset"], p["TotalResults"]) for p in pages] == [
        (2, True, 1, 5), (2, True, 3, 5), (1, False, 5, 5)
    ]  # fmt: skip
    assert api.exceptions(token).json()["Limit"] == 1000
    for query in ({"limit": 0}, {"limit": 1001}, {"offset": "x"}):
        assert api.exceptions(token, **query).status_code == 400


def test_staging_and_execute_are_refused_once_executed(api):
    token = api.initiate()["AccessToken"]
    api.stage(token, [person(1)])
    assert api.call("POST", f"{IMPORT}/{token}/Execute").status_code == 200
    again = api.call("POST", f"{IMPORT}/{token}/Execute")
    assert again.status_code == 400 and again.json() == {"Message": "The import has already been executed"}
    late = api.stage(token, [person(2)])
    assert late.status_code == 400 and "can no longer be staged" in late.json()["Message"]


@pytest.mark.parametrize(
    "body", [{"Profiles": []}, {"UserProfilePreferences": {}}, {"UserProfilePreferences": [], "Extra": 1}, [1]]
)
def test_a_stage_body_must_be_the_wrapper_and_a_list(api, body):
    token = api.initiate()["AccessToken"]
    answer = api.call("POST", f"{IMPORT}/{token}", json=body)
    assert answer.status_code == 400 and answer.json()["Message"].startswith("The request is invalid")


def test_a_stage_request_over_the_size_limit_answers_413(api):
    api.configure(max_request_bytes=200)
    token = api.initiate()["AccessToken"]
    answer = api.stage(token, [person(n) for n in range(5)])
    assert answer.status_code == 413 and "maximum allowed size of 200 bytes" in answer.json()["Message"]
    assert api.status(token)["TotalRecordsReceived"] == 0


def test_an_import_holds_a_limited_number_of_records(api):
    api.configure(max_records_per_import=3)
    token = api.initiate()["AccessToken"]
    assert api.stage(token, [person(1), person(2)]).status_code == 200
    assert api.stage(token, [person(3), person(4)]).json() == {"Message": "An import holds at most 3 records"}


@pytest.mark.parametrize(("fail_imports", "message"), [(True, "The import failed to execute (simulated)"),
                                                       ("Database unavailable", "Database unavailable")])  # fmt: skip
def test_imports_can_be_made_to_fail(api, fail_imports, message):
    api.configure(fail_imports=fail_imports)
    token = api.initiate()["AccessToken"]
    api.stage(token, [person(1)])
    api.call("POST", f"{IMPORT}/{token}/Execute")
    failed = api.wait_until(token, "Failed")
    assert failed["Message"] == message and failed["Processed"] == 0


@pytest.mark.parametrize("suffix", ["", "/Execute", "/Exceptions"])
def test_unknown_and_expired_access_tokens_answer_401(api, suffix):
    api.configure(token_seconds=0.2)
    token = api.initiate()["AccessToken"]
    method = "POST" if suffix == "/Execute" else "GET"
    unknown = api.call(method, f"{IMPORT}/123{suffix}")
    assert unknown.status_code == 401 and unknown.json()["Message"].endswith("the access token is not valid")
    time.sleep(0.25)
    expired = api.call(method, f"{IMPORT}/{token}{suffix}")
    assert expired.status_code == 401 and expired.json()["Message"].endswith("the access token has expired")


def test_staged_records_keep_only_what_answers_need():
    record = stage_record({**person(1), "CustomerName": {"FirstName": "Ada"}, "Consents": [{"x": 1}]}, ["CRM_ID"])
    assert record == StagedRecord(("AlternateId", "CRM_ID", "C-1"), "example.org", None)
    assert not hasattr(record, "__dict__")  # slots: no room for the rest of the record


# --- faults ------------------------------------------------------------------------------------------------


def test_expired_auth_refuses_every_call_and_the_token_endpoint(api, sandbox, http):
    token = api.initiate()["AccessToken"]
    api.configure(expired_auth=True)
    assert api.call("GET", f"{IMPORT}/{token}").status_code == 401
    assert api.call("POST", IMPORT, json={"Name": "x"}).json()["Message"].endswith("the credentials have expired")
    assert token_request(sandbox, http).status_code == 401


def test_http_5xx_limited_to_a_call_kind(api):
    token = api.initiate()["AccessToken"]
    api.configure(http_5xx=1, fault_methods=["status"])
    assert api.stage(token, [person(1)]).status_code == 200
    assert api.call("GET", f"{IMPORT}/{token}").status_code == 503
    assert api.call("GET", f"{IMPORT}/{token}").status_code == 200
    assert api.control("config")["http_5xx"] == 0


def test_malformed_answers_are_not_json(api):
    api.configure(malformed=1)
    answer = api.call("POST", IMPORT, json={"Name": "x"})
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()


def test_timeouts_hang_and_slow_seconds_delay_every_call(api):
    api.configure(timeouts=1, timeout_hang_seconds=2)
    with pytest.raises(httpx.ReadTimeout):
        api.call("POST", IMPORT, json={"Name": "x"}, timeout=0.2)
    api.configure(slow_seconds=0.3)
    started = time.monotonic()
    assert api.call("POST", IMPORT, json={"Name": "x"}).status_code == 200
    assert 0.3 <= time.monotonic() - started < 1.5


# --- doc-consistent variants ---------------------------------------------------------------------------------


def executed(api: Api, records: list, status: str = "Completed") -> int:
    token = api.initiate()["AccessToken"]
    api.stage(token, records)
    assert api.call("POST", f"{IMPORT}/{token}/Execute").status_code == 200
    api.wait_until(token, status)
    return token


def test_the_variants_are_off_by_default(api):
    config = api.control("config")
    assert (config["exceptions_page_cap"], config["has_more_missing"], config["not_honored"]) == (None, False, 0)
    assert (config["status_words"], config["camel_case"], config["completed_with_errors"]) == ({}, False, False)
    assert config["initiate_answer"] == "ok"


def test_exception_pages_can_be_capped_below_the_limit_asked_for(api):
    api.configure(exceptions_page_cap=2)
    token = api.initiate()["AccessToken"]
    api.stage(token, [{"CustomerType": "x"} for _ in range(5)])
    first = api.exceptions(token, limit=4, offset=1).json()
    assert (first["Count"], first["HasMore"], first["Limit"]) == (2, True, 4)
    last = api.exceptions(token, limit=4, offset=5).json()
    assert (last["Count"], last["HasMore"]) == (1, False)


def test_exception_pages_can_come_without_has_more(api):
    api.configure(has_more_missing=True)
    token = api.initiate()["AccessToken"]
    api.stage(token, [{"CustomerType": "x"}])
    page = api.exceptions(token).json()
    assert "HasMore" not in page and page["Count"] == 1


@pytest.mark.parametrize(
    ("in_processed", "listed", "processed", "sequence_numbers"),
    [(False, True, 3, [1, 2]), (True, True, 5, [1, 2]), (False, False, 3, [])],
    ids=["apart-listed", "among-processed", "unlisted"],
)
def test_records_can_end_not_honoured(api, in_processed, listed, processed, sequence_numbers):
    api.configure(not_honored=2, not_honored_in_processed=in_processed, not_honored_listed=listed)
    token = executed(api, [person(n) for n in range(1, 6)])
    done = api.status(token)
    assert {k: done[k] for k in ("ValidationSuccessful", "Processed", "Exceptions", "NotHonored", "Pending")} == {
        "ValidationSuccessful": 5, "Processed": processed, "Exceptions": 0, "NotHonored": 2, "Pending": 0
    }  # fmt: skip
    records = api.exceptions(token).json()["UserProfilePreferences"]
    assert [r["SequenceNumber"] for r in records] == sequence_numbers
    assert all(r["Exceptions"][0]["Code"] == "NotHonored" for r in records)


def test_status_words_can_be_replaced(api):
    api.configure(status_words={"Completed": "COMPLETED", "Initiated": "New"})
    token = api.initiate()["AccessToken"]
    assert api.status(token)["Status"] == "New"
    api.stage(token, [person(1)])
    api.call("POST", f"{IMPORT}/{token}/Execute")
    api.wait_until(token, "COMPLETED")
    assert api.control("imports")[0]["Status"] == "Completed"  # the control route keeps the documented word


def test_every_api_answer_can_come_in_camel_case(api):
    api.configure(camel_case=True)
    answer = api.call("POST", IMPORT, json={"Name": "x"}).json()
    assert {"accessToken", "status", "totalRecordsReceived", "notHonored"} <= set(answer) and "AccessToken" not in answer
    token = answer["accessToken"]
    api.stage(token, [{"CustomerType": "x"}])
    page = api.exceptions(token).json()
    assert {"count", "hasMore", "userProfilePreferences"} <= set(page)
    assert set(page["userProfilePreferences"][0]) == {"sequenceNumber", "exceptions"}
    refused = api.call("GET", f"{IMPORT}/1").json()
    assert refused == {"message": "Authorization has been denied for this request: the access token is not valid"}


def test_an_import_with_failures_can_end_completed_with_errors(api):
    api.configure(completed_with_errors=True)
    clean = executed(api, [person(1)])
    assert api.status(clean)["Status"] == "Completed"
    api.configure(exception_every=2)
    assert executed(api, [person(1), person(2)], status="CompletedWithErrors")


@pytest.mark.parametrize("variant", ["no_token", "not_json"])
def test_initiate_can_open_an_import_and_answer_without_a_usable_token(api, variant):
    api.configure(initiate_answer=variant)
    answer = api.call("POST", IMPORT, json={"Name": "x"})
    assert answer.status_code == 200
    (opened,) = api.control("imports")  # the import exists all the same: it counts against the quota
    if variant == "no_token":
        assert "AccessToken" not in answer.json() and answer.json()["Status"] == "Initiated"
    else:
        with pytest.raises(ValueError):
            answer.json()
        assert answer.text.endswith(f'"AccessToken": {opened["AccessToken"]}, "Status": "Initiated", ')


# --- control routes -----------------------------------------------------------------------------------------


def test_the_call_log_records_method_kind_status_and_stage_sizes(api, sandbox, http):
    token_request(sandbox, http)
    token = api.initiate()["AccessToken"]
    api.stage(token, [person(1), person(2), person(3)])
    api.call("GET", f"{IMPORT}/{token}/Exceptions")
    api.call("GET", "/nowhere")
    logged = [{k: v for k, v in c.items() if k != "at"} for c in api.control("calls")]
    assert logged == [
        {"method": "POST", "kind": "token", "http_status": 200},
        {"method": "POST", "kind": "initiate", "access_token": token, "http_status": 200},
        {"method": "POST", "kind": "stage", "records": 3, "access_token": token, "http_status": 200},
        {"method": "GET", "kind": "exceptions", "access_token": token, "http_status": 200},
        {"method": "GET", "http_status": 404},
    ]


def test_imports_are_listed_with_their_counters_and_reset_clears_them(api, http, sandbox):
    token = api.initiate()["AccessToken"]
    api.stage(token, [person(1), {"CustomerType": "x"}])
    (listed,) = api.control("imports")
    assert (listed["AccessToken"], listed["staged_records"], listed["stage_requests"]) == (token, 2, 1)
    assert (listed["ValidationSuccessful"], listed["ValidationFailed"], listed["Status"]) == (1, 1, "Staging")
    http.post(f"{sandbox.base_url}/_sandbox/reset")
    assert api.control("imports") == [] and api.control("calls") == []
    assert api.call("GET", f"{IMPORT}/{token}").status_code == 401  # its token is gone with it


def test_config_refuses_unknown_keys_and_bad_values(sandbox, http):
    for bad in ({"no_such_key": 1}, {"exception_every": -1}, {"token_seconds": 0}, {"alternate_id_types": "CRM"}):
        answer = http.post(f"{sandbox.base_url}/_sandbox/config", json=bad)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid config"


def test_runs_standalone_and_prints_its_url_and_secrets():
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.sandbox.mypreferences", "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
        env={"PYTHONPATH": f"{REPO}:{REPO / 'layers' / 'jobrelay'}", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        first = process.stdout.readline()
        url = re.fullmatch(r"MyPreferences sandbox on (http://127\.0\.0\.1:\d+)\n", first).group(1)
        secrets = [process.stdout.readline() for _ in range(2)]
        assert secrets[0].startswith("account secret (pnauthinfo3): {") and '"scheme": "oauth"' in secrets[1]
        with httpx.Client(trust_env=False) as http:
            assert http.get(f"{url}/_sandbox/config").json()["process_seconds"] == 1.0
    finally:
        process.terminate()
        process.wait(timeout=5)
