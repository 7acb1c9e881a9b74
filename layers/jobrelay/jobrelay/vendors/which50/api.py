"""Which50's contact-list import payloads and paths, and every assumption we make where its docs are
silent.

The docs describe the ImportJob model and the routes well, and the authentication, the status
words, the batch answer and the error bodies not at all (docs/VENDORS.md 3). Whatever had to be guessed
sits in the ASSUMPTIONS block below, each entry naming the docs/VENDORS.md section and Unknown it
answers, so a real response can correct a guess in one place. Answers are read leniently (keys in
any casing, unknown fields ignored, null counters read as 0) and raise VendorProtocolError, with a
redacted excerpt of the answer, only when nothing usable is left.

This module imports no HTTP library: the params model and the record checks use it too.
"""

import json
import logging
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from jobrelay.domain.errors import VendorProtocolError
from jobrelay.domain.vendor_outcomes import VendorState
from jobrelay.vendors.answers import Counter, error_message
from jobrelay.vendors.reading import CaselessModel, VendorAnswer, as_int, collection, has_key, lookup, nothing, text
from jobrelay.vendors.redaction import excerpt
from jobrelay.vendors.which50 import limits

log = logging.getLogger(__name__)


# =================================================================================================
# ASSUMPTIONS about what Which50 sends and accepts. Check each against a real response.
# =================================================================================================

# docs/VENDORS.md 3.1, Unknown 17: the help site documents paths as "~/contactLists/...", "~" being the
# application root; the root is inferred from the docs' own address. The account secret's
# `base_url` overrides it (the local stack's sandbox does).
DEFAULT_BASE_URL = "https://app.which50.com/Which50API"
LISTS_PATH = "/contactLists"
LIST_PATH = LISTS_PATH + "/{list_id}"  # GET: one list, 404 if missing
FIELDS_PATH = LIST_PATH + "/fields"  # GET: the list's schema fields
IMPORT_PATH = LIST_PATH + "/import"  # POST {"FieldNames": [...]}: create an import job
IMPORT_JOB_PATH = IMPORT_PATH + "/{job_id}"  # POST [Contact, ...]: add a batch; GET: the job
RUN_PATH = IMPORT_JOB_PATH + "/run"  # POST, ?customevents=A,B&match=X,Y: start processing

REQUEST_CONTENT_TYPE = "application/json"  # docs/VENDORS.md 3.1: JSON is one of the accepted formats

# docs/VENDORS.md 3.2, Unknown 17: no authentication scheme is documented. We send the API key Which50
# issues to the account in the Authorization header, as "ApiKey <key>". The account secret may name
# another header or scheme word (`auth_header`, `auth_scheme`; an empty scheme sends the bare key),
# so the real scheme is a change of secret, not of code.
AUTH_HEADER = "Authorization"
AUTH_SCHEME = "ApiKey"

# docs/VENDORS.md 3.3 step 2, 3.6: contacts and bytes per batch request (limits.py, which the params
# model loads without this module).
MAX_CONTACTS_PER_BATCH = limits.MAX_CONTACTS_PER_BATCH
MAX_BATCH_BYTES = limits.MAX_BATCH_BYTES

# docs/VENDORS.md 3.3 step 3: customevents and match are comma-separated lists in the query string, so
# a name holding a comma could not be sent (the params model refuses one).
QUERY_LIST_SEPARATOR = ","

# docs/VENDORS.md 3.1, 3.3: answers are read through jobrelay.vendors.reading, the reading layer every
# adapter shares: keys in any casing or separators (`CurrentStatus`, `currentStatus`,
# `current_status` are one key; CaselessModel), numbers given as numbers or as strings, and a
# collection as a list, an object keyed by position or id, or one object (`collection`).

# docs/VENDORS.md 3.3 step 4, Unknown 18: CurrentStatus values are not documented. Each word of the
# status (split at case changes and separators: "CompletedWithErrors", "COMPLETED_WITH_ERRORS",
# "completed with errors") is looked up in STATUS_STEMS by its longest matching stem; a word after
# a negation ("no errors", "NotYetRun") says nothing. A -ing form of a done word is running
# ("Completing", "Finishing"), and its -ion noun says nothing ("AwaitingCompletion" is pending).
# "Importing"/"Processing" run while "Imported"/"Processed" are done. The words together read as:
#   FAILED            a failure word (fail, abort, cancel, ...), or an error word with no done word
#                     ("Failed", "Error", "ImportError", "CompletedWithFailures");
#   DONE_WITH_ERRORS  a done word with an error or warning word ("CompletedWithErrors", "Partial");
#   DONE              a done word ("Completed", "COMPLETED", "Finished", "Done", "Success", "Imported");
#   RUNNING           a running word ("Running", "Processing", "Importing", "InProgress", "Queued");
#   PENDING           a word of a job not run yet ("Created", "New", "Pending", "Ready");
#   UNKNOWN           anything else (recorded on the job's timeline with an excerpt of the answer).
# An import job is finished when its word says so (DONE, DONE_WITH_ERRORS, FAILED) or, where the
# word is absent or UNKNOWN, when FinishDate is set. ProgressPercent alone never finishes a job: a
# server was seen at 100 % while still "Processing", its counts half the final ones. Counts are read
# once the job is finished and are final. A FinishDate of 0001-01-01 (.NET's DateTime.MinValue, what
# a non-nullable date holds before it is set) is read as not set.
# FAILED means nothing was applied: a failure word with InsertedContacts + UpdatedContacts == 0. A
# failure word with contacts applied is a finished import (DONE), which reconcile() reports PARTIAL
# with the counts; so is DONE_WITH_ERRORS. Re-running a PARTIAL import would insert them twice.
NEGATIONS = frozenset({"no", "not", "non", "never", "without", "zero", "un"})

# docs/VENDORS.md 3.3 step 4: TotalContacts is "total inserted and updated"; reconcile() checks it. A
# counter missing from the answer is not given (no check against it); a null one reads as 0.
# With `match`, Which50 updates every contact whose fields match (3.3 step 3): one record may update
# several contacts, so contacts applied are only checked to be at least the records sent (each
# record inserted or matched at least once), never equal to them. Without `match`, every contact sent
# must be in one of the counts: inserted, updated, not updated, or invalid (email or SMS). Whether a
# contact with an invalid value is counted as invalid *instead of* inserted, or is inserted without
# that value *and* counted as invalid, is not documented (docs/VENDORS.md 3.6): reconcile() accepts the
# reading the counts fit and names it in the check's note; counts that fit neither fail the check.

# docs/VENDORS.md 3.6, Unknown 21: Which50 documents no rate or concurrency limit, and its batches carry
# no record numbers (its failures are counts): batches may go in any order. Up to this many batch
# requests of one import are out at once, unless the account's secret says `stage_concurrency`.
# A guess to check with Which50; 1 restores one at a time.
STAGE_CONCURRENCY_DEFAULT = 4
MAX_STAGE_CONCURRENCY = 8

# docs/VENDORS.md 3.6, Unknown 20: whether `run` may be repeated is not documented (it may import the
# contacts twice). A run whose answer never came is only sent again once the job shows no sign of
# having started: no FinishDate, ProgressPercent 0, and a CurrentStatus that is PENDING or UNKNOWN
# (only a RUNNING, DONE or FAILED word is a sign). StartDate is not a sign: it may be set when the
# job is created. "Queued" and "Scheduled" are taken as started, "Pending" and "Waiting" are not.

# docs/VENDORS.md 3.3 step 1, Unknown 20: creating an import job is not idempotent and no call lists
# import jobs, so a create whose answer never came (a timeout, a dropped connection) or cannot be
# read (not JSON, no Id) is not sent again (VendorOutcomeUnknown): an import job may exist at
# Which50, but one never run imports nothing. A 5xx or 429 answer is taken as "not created" and
# retried.

# docs/VENDORS.md 3.3 step 2, Unknown 19: the answer to a batch is not documented. We read it as the
# contacts echoed in order, each with its `ValidationWarnings` (the newer Contact model's output
# field): a list, an object keyed by position (0- or 1-based) or by id (then in its order), or a
# single contact. Any other answer (the job, an empty body) is accepted as "no warnings".

# docs/VENDORS.md 3.6: Which50 names no identifier. A contact is identified by its EncContactId (an
# update), or by a value in a field whose MapType reads as email or SMS (IDENTIFIER_MAP_TYPES) or,
# when no field of the list has such a type, whose name does (IDENTIFIER_NAMES); the `match`
# fields identify too. A record with none of them is not sent.
IDENTIFIER_MAP_TYPES = re.compile(r"e-?mail|sms|mobile|phone", re.IGNORECASE)
IDENTIFIER_NAMES = IDENTIFIER_MAP_TYPES
ENC_CONTACT_ID = limits.ENC_CONTACT_ID

# docs/VENDORS.md 3.6, Unknown 21: StartDate and FinishDate are .NET dates with no stated zone; one
# without an offset is read as UTC. The raw text is kept beside our reading.

# docs/VENDORS.md 3.5, Unknown 21: error bodies are read as ASP.NET's default {"Message": ...}
# (jobrelay.vendors.answers). 429 is not documented; it is treated as transient, like 5xx.

# =================================================================================================


# --- status --------------------------------------------------------------------------------------


class Said(StrEnum):
    """What one word of a CurrentStatus says."""

    PENDING = "pending"  # the job exists and has not (visibly) been run
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ERROR = "error"  # failure alone ("Error"), "with errors" beside a done word
    WARNING = "warning"  # only qualifies a done word ("CompletedWithWarnings"); nothing alone
    PARTIAL = "partial"  # done, not cleanly ("Partial", "PartiallyImported")


# Stems of status words (matched at the start of a lower-cased word; the longest stem wins). See
# the ASSUMPTIONS above for how the words of one status combine.
STATUS_STEMS: dict[str, Said] = {
    # done
    "complet": Said.DONE, "finish": Said.DONE, "finali": Said.DONE, "done": Said.DONE, "success": Said.DONE,
    "succeed": Said.DONE, "imported": Said.DONE, "processed": Said.DONE, "ended": Said.DONE,
    # running ("import" and "process" lose to "imported" and "processed", the longer stems)
    "run": Said.RUNNING, "import": Said.RUNNING, "process": Said.RUNNING, "progress": Said.RUNNING,
    "queue": Said.RUNNING, "schedul": Said.RUNNING, "start": Said.RUNNING, "execut": Said.RUNNING,
    "validat": Said.RUNNING, "busy": Said.RUNNING, "working": Said.RUNNING,
    # not run yet
    "creat": Said.PENDING, "new": Said.PENDING, "pending": Said.PENDING, "wait": Said.PENDING,
    "await": Said.PENDING, "ready": Said.PENDING, "open": Said.PENDING, "idle": Said.PENDING,
    "draft": Said.PENDING, "stag": Said.PENDING, "upload": Said.PENDING, "initiali": Said.PENDING,
    # failure
    "fail": Said.FAILED, "abort": Said.FAILED, "cancel": Said.FAILED, "reject": Said.FAILED,
    "crash": Said.FAILED, "terminat": Said.FAILED, "stop": Said.FAILED, "expire": Said.FAILED,
    "error": Said.ERROR, "invalid": Said.ERROR,
    # done, but not cleanly
    "warn": Said.WARNING, "partial": Said.PARTIAL,
}  # fmt: skip
_STEMS_LONGEST_FIRST = sorted(STATUS_STEMS, key=len, reverse=True)


class StatusWord(StrEnum):
    """What a whole CurrentStatus says (see the ASSUMPTIONS above)."""

    ABSENT = "absent"
    UNKNOWN = "unknown"
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DONE_WITH_ERRORS = "done_with_errors"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (StatusWord.DONE, StatusWord.DONE_WITH_ERRORS, StatusWord.FAILED)


def status_words(status: str | None) -> list[str]:
    """The lower-cased words of `status` before any negation: "CompletedWithErrors" gives
    completed, with, errors; "Completed (no errors)" gives completed."""
    words = []
    for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", status or ""):
        word = word.lower()
        if word in NEGATIONS:
            break
        words.append(word)
    return words


def said_by(word: str) -> Said | None:
    """What one lower-cased word says, if anything."""
    stem = next((stem for stem in _STEMS_LONGEST_FIRST if word.startswith(stem)), None)
    if stem is None:
        return None
    said = STATUS_STEMS[stem]
    if said is Said.DONE and word != stem:
        if word.endswith("ing"):  # Completing, Finishing, Finalising: not yet
            return Said.RUNNING
        if word.endswith(("ion", "ions")):  # Completion, Finalisation: a noun, not a state
            return None
    return said


def read_status(status: str | None) -> StatusWord:
    """What a CurrentStatus says, whatever its casing, synonyms or negations."""
    if status is None or not status.strip():
        return StatusWord.ABSENT
    said = {kind for word in status_words(status) if (kind := said_by(word)) is not None}
    if Said.FAILED in said:
        return StatusWord.FAILED
    if Said.PARTIAL in said or (Said.DONE in said and said & {Said.ERROR, Said.WARNING}):
        return StatusWord.DONE_WITH_ERRORS
    if Said.DONE in said:
        return StatusWord.DONE
    if Said.ERROR in said:
        return StatusWord.FAILED
    if Said.RUNNING in said:
        return StatusWord.RUNNING
    if Said.PENDING in said:
        return StatusWord.PENDING
    return StatusWord.UNKNOWN


def _percent(value: Any) -> Any:
    """0-100 from a number, a numeric string or null (0); a fraction is rounded down."""
    if value is None:
        return 0
    if isinstance(value, str) and value.strip():
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            return value  # left for validation to refuse
    if isinstance(value, float) and value == value:
        return int(value)
    return value


Percent = Annotated[int, BeforeValidator(_percent)]
# A status or date as text: a number (an enum sent as its value) becomes text, "" means not given.
Text = Annotated[str | None, BeforeValidator(text)]
DOTNET_MIN_DATE = "0001-01-01"  # DateTime.MinValue: a non-nullable .NET date that was never set


def _fields(exc: ValidationError) -> str:
    """The fields an unreadable ImportJob got wrong (Id, when none is named)."""
    return ", ".join(sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]})) or "Id"


class ImportJob(VendorAnswer):
    """Which50's ImportJob (docs/VENDORS.md 3.3 step 4): what create, run and the status call answer.
    Keys are read in any casing (CaselessModel)."""

    model_config = ConfigDict(extra="ignore")

    Id: int
    ContactListId: int | None = None
    InvalidEmailCount: Counter = 0
    InvalidSmsCount: Counter = 0
    ProgressPercent: Percent = 0
    CurrentStatus: Text = None
    StartDate: Text = None
    FinishDate: Text = None
    InsertedContacts: Counter = 0
    UpdatedContacts: Counter = 0
    DroppedContacts: Counter = 0
    NotUpdatedContacts: Counter = 0
    TotalContacts: Counter = 0

    @classmethod
    def from_body(cls, body: Any, call: str) -> "ImportJob":
        if not isinstance(body, dict):
            raise VendorProtocolError(f"Which50's answer to {call} is not an ImportJob object", answer=excerpt(body))
        return cls.read(body, lambda exc: f"Which50's ImportJob from {call} is unreadable (fields: {_fields(exc)})")

    @property
    def status_word(self) -> StatusWord:
        return read_status(self.CurrentStatus)

    @property
    def finish_date(self) -> str | None:
        """FinishDate when it is really set (see DOTNET_MIN_DATE)."""
        return None if self.FinishDate is None or self.FinishDate.startswith(DOTNET_MIN_DATE) else self.FinishDate

    @property
    def applied(self) -> int:
        """Contacts Which50 inserted or updated."""
        return self.InsertedContacts + self.UpdatedContacts

    @property
    def state(self) -> VendorState:
        """The rule of the ASSUMPTIONS above: the word first, FinishDate where the word says nothing
        we know, never ProgressPercent; FAILED only when nothing was applied."""
        word = self.status_word
        if word is StatusWord.FAILED:
            return VendorState.FAILED if self.applied == 0 else VendorState.DONE
        if word.finished:
            return VendorState.DONE
        if word in (StatusWord.ABSENT, StatusWord.UNKNOWN) and self.finish_date:
            return VendorState.DONE
        return VendorState.RUNNING

    @property
    def has_started(self) -> bool:
        """Whether a run reached Which50: a FinishDate, any progress, or a status word of a job that
        runs or ran. PENDING and UNKNOWN words are no sign (see the ASSUMPTIONS above)."""
        word = self.status_word
        return bool(self.finish_date) or self.ProgressPercent > 0 or word is StatusWord.RUNNING or word.finished

    @property
    def percent(self) -> int:
        return max(0, min(100, self.ProgressPercent))

    def counts(self) -> dict[str, int]:
        """The job's counters under our names, those the answer gave (a null one as 0). No
        "received": Which50 counts nothing before the run."""
        given = self.model_fields_set
        return {name: getattr(self, field) for name, field in COUNTERS.items() if field in given}

    def times(self) -> dict[str, str | None]:
        """StartDate and FinishDate as given, and as we read them (UTC)."""
        return {
            "start_date": self.StartDate,
            "finish_date": self.FinishDate,
            "started_at": _as_utc(self.StartDate),
            "finished_at": _as_utc(self.finish_date),
        }


# Our names for Which50's counters (job.progress.counts, summary.json's vendor_counts).
COUNTERS = {
    "inserted": "InsertedContacts",
    "updated": "UpdatedContacts",
    "dropped": "DroppedContacts",
    "not_updated": "NotUpdatedContacts",
    "invalid_email": "InvalidEmailCount",
    "invalid_sms": "InvalidSmsCount",
    "total": "TotalContacts",
}


def _as_utc(value: str | None) -> str | None:
    if not value or value.startswith(DOTNET_MIN_DATE):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        log.warning("Which50 date %r is not ISO-8601; kept only as given", value)
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).isoformat()


# --- lists and fields (docs/VENDORS.md 3.4) ------------------------------------------------------------


class ContactList(CaselessModel):
    model_config = ConfigDict(extra="ignore")

    Id: int
    Name: str | None = None
    Count: int | None = None


class SchemaField(CaselessModel):
    model_config = ConfigDict(extra="ignore")

    Name: str
    MapType: str | None = None


def read_model[M: BaseModel](model: type[M], body: Any, call: str) -> M:
    try:
        return model.model_validate(body)
    except ValidationError:
        raise VendorProtocolError(f"Which50's answer to {call} is not a {model.__name__}", answer=excerpt(body)) from None


def read_fields(body: Any) -> list[SchemaField]:
    what = "Which50's answer to the list's fields"
    try:
        items = collection(body, id_key="Name", what=what)
    except VendorProtocolError as unreadable:
        raise VendorProtocolError(str(unreadable), answer=excerpt(body)) from None
    return [read_model(SchemaField, item, "the list's fields") for item in items]


def identifier_fields(fields: list[SchemaField], wanted: list[str], match: list[str]) -> list[str]:
    """Which of the import's `wanted` fields identify a contact (see IDENTIFIER_MAP_TYPES)."""
    typed = {f.Name for f in fields if f.MapType and IDENTIFIER_MAP_TYPES.search(f.MapType)}
    if not typed:
        typed = {f.Name for f in fields if IDENTIFIER_NAMES.search(f.Name)}
    return [name for name in wanted if name in typed or name in match]


# --- batches ---------------------------------------------------------------------------------------

_ECHO_KEY = "_jobrelay_echo_key"  # where `collection` puts the key of an echo keyed by position or id


def batch_warnings(content: bytes) -> list[tuple[int, list[str]]]:
    """(0-based position in the batch, warnings) for each echoed contact that has any."""
    try:
        body = json.loads(content) if content.strip() else None
    except (ValueError, RecursionError):
        raise VendorProtocolError("Which50 answered a batch with a body that is not JSON", answer=excerpt(content)) from None
    if isinstance(body, dict) and has_key(body, "Id") and not has_key(body, "ValidationWarnings"):
        return []  # the ImportJob itself: no warnings to read
    try:
        echoed = collection(body, id_key=_ECHO_KEY, what="Which50's answer to a batch")
    except VendorProtocolError as unreadable:
        raise VendorProtocolError(str(unreadable), answer=excerpt(content)) from None
    positions = _echo_positions([contact.get(_ECHO_KEY) for contact in echoed])
    warnings = []
    for position, contact in zip(positions, echoed, strict=True):
        said = lookup(contact, "ValidationWarnings")
        said = [said] if isinstance(said, str) else said
        if isinstance(said, list) and (texts := [str(w) for w in said if not nothing(w)]):
            warnings.append((position, texts))
    return warnings


def _echo_positions(keys: list[Any]) -> list[int]:
    """The batch position of each echoed contact: its key when the keys number the contacts
    0..n-1 or 1..n, else (a list, or keys that are ids) its place in the answer."""
    read = [as_int(key) for key in keys]
    numbers = [n for n in read if n is not None]
    if keys and len(numbers) == len(read):
        if sorted(numbers) == list(range(len(keys))):
            return numbers
        if sorted(numbers) == list(range(1, len(keys) + 1)):
            return [n - 1 for n in numbers]
    return list(range(len(keys)))


def vendor_message(content: bytes) -> str | None:
    return error_message(content)
