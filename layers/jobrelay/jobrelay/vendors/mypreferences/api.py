"""MyPreferences' bulk-import payloads and paths, and every assumption we make where its docs are silent.

The Integration API documents its models well and its routes, auth details and error bodies poorly
(docs/VENDORS.md 2.1-2.4). Whatever had to be guessed sits in the ASSUMPTIONS block below, each entry
naming the docs/VENDORS.md section and Unknown it answers, so a real response can correct a guess in one
place. Answers are read leniently (unknown fields ignored, missing counters read as 0, keys in any
casing) and raise VendorProtocolError, with a redacted excerpt of the answer, only when nothing usable
is left.

This module imports no HTTP library: the params model and the record checks use it too.
"""

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from jobrelay.domain.bulk_import import BatchFormat
from jobrelay.domain.errors import VendorProtocolError
from jobrelay.domain.vendor_outcomes import VendorState
from jobrelay.vendors.answers import Counter, error_message
from jobrelay.vendors.reading import CaselessModel, VendorAnswer, as_int, collection, fold, has_key, lookup, nothing, text
from jobrelay.vendors.redaction import excerpt

log = logging.getLogger(__name__)


# =================================================================================================
# ASSUMPTIONS about what MyPreferences sends and accepts. Check each against a real response.
# =================================================================================================

# docs/VENDORS.md 2 leaves the shapes of answers open (casing, how a list is wrapped, numbers as text).
# Every answer is read through the shared reading layer, jobrelay.vendors.reading (its rules are in
# its docstring): keys in any casing or separators (`TotalRecordsReceived`, `totalRecordsReceived`,
# `total_records_received`), collections as a list, an object keyed by id or a single object,
# numbers as numbers or digit strings, and pages followed until the vendor says they end.

# docs/VENDORS.md 2.1, Unknown 10: only the Execute route is confirmed (legacy help site, relative to the
# /Profiles/ application). The others follow its pattern; Stage and Status share the token's path
# and differ by method (POST to stage, GET for the status).
IMPORT_PATH = "/Profiles/Async/{client_id}/Import"  # POST: Initiate
IMPORT_TOKEN_PATH = IMPORT_PATH + "/{access_token}"  # POST: Stage; GET: Retrieve status
EXECUTE_PATH = IMPORT_TOKEN_PATH + "/Execute"  # POST (confirmed)
EXCEPTIONS_PATH = IMPORT_TOKEN_PATH + "/Exceptions"  # GET ?limit=&offset=

# docs/VENDORS.md 2.1: the legacy help site lists application/json among the accepted formats.
REQUEST_CONTENT_TYPE = "application/json"

# docs/VENDORS.md 2.3.2, Unknown 12: the Stage body wraps the records in a property whose name begins
# "UserProfil..."; we send the name the export API uses.
STAGE_WRAPPER = "UserProfilePreferences"

# docs/VENDORS.md 2.3.5, Unknown 13: the exceptions page's record list is read from the first of these
# keys present (the stage wrapper's name first).
EXCEPTION_RECORD_KEYS = (STAGE_WRAPPER, "BulkUserProfilePreferenceExceptions", "Records", "Items")

# The documented sizes (docs/VENDORS.md 2.3.2) are in limits.py.

# docs/VENDORS.md 2.3.1, Unknown 11: the Initiate narrative gives the access token six hours, the
# `Expires` description twelve. We plan for the earlier: the token is taken to die at the earlier
# of `Expires` and six hours after we sent Initiate. `Expires` without an offset (the docs' sample
# "2025-08-13T22:00:00") is read as UTC; one we cannot read, or one not after the Initiate (a time
# zone misread), is ignored and logged, leaving the six hours.
ACCESS_TOKEN_LIFETIME = timedelta(hours=6)

# docs/VENDORS.md 2.3.4, Unknown 16: the documented Status words and their likely synonyms, compared as
# reading.fold compares keys (case, spaces, `_` and `-` ignored: "COMPLETED", "Complete", "in
# progress"). The Execute page says "Complete" while the enum says "Completed"; both, and "Done",
# "Success", ..., are done. Any other word starting "complet" ("CompletedWithErrors",
# "Completed_With_Exceptions", "CompleteWithWarnings") is done too, but *qualified*: the import ended
# and its counts are final, yet the vendor says it did not end cleanly. We cannot know what an
# undocumented qualifier covers, so reconcile() makes such an import PARTIAL, quoting the word, and
# the counts say what is missing. Any word not in the table is logged with its raw value and kept
# RUNNING, with a redacted excerpt of the answer on the job's timeline (docs/DESIGN.md, Job model).
STATUS_TABLE: dict[str, VendorState] = {
    **dict.fromkeys(("initiated", "initiate", "created", "new", "open"), VendorState.RUNNING),
    **dict.fromkeys(("staging", "staged"), VendorState.RUNNING),
    **dict.fromkeys(("queued", "pending", "waiting", "scheduled", "executed"), VendorState.RUNNING),
    **dict.fromkeys(("processing", "inprogress", "running", "importing", "executing"), VendorState.RUNNING),
    **dict.fromkeys(("completed", "complete", "done", "success", "succeeded", "successful", "finished"), VendorState.DONE),
    **dict.fromkeys(("failed", "failure", "fail", "error", "errored"), VendorState.FAILED),
}
QUALIFIED_DONE_PREFIX = "complet"  # "completedwitherrors" and the like: done, not cleanly
STAGING_STATUSES = frozenset({"initiated", "initiate", "created", "new", "open", "staging", "staged"})

# docs/VENDORS.md 2.3.4: `Failed` means "none of the staged records were added". A Failed import whose
# counts show records Processed contradicts that: some records were imported. Reporting FAILED would
# invite the user to run the import again and import those records twice, so such an import is
# read as done (qualified) and reconcile() explains the shortfall (PARTIAL).

# docs/VENDORS.md 2.3.3: whether Execute may be repeated is not documented. An Execute retried after a
# timeout may already have reached MyPreferences, so the adapter reads the status first and skips
# Execute once the import has left STAGING_STATUSES.

# docs/VENDORS.md 2.3.4: BulkImportStatus documents no field saying why an import Failed. A reason is
# read from the first of these keys present; without one, the documented meaning is reported.
FAILURE_REASON_KEYS = ("Message", "StatusMessage", "ErrorMessage", "Error")

# docs/VENDORS.md 2.3.5, Unknown 13: the fields of ExceptionsDefinition are unreadable; we read `Code`
# and `Message` (ExceptionDefinition below). A record's own list and the lists inside its nested
# elements (each email, ...) are all named `Exceptions`.
EXCEPTIONS_KEY = "Exceptions"

# docs/VENDORS.md 2.3.5: `limit` defaults to 1000 and `offset` is 1-based. A vendor may serve pages
# smaller than the `limit` we ask for, so the next page starts after the records it actually sent
# (offset + records received), never at 1 + n*limit. Pages end when `HasMore` is false or a page is
# empty; without `HasMore` we keep asking until a page is empty. A page made only of records already
# listed (by SequenceNumber), or one repeating the page before, is a protocol error, not a loop. A
# record listed twice is listed once. A page whose `Count` is above 0 but whose records we cannot
# find under any of EXCEPTION_RECORD_KEYS is a protocol error (its wrapper is not one we know).
EXCEPTIONS_PAGE_SIZE = 1000
FIRST_OFFSET = 1

# docs/VENDORS.md 2.3.4/2.5, Unknown 16: `NotHonored` is "not honoured by the system during import;
# meaning not defined further". We take a not-honoured record as one that did not make it (a
# shortfall: PARTIAL). The docs leave two things open, and reconcile() accepts either reading only
# when the counts say which one the vendor used (with no not-honoured record both readings agree):
# - whether Retrieve exceptions lists them: records listed == ValidationFailed + Exceptions
#   + NotHonored (listed; failed_records.jsonl names them) or == ValidationFailed + Exceptions (not
#   listed; the shortfall says MyPreferences does not name them);
# - whether they are counted apart from `Processed` or among it: ValidationSuccessful == Processed
#   + Exceptions + NotHonored (apart) or == Processed + Exceptions (among the processed).
# Counts that fit neither reading disagree, and the import is PARTIAL naming both.
# The sandbox (devstack/sandbox/mypreferences.py, `not_honored`) lists them and counts them apart
# by default; both other readings can be switched on there.

# docs/VENDORS.md 2.3.1, 2.5: Initiate opens an import and spends one of the account's daily imports.
# An Initiate that got no answer (a timeout, a dropped connection after it was sent) or an answer we
# cannot read (not JSON, no AccessToken) may have opened one: it is never sent again
# (VendorOutcomeUnknown). The import it may have opened is never executed, so it imports nothing and
# expires with its token, but it counts against the quota. A connection that could not even be
# opened, and the OAuth token request before it, never reached Initiate: those stay transient.
# The AccessToken is a per-import credential: it is masked in every excerpt of an answer.

# docs/VENDORS.md 2.3.2, Unknown 13: the sub-field names of `CustomerName` and of `AlternateIds` entries
# are assumed (CustomerNameElement, AlternateIdElement below). Sub-fields we do not know are passed
# through for MyPreferences to judge; AlternateIdType and AlternateId are required, as a record's
# key is read from them.

# docs/VENDORS.md 2.5: "run one import at a time; parallel imports are discouraged". An account's jobs
# are limited to this many at once unless its secret says otherwise (max_concurrent_jobs).
CONCURRENT_IMPORTS_DEFAULT = 1

# docs/VENDORS.md 2.5: the docs ask for care (one import at a time, bigger batches rather than more
# requests) and say nothing of concurrent Stage requests within one import. So one at a time unless
# the account's secret says `stage_concurrency`; above 1, each Stage answer's TotalRecordsReceived is
# taken to count the records up to and including that request's (the vendor takes one request at a
# time), which places its records among the SequenceNumbers of the exceptions.
STAGE_CONCURRENCY_DEFAULT = 1
MAX_STAGE_CONCURRENCY = 8

# docs/VENDORS.md 2.4: error bodies are not documented. We read the ASP.NET Web API default
# {"Message": ..., "ModelState": {field: [messages]}} or an OAuth (RFC 6749) {"error",
# "error_description"}, else the body's text.
ERROR_MESSAGE_KEYS = ("Message", "message", "error_description", "ExceptionMessage", "error")
ERROR_DETAILS_KEY = "ModelState"
# No answer to an oversized request is documented: it is read from a 413, or from a 400 whose
# message speaks of size.
SIZE_ERROR_WORDS = ("size", "too large", "length", "exceed")

# docs/VENDORS.md 2.4, Unknown 15: no 429 is documented, although a daily import quota exists (2.5).
# A 429 is treated as transient like 5xx; if the quota answers 400, the job ends with its message.

# docs/VENDORS.md 2.2 A, Unknown 14: the OAuth token endpoint is the account secret's `token_url`; the
# token is sent as "Authorization: Bearer <token>"; a token answer without `expires_in` is taken to
# live an hour. A token is renewed a minute before it expires (so it cannot die in flight).
OAUTH_DEFAULT_TOKEN_SECONDS = 3600
OAUTH_RENEWAL_MARGIN = timedelta(seconds=60)

# docs/VENDORS.md 2.2 B, Unknown 14: the PNAUTHINFO3 string-to-sign is not in readable vendor text. A
# third-party client (a TIBCO Flogo activity) signs "<clientId>:<userId>:<timestamp>" with
# HMAC-SHA256 keyed by the secret (its UTF-8 bytes, as given), base64-encoded, with the timestamp as
# UTC with milliseconds and "Z" ("2020-10-06T18:09:12.667Z"). The timestamp must not be in the
# future on the vendor's clock and is valid for 15 minutes, so we sign each request fresh and date
# it a few seconds back to absorb clock skew.
PNAUTHINFO3_SCHEME = "PNAUTHINFO3-HMAC-SHA256"
SIGNATURE_BACKDATE = timedelta(seconds=5)

# =================================================================================================


# --- status --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusReading:
    """What an import's Status word (and its counts) tell us."""

    state: VendorState
    known: bool  # the word is in STATUS_TABLE or a qualified completion
    qualified: bool = False  # done, but not cleanly: a "with errors" word, or Failed with records processed


def read_status(raw_status: str | None, processed: int = 0) -> StatusReading:
    """Our reading of an import's Status word; `processed` is the answer's Processed count (see
    STATUS_TABLE and the Failed note above it)."""
    word = fold(raw_status or "")
    state = STATUS_TABLE.get(word)
    if state is VendorState.FAILED and processed > 0:
        return StatusReading(VendorState.DONE, known=True, qualified=True)
    if state is not None:
        return StatusReading(state, known=True)
    if word.startswith(QUALIFIED_DONE_PREFIX):
        return StatusReading(VendorState.DONE, known=True, qualified=True)
    log.warning("MyPreferences import status %r is not in our table; treating the import as running", raw_status)
    return StatusReading(VendorState.RUNNING, known=False)


def vendor_state(raw_status: str | None, processed: int = 0) -> VendorState:
    return read_status(raw_status, processed).state


def is_staging(raw_status: str | None) -> bool:
    return fold(raw_status or "") in STAGING_STATUSES


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


# --- Initiate and BulkImportStatus (docs/VENDORS.md 2.3.1, 2.3.4) --------------------------------------


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


def _access_token(value: Any) -> Any:
    """AccessToken is documented as an int; digits sent as text are read too. Anything else is left
    for validation to refuse (an import we could not address)."""
    number = as_int(value)
    return value if number is None and not nothing(value) else number


class BulkImportStatus(VendorAnswer):
    """The answer to Initiate, Stage, Execute and Retrieve status, its keys in any casing. Extra
    fields are kept: a failure reason may hide in one (FAILURE_REASON_KEYS)."""

    model_config = ConfigDict(extra="allow")

    AccessToken: Annotated[int | None, BeforeValidator(_access_token)] = None
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
        return cls.read(body, lambda _: f"MyPreferences' answer to {call} is not a readable import status")

    @property
    def reading(self) -> StatusReading:
        return read_status(self.Status, self.Processed)

    @property
    def state(self) -> VendorState:
        return self.reading.state

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
        reason = lookup(self.model_extra or {}, *FAILURE_REASON_KEYS)
        if isinstance(reason, str) and reason.strip():
            return reason.strip()
        return f"MyPreferences reports the import as {self.Status!r}: none of the staged records were added"


# --- the records we stage (CreateBulkUserProfilePreference, docs/VENDORS.md 2.3.2) ----------------------

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
    else its ProfileId. Works on staged records and on the exceptions call's echo of them (whose
    keys may come in any casing, its elements as a list or a single object)."""
    for name, field in (("AlternateIds", "AlternateId"), ("Emails", "EmailAddress")):
        for element in _elements(lookup(profile, name)):
            value = text(lookup(element, field))
            if value is not None:
                return value
    return text(lookup(profile, "ProfileId"))


def _elements(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        value = [value]
    return [element for element in value if isinstance(element, Mapping)] if isinstance(value, list) else []


# json.dumps(..., separators=(",", ":")) without building an encoder for every call (the cutter
# encodes each record alone); the output is the same. A record's dump cannot hold a cycle.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def encode_profile(record: UserProfilePreference) -> bytes:
    """One record as it goes in a Stage request body: compact, ASCII (as json.dumps escapes
    everything else)."""
    return _COMPACT_JSON.encode(record.wire()).encode()


# The exact Stage request body: the records in a compact array under the wrapper.
STAGE_FORMAT = BatchFormat.json_array(encode_profile, key=STAGE_WRAPPER)


# --- Retrieve exceptions (docs/VENDORS.md 2.3.5) -------------------------------------------------------


class ExceptionDefinition(CaselessModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    Code: str | None = None
    Message: str | None = None

    @property
    def reason(self) -> str | None:
        code, message = (self.Code or "").strip(), (self.Message or "").strip()
        if code and message:
            return f"{code}: {message}"
        return message or code or None


def definitions(value: Any) -> list[ExceptionDefinition]:
    """An `Exceptions` value in whatever shape it comes: a list, an object keyed by Code, a single
    object, a bare message (or a list of them), or nothing."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        items = value
    else:
        try:
            items = collection(value, id_key="Code", what="an exception record's Exceptions")
        except VendorProtocolError:
            items = []
    read = []
    for item in items:
        if isinstance(item, str) and item.strip():
            read.append(ExceptionDefinition(Message=item))
        elif isinstance(item, dict):
            try:
                read.append(ExceptionDefinition.model_validate(item))
            except ValidationError:
                log.warning("MyPreferences sent an exception definition we cannot read: %s", excerpt(item, 200))
    return read


class ExceptionRecord(CaselessModel):
    """One failed record: its position among the staged records, its reasons, and MyPreferences'
    echo of its profile fields (kept as extra fields, where nested elements carry their own
    `Exceptions`)."""

    model_config = ConfigDict(extra="allow")

    SequenceNumber: int
    Exceptions: Annotated[list[ExceptionDefinition], BeforeValidator(definitions)] = []

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
        for definition in definitions(lookup(value, EXCEPTIONS_KEY)):
            if definition.reason:
                yield f"{where}: {definition.reason}"
        for name, inner in value.items():
            if fold(name) != fold(EXCEPTIONS_KEY):
                yield from _nested_reasons(inner, f"{where}.{name}")


_RECORD_KEYS = frozenset(fold(key) for key in EXCEPTION_RECORD_KEYS)


def _lenient_int(value: Any) -> int | None:
    return as_int(value)


LenientInt = Annotated[int | None, BeforeValidator(_lenient_int)]


class ExceptionsPage(CaselessModel):
    """One page of Retrieve exceptions, its keys in any casing. `HasMore` is None when the vendor
    did not send it (the pages then end with an empty one)."""

    model_config = ConfigDict(extra="ignore")

    Count: LenientInt = None
    HasMore: bool | None = None
    Limit: LenientInt = None
    Offset: LenientInt = None
    TotalResults: LenientInt = None  # documented as this page's count, which looks mislabelled
    records: list[ExceptionRecord] = Field(default_factory=list, exclude=True)

    @classmethod
    def from_body(cls, body: Any) -> "ExceptionsPage":
        what = "MyPreferences' exceptions page"
        if not isinstance(body, dict):
            raise VendorProtocolError(f"{what} is not a JSON object", answer=excerpt(body))
        header = {key: value for key, value in body.items() if not (isinstance(key, str) and fold(key) in _RECORD_KEYS)}
        try:
            items = collection(lookup(body, *EXCEPTION_RECORD_KEYS), id_key="SequenceNumber", what=what)
            page = cls.model_validate(header)
            page.records = [ExceptionRecord.model_validate(item) for item in items]
        except (ValidationError, VendorProtocolError) as unreadable:
            why = str(unreadable) if isinstance(unreadable, VendorProtocolError) else f"{what} has unreadable records"
            raise VendorProtocolError(why, answer=excerpt(body)) from None
        if not page.records and (page.Count or 0) > 0:
            found = "an empty list" if has_key(body, *EXCEPTION_RECORD_KEYS) else "no record list under any key we know"
            raise VendorProtocolError(
                f"{what} counts {page.Count} records but holds {found} ({', '.join(EXCEPTION_RECORD_KEYS)})",
                answer=excerpt(body),
            )
        return page


# --- error bodies (docs/VENDORS.md 2.4) ----------------------------------------------------------------


def vendor_message(content: bytes) -> str | None:
    """The readable reason in an error answer (see ERROR_MESSAGE_KEYS), shortened; None if empty."""
    return error_message(content, message_keys=ERROR_MESSAGE_KEYS, details_key=ERROR_DETAILS_KEY)


def mentions_size(message: str | None) -> bool:
    text = (message or "").lower()
    return any(word in text for word in SIZE_ERROR_WORDS)
