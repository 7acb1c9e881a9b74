"""MyPreferences' bulk-import payloads and paths, and every assumption we make where its docs are silent.

The Integration API documents its models well and its routes, auth details and error bodies poorly
(VENDORS.md 2.1-2.4). Whatever had to be guessed sits in the ASSUMPTIONS block below, each entry
naming the VENDORS.md section and Unknown it answers, so a real response can correct a guess in one
place. Answers are read leniently (unknown fields ignored, missing counters read as 0) and raise
VendorProtocolError only when nothing usable is left.

This module imports no HTTP library: the params model and the record checks use it too.
"""

import json
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from jobrelay.domain.errors import VendorProtocolError
from jobrelay.ports import VendorState
from jobrelay.vendors.answers import Counter, error_message

log = logging.getLogger(__name__)


# =================================================================================================
# ASSUMPTIONS about what MyPreferences sends and accepts. Check each against a real response.
# =================================================================================================

# VENDORS.md 2.1, Unknown 10: only the Execute route is confirmed (legacy help site, relative to the
# /Profiles/ application). The others follow its pattern; Stage and Status share the token's path
# and differ by method (POST to stage, GET for the status).
IMPORT_PATH = "/Profiles/Async/{client_id}/Import"  # POST: Initiate
IMPORT_TOKEN_PATH = IMPORT_PATH + "/{access_token}"  # POST: Stage; GET: Retrieve status
EXECUTE_PATH = IMPORT_TOKEN_PATH + "/Execute"  # POST (confirmed)
EXCEPTIONS_PATH = IMPORT_TOKEN_PATH + "/Exceptions"  # GET ?limit=&offset=

# VENDORS.md 2.1: the legacy help site lists application/json among the accepted formats.
REQUEST_CONTENT_TYPE = "application/json"

# VENDORS.md 2.3.2, Unknown 12: the Stage body wraps the records in a property whose name begins
# "UserProfil..."; we send the name the export API uses.
STAGE_WRAPPER = "UserProfilePreferences"

# VENDORS.md 2.3.5, Unknown 13: the exceptions page's record list is read from the first of these
# keys present (the stage wrapper's name first).
EXCEPTION_RECORD_KEYS = (STAGE_WRAPPER, "BulkUserProfilePreferenceExceptions", "Records", "Items")

# VENDORS.md 2.3.2: "25 MB default, 28 MB maximum, per POST", about 10 million records per import,
# no per-request record count. "MB" is read as 10**6 bytes, the smaller reading, so that a batch
# fits whichever unit MyPreferences means.
MB = 1_000_000
STAGE_BYTES_DEFAULT = 25 * MB
STAGE_BYTES_MAX = 28 * MB
STAGE_BYTES_MIN = 1 * MB  # ours: smaller requests would only multiply the calls
MAX_RECORDS_PER_IMPORT = 10_000_000

# VENDORS.md 2.3.1, Unknown 11: the Initiate narrative gives the access token six hours, the
# `Expires` description twelve. We plan for the earlier: the token is taken to die at the earlier
# of `Expires` and six hours after we sent Initiate. `Expires` without an offset (the docs' sample
# "2025-08-13T22:00:00") is read as UTC; one we cannot read, or one not after the Initiate (a time
# zone misread), is ignored and logged, leaving the six hours.
ACCESS_TOKEN_LIFETIME = timedelta(hours=6)

# VENDORS.md 2.3.4, Unknown 16: the documented Status words, compared without regard to case. The
# Execute page says "Complete" while the enum says "Completed", so any word starting "complet" is
# done. Any other word is logged with its raw value and kept RUNNING (DESIGN.md, Job model).
STATUS_TABLE: dict[str, VendorState] = {
    "initiated": VendorState.RUNNING,
    "staging": VendorState.RUNNING,
    "queued": VendorState.RUNNING,
    "processing": VendorState.RUNNING,
    "failed": VendorState.FAILED,
}
DONE_PREFIX = "complet"
STAGING_STATUSES = frozenset({"initiated", "staging"})  # Execute has not been accepted yet

# VENDORS.md 2.3.3: whether Execute may be repeated is not documented. An Execute retried after a
# timeout may already have reached MyPreferences, so the adapter reads the status first and skips
# Execute once the import has left STAGING_STATUSES.

# VENDORS.md 2.3.4: BulkImportStatus documents no field saying why an import Failed. A reason is
# read from the first of these keys present; without one, the documented meaning is reported.
FAILURE_REASON_KEYS = ("Message", "StatusMessage", "ErrorMessage", "Error")

# VENDORS.md 2.3.5, Unknown 13: the fields of ExceptionsDefinition are unreadable; we read `Code`
# and `Message` (ExceptionDefinition below). A record's own list and the lists inside its nested
# elements (each email, ...) are all named `Exceptions`.
EXCEPTIONS_KEY = "Exceptions"

# VENDORS.md 2.3.5: `limit` defaults to 1000 and `offset` is 1-based; page n (from 0) starts at
# offset 1 + n*limit, and `HasMore` says whether another page follows.
EXCEPTIONS_PAGE_SIZE = 1000
FIRST_OFFSET = 1

# VENDORS.md 2.3.2, Unknown 13: the sub-field names of `CustomerName` and of `AlternateIds` entries
# are assumed (CustomerNameElement, AlternateIdElement below). Sub-fields we do not know are passed
# through for MyPreferences to judge; AlternateIdType and AlternateId are required, as a record's
# key is read from them.

# VENDORS.md 2.5: "run one import at a time; parallel imports are discouraged". An account's jobs
# are limited to this many at once unless its secret says otherwise (max_concurrent_jobs).
CONCURRENT_IMPORTS_DEFAULT = 1

# VENDORS.md 2.4: error bodies are not documented. We read the ASP.NET Web API default
# {"Message": ..., "ModelState": {field: [messages]}} or an OAuth (RFC 6749) {"error",
# "error_description"}, else the body's text.
ERROR_MESSAGE_KEYS = ("Message", "message", "error_description", "ExceptionMessage", "error")
ERROR_DETAILS_KEY = "ModelState"
# No answer to an oversized request is documented: it is read from a 413, or from a 400 whose
# message speaks of size.
SIZE_ERROR_WORDS = ("size", "too large", "length", "exceed")

# VENDORS.md 2.4, Unknown 15: no 429 is documented, although a daily import quota exists (2.5).
# A 429 is treated as transient like 5xx; if the quota answers 400, the job ends with its message.

# VENDORS.md 2.2 A, Unknown 14: the OAuth token endpoint is the account secret's `token_url`; the
# token is sent as "Authorization: Bearer <token>"; a token answer without `expires_in` is taken to
# live an hour. A token is renewed a minute before it expires (so it cannot die in flight).
OAUTH_DEFAULT_TOKEN_SECONDS = 3600
OAUTH_RENEWAL_MARGIN = timedelta(seconds=60)

# VENDORS.md 2.2 B, Unknown 14: the PNAUTHINFO3 string-to-sign is not in readable vendor text. A
# third-party client (a TIBCO Flogo activity) signs "<clientId>:<userId>:<timestamp>" with
# HMAC-SHA256 keyed by the secret (its UTF-8 bytes, as given), base64-encoded, with the timestamp as
# UTC with milliseconds and "Z" ("2020-10-06T18:09:12.667Z"). The timestamp must not be in the
# future on the vendor's clock and is valid for 15 minutes, so we sign each request fresh and date
# it a few seconds back to absorb clock skew.
PNAUTHINFO3_SCHEME = "PNAUTHINFO3-HMAC-SHA256"
SIGNATURE_BACKDATE = timedelta(seconds=5)

# =================================================================================================


# --- status --------------------------------------------------------------------------------------


def vendor_state(raw_status: str | None) -> VendorState:
    """Our reading of an import's Status word (see STATUS_TABLE)."""
    word = (raw_status or "").strip().lower()
    if word.startswith(DONE_PREFIX):
        return VendorState.DONE
    state = STATUS_TABLE.get(word)
    if state is None:
        log.warning("MyPreferences import status %r is not in our table; treating the import as running", raw_status)
        return VendorState.RUNNING
    return state


def is_staging(raw_status: str | None) -> bool:
    return (raw_status or "").strip().lower() in STAGING_STATUSES


def access_token_expiry(expires: str | None, initiated_at: datetime) -> datetime:
    """When we take the import's access token to die: see ACCESS_TOKEN_LIFETIME."""
    planned = initiated_at + ACCESS_TOKEN_LIFETIME
    stated = _vendor_time(expires)
    if stated is not None and stated <= initiated_at:
        log.warning("MyPreferences gave the access token an Expires (%r) before its Initiate; ignored", expires)
        return planned
    return planned if stated is None else min(stated, planned)


def _vendor_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        log.warning("MyPreferences' Expires %r is not an ISO-8601 time; ignored", text)
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- Initiate and BulkImportStatus (VENDORS.md 2.3.1, 2.3.4) --------------------------------------


class InitiateRequest(BaseModel):
    """The Initiate body, in MyPreferences' own field names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    Name: Annotated[str, Field(min_length=1, max_length=100)]
    DataStageDuration: Annotated[int, Field(ge=0, le=10)] = 3
    ImportAction: str = "Add"
    MatchCriteria: str | None = None
    MatchValue: str | None = None
    RefreshAlternateIds: bool = False
    RefreshContacts: bool = False
    RefreshCustomFields: bool = False
    RefreshGroups: bool = False
    RefreshTags: bool = False
    AllowPriorConsents: bool = False

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)




class BulkImportStatus(BaseModel):
    """The answer to Initiate, Stage, Execute and Retrieve status. Extra fields are kept: a failure
    reason may hide in one (FAILURE_REASON_KEYS)."""

    model_config = ConfigDict(extra="allow")

    AccessToken: int | None = None
    Status: str | None = None
    Expires: str | None = None
    Name: str | None = None
    TotalRecordsReceived: Counter = 0
    ValidationSuccessful: Counter = 0
    ValidationFailed: Counter = 0
    Processed: Counter = 0
    Pending: Counter = 0
    Exceptions: Counter = 0
    NotHonored: Counter = 0

    @classmethod
    def from_body(cls, body: Any, call: str) -> "BulkImportStatus":
        try:
            return cls.model_validate(body)
        except ValidationError:
            raise VendorProtocolError(f"MyPreferences' answer to {call} is not a readable import status") from None

    @property
    def state(self) -> VendorState:
        return vendor_state(self.Status)

    def counts(self) -> dict[str, int]:
        """The counters under the names our users see (job progress and result)."""
        return {
            "received": self.TotalRecordsReceived,
            "validation_ok": self.ValidationSuccessful,
            "validation_failed": self.ValidationFailed,
            "processed": self.Processed,
            "pending": self.Pending,
            "exceptions": self.Exceptions,
            "not_honored": self.NotHonored,
        }

    def percent_done(self) -> int | None:
        """How much of what passed validation has been written; None before anything can be."""
        if self.state is VendorState.DONE:
            return 100
        if self.ValidationSuccessful <= 0:
            return None
        return max(0, min(100, self.Processed * 100 // self.ValidationSuccessful))

    def failure_reason(self) -> str:
        extra = self.model_extra or {}
        for key in FAILURE_REASON_KEYS:
            value = extra.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return f"MyPreferences reports the import as {self.Status!r}: none of the staged records were added"


# --- the records we stage (CreateBulkUserProfilePreference, VENDORS.md 2.3.2) ----------------------

PLAUSIBLE_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


Text = Annotated[str, Field(min_length=1)]
Elements = list[dict[str, Any]]  # nested collections whose fields we pass through unchecked


class _Documented(BaseModel):
    """An element whose fields are documented: unknown ones are refused before anything is sent."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True)


class _Assumed(BaseModel):
    """An element whose field names are assumed: names we do not know go through to MyPreferences."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True, coerce_numbers_to_str=True)


class CustomerNameElement(_Assumed):
    FirstName: str | None = None
    LastName: str | None = None


class AlternateIdElement(_Assumed):
    AlternateIdType: Text
    AlternateId: Text


class EmailElement(_Documented):
    EmailAddressType: Annotated[str, Field(max_length=100)] | None = None
    EmailAddress: Annotated[str, Field(min_length=1, max_length=256)]
    IsDefault: bool | None = None
    EmailPreferences: Elements | None = None

    @field_validator("EmailAddress")
    @classmethod
    def _plausible(cls, address: str) -> str:
        if not PLAUSIBLE_EMAIL.fullmatch(address):
            raise ValueError("is not a plausible email address (name@domain.tld)")
        return address


class UserProfilePreference(_Documented):
    """One profile record as it is staged. Validated before sending, so that a malformed record
    fails here with a readable reason instead of costing a stage request and an exception."""

    ProfileId: Annotated[int, BeforeValidator(_not_a_bool)] | None = None
    IsActive: bool | None = None
    DefaultLocale: Annotated[str, Field(max_length=15)] | None = None
    RegistrationConfirmed: bool | None = None
    CustomerType: Annotated[str, Field(max_length=100)] | None = None
    PreservePreferences: bool | None = None
    CustomerName: CustomerNameElement | None = None
    Consents: Elements | None = None
    ProfilePreferences: Elements | None = None
    AlternateIds: list[AlternateIdElement] | None = None
    Addresses: Elements | None = None
    PhoneNumbers: Elements | None = None
    Emails: list[EmailElement] | None = None
    Groups: Elements | None = None
    ProfileTags: Elements | None = None
    CustomFields: Elements | None = None

    @model_validator(mode="after")
    def _identifies_a_profile(self) -> "UserProfilePreference":
        if self.ProfileId is None and not self.AlternateIds and not self.Emails:
            raise ValueError("the record does not identify a profile: give a ProfileId, AlternateIds or Emails")
        return self

    def wire(self) -> dict[str, Any]:
        """The record as staged: only the fields it was given, none of them null. (model_dump with
        these arguments, without its wrapper: this runs for every record of an import.)"""
        return self.__pydantic_serializer__.to_python(self, mode="json", exclude_unset=True, exclude_none=True)

    @property
    def key(self) -> str | None:
        return profile_key(self.model_dump(include={"AlternateIds", "Emails", "ProfileId"}, exclude_none=True))


def profile_key(profile: Mapping[str, Any]) -> str | None:
    """The value that names a profile to a person: its first alternate id, else its first email,
    else its ProfileId. Works on staged records and on the exceptions call's echo of them."""
    for collection, field in (("AlternateIds", "AlternateId"), ("Emails", "EmailAddress")):
        for element in profile.get(collection) or ():
            value = element.get(field) if isinstance(element, Mapping) else None
            if value not in (None, ""):
                return str(value)
    profile_id = profile.get("ProfileId")
    return None if profile_id in (None, "") else str(profile_id)


# json.dumps(..., separators=(",", ":")) without building an encoder for every call (the cutter
# encodes each record alone); the output is the same. A record's dump cannot hold a cycle.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def stage_body(records: list[UserProfilePreference]) -> bytes:
    """The exact Stage request body: the wrapper and the records, compact (ASCII, as json.dumps
    escapes everything else). Additive: the body of several records is the wrapper of the empty
    body around their own bodies' insides, joined with "," (the batch cutter relies on it)."""
    return _COMPACT_JSON.encode({STAGE_WRAPPER: [record.wire() for record in records]}).encode()


# --- Retrieve exceptions (VENDORS.md 2.3.5) -------------------------------------------------------


class ExceptionDefinition(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    Code: str | None = None
    Message: str | None = None

    @property
    def reason(self) -> str | None:
        code, message = (self.Code or "").strip(), (self.Message or "").strip()
        if code and message:
            return f"{code}: {message}"
        return message or code or None


class ExceptionRecord(BaseModel):
    """One failed record: its position among the staged records, its reasons, and MyPreferences'
    echo of its profile fields (kept as extra fields, where nested elements carry their own
    `Exceptions`)."""

    model_config = ConfigDict(extra="allow")

    SequenceNumber: int
    Exceptions: Annotated[list[ExceptionDefinition], BeforeValidator(lambda v: v or [])] = []

    def reasons(self) -> list[str]:
        """Every reason given, the record's own first, then each nested element's, prefixed with
        where it sits (e.g. "Emails[0]: ...")."""
        own = [reason for definition in self.Exceptions if (reason := definition.reason)]
        nested = [reason for name, value in (self.model_extra or {}).items() for reason in _nested_reasons(value, name)]
        return own + nested or ["MyPreferences listed the record as an exception without giving a reason"]

    @property
    def key(self) -> str | None:
        return profile_key(self.model_extra or {})


def _nested_reasons(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, list):
        for index, element in enumerate(value):
            yield from _nested_reasons(element, f"{where}[{index}]")
    elif isinstance(value, dict):
        for definition in value.get(EXCEPTIONS_KEY) or ():
            reason = ExceptionDefinition.model_validate(definition).reason if isinstance(definition, dict) else None
            if reason:
                yield f"{where}: {reason}"
        for name, inner in value.items():
            if name != EXCEPTIONS_KEY:
                yield from _nested_reasons(inner, f"{where}.{name}")


class ExceptionsPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    Count: Counter = 0
    HasMore: bool = False
    Limit: int | None = None
    Offset: int | None = None
    TotalResults: int | None = None  # documented as this page's count, which looks mislabelled
    records: list[ExceptionRecord] = []

    @classmethod
    def from_body(cls, body: Any) -> "ExceptionsPage":
        if not isinstance(body, dict):
            raise VendorProtocolError("MyPreferences' exceptions page is not a JSON object")
        records = next((body[key] for key in EXCEPTION_RECORD_KEYS if key in body), None) or []
        try:
            return cls.model_validate({**body, "records": records})
        except ValidationError:
            raise VendorProtocolError("MyPreferences' exceptions page has unreadable records") from None


# --- error bodies (VENDORS.md 2.4) ----------------------------------------------------------------


def vendor_message(content: bytes) -> str | None:
    """The readable reason in an error answer (see ERROR_MESSAGE_KEYS), shortened; None if empty."""
    return error_message(content, message_keys=ERROR_MESSAGE_KEYS, details_key=ERROR_DETAILS_KEY)


def mentions_size(message: str | None) -> bool:
    text = (message or "").lower()
    return any(word in text for word in SIZE_ERROR_WORDS)
