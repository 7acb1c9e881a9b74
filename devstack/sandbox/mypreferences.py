"""A MyPreferences simulator: the Integration API's bulk import as docs/VENDORS.md section 2 describes it,
over real sockets.

Routes, on the inferred paths (docs/VENDORS.md 2.1, Unknown 10) that jobrelay/vendors/mypreferences/api.py
assumes:

    POST /Profiles/Async/<clientId>/Import                                   Initiate
    POST /Profiles/Async/<clientId>/Import/<accessToken>                     Stage
    POST /Profiles/Async/<clientId>/Import/<accessToken>/Execute             Execute
    GET  /Profiles/Async/<clientId>/Import/<accessToken>                     Retrieve status
    GET  /Profiles/Async/<clientId>/Import/<accessToken>/Exceptions?limit=&offset=   Retrieve exceptions
    POST /oauth/token                                                        OAuth client credentials

Every API call needs an Authorization header in either scheme (docs/VENDORS.md 2.2): a PNAUTHINFO3-HMAC-
SHA256 header (user, signature and timestamp checked: not in the future, at most 15 minutes old) or
a bearer token from /oauth/token. Records are checked as they are staged (unknown properties, no
identifier, an AlternateIdType the account does not have, implausible emails) and those that fail
count in ValidationFailed; Execute moves the import to Queued, Processing, then Completed (or
Failed) over `process_seconds`, and chosen records become execution exceptions. Both kinds are
listed by Retrieve exceptions with their SequenceNumber.
Per staged record only its identifier, email domain and problem are kept, never the record.

The docs leave shapes open (docs/VENDORS.md 2); the config switches between readings a doc-consistent
server may take, each off by default (see MyPreferencesConfig): exception pages smaller than the
`limit` asked for, no `HasMore`, records that end NotHonored (listed or not, counted apart from
Processed or among it), other Status words, camelCase keys, a "CompletedWithErrors" ending, and an
Initiate answer without an AccessToken or cut short.

Extra control routes: GET /_sandbox/imports, POST /_sandbox/revoke_tokens (server-side revocation
of every OAuth token issued). Run it alone with `python -m devstack.sandbox.mypreferences --port 3200`.
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from pydantic import Field

from devstack.sandbox.http import LOOPBACK, AspNetRefusal, FaultConfig, Request, Response, SandboxServer, serve_until_interrupted

API_PREFIX = "/Profiles/Async/"
TOKEN_PATH = "/oauth/token"
STAGE_WRAPPER = "UserProfilePreferences"
PNAUTHINFO3_SCHEME = "PNAUTHINFO3-HMAC-SHA256"
DENIED = "Authorization has been denied for this request"
EXCEPTIONS_LIMIT_DEFAULT, EXCEPTIONS_LIMIT_MAX = 1000, 1000
PROFILE_FIELDS = frozenset(
    {
        "ProfileId", "IsActive", "DefaultLocale", "RegistrationConfirmed", "CustomerType", "PreservePreferences",
        "CustomerName", "Consents", "ProfilePreferences", "AlternateIds", "Addresses", "PhoneNumbers", "Emails",
        "Groups", "ProfileTags", "CustomFields",
    }
)  # fmt: skip
EMAIL = re.compile(r"[^@\s]+@([^@\s.]+(?:\.[^@\s.]+)+)")
INITIATE_FIELDS = {
    "Name": str, "DataStageDuration": int, "ImportAction": str, "MatchCriteria": str, "MatchValue": str,
    "RefreshAlternateIds": bool, "RefreshContacts": bool, "RefreshCustomFields": bool, "RefreshGroups": bool,
    "RefreshTags": bool, "AllowPriorConsents": bool,
}  # fmt: skip

Kind = Literal["token", "initiate", "stage", "execute", "status", "exceptions"]


class MyPreferencesConfig(FaultConfig):
    """What tests switch through POST /_sandbox/config. An import's token lifetime is fixed at
    Initiate, its duration, failure and exception rules at Execute; faults (`fault_methods` names
    the call kinds above) apply to the calls that come next."""

    process_seconds: float = Field(default=1.0, ge=0, description="from Execute to Completed/Failed")
    token_seconds: float = Field(default=6 * 3600, gt=0, description="how long an import's access token works")
    reported_expires_seconds: float | None = Field(
        default=None, gt=0, description="the Expires reported, if not token_seconds (the docs also say 12 h)"
    )
    max_request_bytes: int = Field(default=28_000_000, ge=1, description="a larger stage request answers 413")
    max_records_per_import: int = Field(default=10_000_000, ge=1)
    alternate_id_types: list[str] = Field(
        default=["CRM_ID", "LOYALTY_ID"], description="the AlternateIdTypes configured in the account"
    )
    exception_domain: str | None = Field(default="exception.test", description="its emails fail at execution")
    exception_every: int = Field(default=0, ge=0, description="every Nth staged record fails at execution (0: none)")
    fail_imports: bool | str = Field(default=False, description="imports end Failed (a string: the reason)")
    expired_auth: bool = Field(default=False, description="every call, the token endpoint too, answers 401")
    slow_seconds: float = Field(default=0.0, ge=0, description="every call waits this long before answering")
    oauth_token_seconds: int = Field(default=3600, ge=1, description="expires_in of the OAuth tokens issued")
    signature_max_age_seconds: float = Field(default=900.0, gt=0, description="PNAUTHINFO3 signature validity")
    # Doc-consistent variants (docs/VENDORS.md 2 leaves each open).
    exceptions_page_cap: int | None = Field(
        default=None,
        ge=1,
        description="at most N exception records per page, whatever `limit` asks (HasMore true while more remain)",
    )
    has_more_missing: bool = Field(default=False, description="exception pages never carry HasMore")
    not_honored: int = Field(
        default=0, ge=0, description="the first N records that pass validation (and are no exception) end NotHonored"
    )
    not_honored_in_processed: bool = Field(
        default=False, description="count NotHonored records among Processed (default: apart from it)"
    )
    not_honored_listed: bool = Field(default=True, description="list NotHonored records among the exceptions")
    status_words: dict[str, str] = Field(
        default_factory=dict, description='a documented Status word -> the word sent instead, e.g. {"Completed": "COMPLETED"}'
    )
    camel_case: bool = Field(default=False, description="every API answer's keys in camelCase (accessToken, hasMore, ...)")
    completed_with_errors: bool = Field(
        default=False,
        description="an import that ends with any record failed, exception or not honoured ends 'CompletedWithErrors'",
    )
    initiate_answer: Literal["ok", "no_token", "not_json"] = Field(
        default="ok", description="Initiate opens the import, then answers normally, without AccessToken, or cut short"
    )


@dataclass(frozen=True)
class Route:
    kind: Kind
    client_id: str | None = None
    access_token: str | None = None


def route_of(method: str, path: str) -> Route | None:
    if (method, path) == ("POST", TOKEN_PATH):
        return Route("token")
    if not path.startswith(API_PREFIX):
        return None
    match (method, path.removeprefix(API_PREFIX).split("/")):
        case ("POST", [client_id, "Import"]):
            return Route("initiate", client_id)
        case ("POST", [client_id, "Import", token]):
            return Route("stage", client_id, token)
        case ("GET", [client_id, "Import", token]):
            return Route("status", client_id, token)
        case ("POST", [client_id, "Import", token, "Execute"]):
            return Route("execute", client_id, token)
        case ("GET", [client_id, "Import", token, "Exceptions"]):
            return Route("exceptions", client_id, token)
    return None


# --- staged records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str
    bad_email: str | None = None  # set when the problem sits on an email element (reported nested there)


@dataclass(frozen=True, slots=True)
class StagedRecord:
    """What the sandbox keeps of one staged record."""

    identity: tuple[str, ...] | None  # ("AlternateId", type, value) | ("Email", address) | ("ProfileId", id)
    email_domain: str | None
    problem: Problem | None


def stage_record(record: Any, alternate_id_types: list[str]) -> StagedRecord:
    """Check one record as MyPreferences does at staging, keeping only what later answers need."""
    if not isinstance(record, dict):
        return StagedRecord(None, None, Problem("InvalidRecord", "The record is not an object"))
    identity = _identity(record)
    id_types = [e.get("AlternateIdType") for e in record.get("AlternateIds") or () if isinstance(e, dict)]
    unconfigured = next((t for t in id_types if t not in alternate_id_types), None)
    domain, bad_email = None, None
    for element in record.get("Emails") or ():
        address = element.get("EmailAddress") if isinstance(element, dict) else None
        matched = EMAIL.fullmatch(address) if isinstance(address, str) and len(address) <= 256 else None
        if matched is None:
            bad_email = str(address)
            break
        domain = domain or matched.group(1).lower()
    unknown = sorted(set(record) - PROFILE_FIELDS)
    if unknown:
        problem = Problem("UnknownProperty", f"Unknown property '{unknown[0]}'")
    elif identity is None:
        problem = Problem("MissingIdentifier", "A ProfileId, AlternateId or Email is required to identify the profile")
    elif unconfigured is not None:
        problem = Problem("InvalidAlternateIdType", f"AlternateIdType '{unconfigured}' is not configured")
    elif bad_email is not None:
        problem = Problem("InvalidEmail", "Email does not match RegEx", bad_email)
    else:
        problem = None
    return StagedRecord(identity, domain, problem)


def _identity(record: dict[str, Any]) -> tuple[str, ...] | None:
    for element in record.get("AlternateIds") or ():
        if isinstance(element, dict) and element.get("AlternateId") not in (None, ""):
            return ("AlternateId", str(element.get("AlternateIdType", "")), str(element["AlternateId"]))
    for element in record.get("Emails") or ():
        if isinstance(element, dict) and isinstance(element.get("EmailAddress"), str) and element["EmailAddress"]:
            return ("Email", element["EmailAddress"])
    profile_id = record.get("ProfileId")
    if isinstance(profile_id, int) and not isinstance(profile_id, bool):
        return ("ProfileId", str(profile_id))
    return None


def _echo(record: StagedRecord) -> dict[str, Any]:
    """The profile fields an exception record carries: the record's identifier."""
    match record.identity:
        case ("AlternateId", id_type, value):
            return {"AlternateIds": [{"AlternateIdType": id_type, "AlternateId": value}]}
        case ("Email", address):
            return {"Emails": [{"EmailAddress": address}]}
        case ("ProfileId", profile_id):
            return {"ProfileId": int(profile_id)}
    return {}


# --- imports --------------------------------------------------------------------------------------


@dataclass
class SandboxImport:
    access_token: int
    request: dict[str, Any]
    created: float
    token_expires: float
    reported_expires: float
    staged: list[StagedRecord] = field(default_factory=list)
    validation_failed: int = 0
    stage_requests: int = 0
    executed_at: float | None = None
    process_seconds: float = 0.0
    failure: str | None = None
    execution_reasons: dict[int, str] = field(default_factory=dict)  # SequenceNumber -> why it failed
    # Fixed at Execute from the config: records that end NotHonored, and how they are reported.
    not_honored: frozenset[int] = frozenset()
    not_honored_in_processed: bool = False
    not_honored_listed: bool = True
    completed_with_errors: bool = False

    def status_at(self, now: float) -> str:
        """The documented Status word (the config's `status_words` may send another: `answer`)."""
        if self.executed_at is None:
            return "Staging" if self.stage_requests else "Initiated"
        elapsed = now - self.executed_at
        if elapsed >= self.process_seconds:
            return "Failed" if self.failure else "Completed"
        return "Queued" if elapsed < self.process_seconds / 3 else "Processing"

    def answer(self, now: float, words: dict[str, str] | None = None) -> dict[str, Any]:
        """The BulkImportStatus model: the Initiate request's echo and the counters."""
        status = self.status_at(now)
        valid = len(self.staged) - self.validation_failed
        to_write = valid - len(self.execution_reasons) - len(self.not_honored)
        processed, exceptions, pending, not_honored = 0, 0, valid, 0
        if status == "Processing" and self.executed_at is not None:
            share = (now - self.executed_at - self.process_seconds / 3) / (self.process_seconds * 2 / 3)
            processed = int(to_write * min(max(share, 0.0), 1.0))
            pending = valid - processed
        elif status == "Completed":
            exceptions, pending, not_honored = len(self.execution_reasons), 0, len(self.not_honored)
            processed = to_write + (not_honored if self.not_honored_in_processed else 0)
            if self.completed_with_errors and (self.validation_failed or exceptions or not_honored):
                status = "CompletedWithErrors"
        elif status == "Failed":
            pending = 0
        answer = {
            **self.request,
            "AccessToken": self.access_token,
            "Status": (words or {}).get(status, status),
            "Expires": _vendor_time(self.reported_expires),
            "TotalRecordsReceived": len(self.staged),
            "ValidationSuccessful": valid,
            "ValidationFailed": self.validation_failed,
            "Processed": processed,
            "Pending": pending,
            "Exceptions": exceptions,
            "NotHonored": not_honored,
        }
        if status == "Failed":
            answer["Message"] = self.failure
        return answer

    def failed_records(self, now: float) -> list[int]:
        """SequenceNumbers of the records listed as exceptions: those that failed at staging, and
        once the import ended those that failed at execution (and the not-honoured, if listed)."""
        executed = self.status_at(now) == "Completed"
        listed_after_run = set(self.execution_reasons) | (self.not_honored if self.not_honored_listed else set())
        return [
            number
            for number, record in enumerate(self.staged, start=1)
            if record.problem is not None or (executed and number in listed_after_run)
        ]

    def exception_record(self, number: int) -> dict[str, Any]:
        record = self.staged[number - 1]
        echo: dict[str, Any] = {"SequenceNumber": number, **_echo(record), "Exceptions": []}
        problem = record.problem
        if problem is None and number in self.not_honored:
            echo["Exceptions"].append({"Code": "NotHonored", "Message": "The profile was not honored (simulated)"})
        elif problem is None:
            echo["Exceptions"].append({"Code": "ProcessingException", "Message": self.execution_reasons[number]})
        elif problem.bad_email is not None:
            definition = {"Code": problem.code, "Message": problem.message}
            echo["Emails"] = [{"EmailAddress": problem.bad_email, "Exceptions": [definition]}]
        else:
            echo["Exceptions"].append({"Code": problem.code, "Message": problem.message})
        return echo

    def summary(self, now: float) -> dict[str, Any]:
        return {
            **self.answer(now),
            "staged_records": len(self.staged),
            "stage_requests": self.stage_requests,
            "token_expires": _vendor_time(self.token_expires),
        }


def _vendor_time(timestamp: float) -> str:
    """UTC without an offset, as the docs' sample writes Expires ("2025-08-13T22:00:00")."""
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def _not_honored(imported: SandboxImport, how_many: int) -> frozenset[int]:
    """The first `how_many` records that passed validation and are no execution exception."""
    candidates = (
        number
        for number, record in enumerate(imported.staged, start=1)
        if record.problem is None and number not in imported.execution_reasons
    )
    return frozenset(itertools.islice(candidates, how_many))


def _camel(value: Any) -> Any:
    """Every key of a JSON value with its first letter lower-cased (AccessToken -> accessToken)."""
    if isinstance(value, dict):
        return {(key[:1].lower() + key[1:] if isinstance(key, str) else key): _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _execution_reasons(imported: SandboxImport, domain: str | None, every: int) -> dict[int, str]:
    reasons = {}
    for number, record in enumerate(imported.staged, start=1):
        if record.problem is not None:
            continue
        if domain and record.email_domain == domain.lower():
            reasons[number] = f"The profile could not be imported (simulated for the email domain {domain})"
        elif every and number % every == 0:
            reasons[number] = f"The profile could not be imported (simulated for every {every}th record)"
    return reasons


# --- the sandbox ----------------------------------------------------------------------------------


class MyPreferencesSandbox(SandboxServer[MyPreferencesConfig]):
    config_model = MyPreferencesConfig

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        process_seconds: float = 1.0,
        client_id: str = "SANDBOX_CO",
        user_id: str = "sandbox.user",
        **config: Any,
    ):
        super().__init__(host, port, process_seconds=process_seconds, **config)
        self.client_id = client_id
        self.user_id = user_id
        self._hmac_secret = secrets.token_urlsafe(32)
        self._oauth_client_id = secrets.token_hex(24)  # 48 characters, as PossibleNOW issues them
        self._oauth_client_secret = secrets.token_hex(32)  # 64 characters
        self._bearer_tokens: dict[str, float] = {}  # token -> when it expires
        self._imports: dict[int, SandboxImport] = {}
        self._access_tokens = itertools.count(918_273_001)  # never reset: a stale token must not match

    def account_secret(self, scheme: Literal["pnauthinfo3", "oauth"] = "pnauthinfo3") -> dict[str, Any]:
        """The secret a MyPreferencesAccount accepts to reach this sandbox with `scheme`."""
        if scheme == "pnauthinfo3":
            auth: dict[str, Any] = {"scheme": "pnauthinfo3", "secret": self._hmac_secret}
        elif scheme == "oauth":
            auth = {
                "scheme": "oauth",
                "token_url": self.base_url + TOKEN_PATH,
                "oauth_client_id": self._oauth_client_id,
                "oauth_client_secret": self._oauth_client_secret,
            }
        else:
            raise ValueError(f"unknown auth scheme {scheme!r}: pnauthinfo3 or oauth")
        return {
            "base_url": self.base_url,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "auth": auth,
            "allow_http": True,
        }

    def fixtures(self) -> list[str]:
        """What a user can try against this sandbox, read from its config (the local stack's banner)."""
        config = self.config
        lines = [
            f"client id {self.client_id}, user {self.user_id}; AlternateIdTypes {', '.join(config.alternate_id_types)}"
            " (any other is refused at staging)",
        ]
        if config.exception_domain:
            lines.append(f"a record with an email at {config.exception_domain} fails at execution (an exception)")
        if config.exception_every:
            lines.append(f"every {config.exception_every}th record staged fails at execution (an exception)")
        return lines

    def on_reset(self) -> None:
        self._imports.clear()
        self._bearer_tokens.clear()

    # --- routes ------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        route = route_of(request.method, request.path)
        kind = route.kind if route else None
        note = {"method": request.method, "kind": kind}
        fault = self.call_fault(kind)
        if fault is not None and fault.response is not None:
            return fault.response.noted(**note, fault=fault.name)
        if self.config.slow_seconds and self.faults_apply_to(kind):
            self.pause(self.config.slow_seconds)
        try:
            if route is None:
                raise AspNetRefusal(404, f"No HTTP resource was found that matches the request URI '{request.path}'")
            answer = self._token(request) if route.kind == "token" else self._api(request, route)
        except AspNetRefusal as refused:
            answer = self._json({"Message": refused.message}, refused.status) if route else refused.answer()
        return answer.noted(**note, fault=fault.name if fault else None)

    def _json(self, payload: Any, status: int = 200) -> Response:
        """An API answer, its keys in camelCase when the config says so (not the OAuth endpoint's,
        whose snake_case names RFC 6749 fixes)."""
        return Response.json(_camel(payload) if self.config.camel_case else payload, status)

    def _status_answer(self, imported: SandboxImport, now: float) -> dict[str, Any]:
        return imported.answer(now, self.config.status_words)

    def control(self, request: Request) -> Response | None:
        if (request.method, request.path) == ("GET", "/_sandbox/imports"):
            now = time.time()
            with self.lock:
                return Response.json([imported.summary(now) for imported in self._imports.values()])
        if (request.method, request.path) == ("POST", "/_sandbox/revoke_tokens"):
            with self.lock:
                revoked = len(self._bearer_tokens)
                self._bearer_tokens.clear()
            return Response.json({"revoked": revoked})
        return None

    def _api(self, request: Request, route: Route) -> Response:
        if route.client_id != self.client_id:  # the client is looked up first: its user's secret checks the rest
            raise AspNetRefusal(404, f"Client '{route.client_id}' was not found")
        self._authorise(request)
        if route.kind == "initiate":
            return self._initiate(request)
        imported = self._live_import(route.access_token)
        note = {"access_token": imported.access_token}
        if route.kind == "stage":
            return self._stage(request, imported).noted(**note)
        if route.kind == "execute":
            return self._execute(imported).noted(**note)
        if route.kind == "exceptions":
            return self._exceptions(request, imported).noted(**note)
        return self._json(self._status_answer(imported, time.time())).noted(**note)

    # --- auth --------------------------------------------------------------------------------------

    def _authorise(self, request: Request) -> None:
        if self.config.expired_auth:
            raise AspNetRefusal(401, f"{DENIED}: the credentials have expired")
        header = request.headers.get("Authorization", "").strip()
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            with self.lock:
                expires = self._bearer_tokens.get(credentials.strip())
            if expires is None or time.time() >= expires:
                raise AspNetRefusal(401, f"{DENIED}: the bearer token is unknown or expired")
        elif scheme.upper() == PNAUTHINFO3_SCHEME:
            self._check_signature(credentials)
        else:
            raise AspNetRefusal(401, f"{DENIED}: no supported Authorization scheme")

    def _check_signature(self, credentials: str) -> None:
        parts = re.fullmatch(r"\s*Credential=([^/\s]+)/(\S+)\s+Signature=(\S+)\s*", credentials)
        if parts is None:
            raise AspNetRefusal(401, f"{DENIED}: malformed PNAUTHINFO3 credentials")
        user_id, timestamp, signature = parts.groups()
        try:
            issued = datetime.fromisoformat(timestamp)
        except ValueError:
            raise AspNetRefusal(401, f"{DENIED}: the timestamp is not ISO-8601") from None
        if issued.tzinfo is None:
            raise AspNetRefusal(401, f"{DENIED}: the timestamp has no time zone")
        age = time.time() - issued.timestamp()
        if age < 0:
            raise AspNetRefusal(401, f"{DENIED}: the timestamp is in the future")
        if age > self.config.signature_max_age_seconds:
            raise AspNetRefusal(401, f"{DENIED}: the signature has expired")
        message = f"{self.client_id}:{user_id}:{timestamp}".encode()
        expected = base64.b64encode(hmac.new(self._hmac_secret.encode(), message, hashlib.sha256).digest()).decode()
        if user_id != self.user_id or not hmac.compare_digest(signature.encode(), expected.encode()):
            raise AspNetRefusal(401, f"{DENIED}: the signature does not match")

    def _token(self, request: Request) -> Response:
        form = {name: values[0] for name, values in parse_qs(request.body.decode("utf-8", "replace")).items()}
        client_id, client_secret = _basic_credentials(request.headers.get("Authorization", ""))
        client_id = client_id or form.get("client_id", "")
        client_secret = client_secret or form.get("client_secret", "")
        known = client_id == self._oauth_client_id and hmac.compare_digest(
            client_secret.encode(), self._oauth_client_secret.encode()
        )
        if self.config.expired_auth or not known:
            return Response.json({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "client_credentials":
            return Response.json({"error": "unsupported_grant_type"}, 400)
        if form.get("scope") != f"{self.client_id}/{self.user_id}":
            return Response.json({"error": "invalid_scope", "error_description": "scope is <clientId>/<userId>"}, 400)
        token, lifetime = secrets.token_urlsafe(32), self.config.oauth_token_seconds
        with self.lock:
            self._bearer_tokens[token] = time.time() + lifetime
        return Response.json({"access_token": token, "token_type": "Bearer", "expires_in": lifetime})

    # --- the import calls --------------------------------------------------------------------------

    def _initiate(self, request: Request) -> Response:
        body = _json_object(request)
        unknown = sorted(set(body) - set(INITIATE_FIELDS))
        if unknown:
            raise AspNetRefusal(400, f"Unknown property '{unknown[0]}'")
        for name, kind in INITIATE_FIELDS.items():
            if name in body and (type(body[name]) is not kind):
                raise AspNetRefusal(400, f"The value of '{name}' is not valid")
        if not 1 <= len(body.get("Name", "")) <= 100:
            raise AspNetRefusal(400, "Name is required (1-100 characters)")
        if not 0 <= body.get("DataStageDuration", 3) <= 10:
            raise AspNetRefusal(400, "The staging duration cannot exceed 10 days")
        if body.get("ImportAction", "Add") not in ("Add", "Delete"):
            raise AspNetRefusal(400, "ImportAction is Add or Delete")
        criteria = body.get("MatchCriteria")
        if criteria not in (None, "AlternateIdType") or (criteria is None) != ("MatchValue" not in body):
            raise AspNetRefusal(400, "MatchCriteria must be AlternateIdType, and MatchValue goes with it")
        if criteria is not None and body["MatchValue"] not in self.config.alternate_id_types:
            raise AspNetRefusal(400, f"AlternateIdType '{body['MatchValue']}' is not configured for the client")
        now, config = time.time(), self.config
        with self.lock:
            imported = SandboxImport(
                access_token=next(self._access_tokens),
                request={"DataStageDuration": 3, "ImportAction": "Add", **body},
                created=now,
                token_expires=now + config.token_seconds,
                reported_expires=now + (config.reported_expires_seconds or config.token_seconds),
            )
            self._imports[imported.access_token] = imported
        answer = self._status_answer(imported, now)
        if config.initiate_answer == "no_token":
            answer.pop("AccessToken")
        elif config.initiate_answer == "not_json":  # cut short after the token, as a dropped proxy might
            text = json.dumps(_camel(answer) if config.camel_case else answer)
            cut = text[: text.index("Expires") - 1].encode()
            return Response(200, cut, "application/json").noted(access_token=imported.access_token)
        return self._json(answer).noted(access_token=imported.access_token)

    def _live_import(self, access_token: str | None) -> SandboxImport:
        with self.lock:
            imported = self._imports.get(int(access_token)) if access_token and access_token.isdigit() else None
        if imported is None:
            raise AspNetRefusal(401, f"{DENIED}: the access token is not valid")
        if time.time() >= imported.token_expires:
            raise AspNetRefusal(401, f"{DENIED}: the access token has expired")
        return imported

    def _stage(self, request: Request, imported: SandboxImport) -> Response:
        limit = self.config.max_request_bytes
        if len(request.body) > limit:
            raise AspNetRefusal(413, f"The request exceeds the maximum allowed size of {limit} bytes")
        body = _json_object(request)
        records = body.get(STAGE_WRAPPER)
        if set(body) != {STAGE_WRAPPER} or not isinstance(records, list):
            raise AspNetRefusal(400, f"The request is invalid: {STAGE_WRAPPER} (a list) is its only property")
        staged = [stage_record(record, self.config.alternate_id_types) for record in records]
        with self.lock:
            if imported.executed_at is not None:
                raise AspNetRefusal(400, "The import has already been executed; records can no longer be staged")
            if len(imported.staged) + len(staged) > self.config.max_records_per_import:
                raise AspNetRefusal(400, f"An import holds at most {self.config.max_records_per_import} records")
            imported.staged += staged
            imported.validation_failed += sum(record.problem is not None for record in staged)
            imported.stage_requests += 1
            answer = self._status_answer(imported, time.time())
        return self._json(answer).noted(records=len(records))

    def _execute(self, imported: SandboxImport) -> Response:
        config = self.config
        with self.lock:
            if imported.executed_at is not None:
                raise AspNetRefusal(400, "The import has already been executed")
            imported.executed_at = time.time()
            imported.process_seconds = config.process_seconds
            imported.failure = _failure_message(config.fail_imports)
            imported.execution_reasons = _execution_reasons(imported, config.exception_domain, config.exception_every)
            imported.not_honored = _not_honored(imported, config.not_honored)
            imported.not_honored_in_processed = config.not_honored_in_processed
            imported.not_honored_listed = config.not_honored_listed
            imported.completed_with_errors = config.completed_with_errors
            answer = self._status_answer(imported, imported.executed_at)
        return self._json(answer)

    def _exceptions(self, request: Request, imported: SandboxImport) -> Response:
        limit = _query_int(request, "limit", EXCEPTIONS_LIMIT_DEFAULT)
        offset = _query_int(request, "offset", 1)
        if not 1 <= limit <= EXCEPTIONS_LIMIT_MAX:
            raise AspNetRefusal(400, f"limit must be between 1 and {EXCEPTIONS_LIMIT_MAX}")
        served = min(limit, self.config.exceptions_page_cap or limit)  # a vendor may cap its pages below `limit`
        with self.lock:
            failed = imported.failed_records(time.time())
            page = [imported.exception_record(number) for number in failed[offset - 1 : offset - 1 + served]]
        answer: dict[str, Any] = {
            "Count": len(page),
            "HasMore": offset - 1 + len(page) < len(failed),
            "Limit": limit,
            "Offset": offset,
            "TotalResults": len(failed),
            STAGE_WRAPPER: page,
        }
        if self.config.has_more_missing:
            del answer["HasMore"]
        return self._json(answer)


def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AspNetRefusal(400, "The request is invalid: the body is not a JSON object")
    return body


def _query_int(request: Request, name: str, default: int) -> int:
    values = request.query.get(name)
    if not values:
        return default
    if not values[0].isdigit() or int(values[0]) < 1:
        raise AspNetRefusal(400, f"{name} must be a positive number")
    return int(values[0])


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


def _failure_message(fail_imports: bool | str) -> str | None:
    if isinstance(fail_imports, str):
        return fail_imports
    return "The import failed to execute (simulated)" if fail_imports else None


# --- standalone -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the MyPreferences sandbox on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=3200, help="0 picks a free port")
    parser.add_argument("--process-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    sandbox = MyPreferencesSandbox(port=args.port, process_seconds=args.process_seconds).start()
    serve_until_interrupted(
        sandbox,
        f"MyPreferences sandbox on {sandbox.base_url}",
        *(f"account secret ({scheme}): {json.dumps(sandbox.account_secret(scheme))}" for scheme in ("pnauthinfo3", "oauth")),
    )


if __name__ == "__main__":
    main()
