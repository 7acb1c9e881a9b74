"""Which50's contact-list import payloads and paths, and every assumption we make where its docs are
silent.

The docs describe the ImportJob model and the routes well, and the authentication, the status
words, the batch answer and the error bodies not at all (VENDORS.md 3). Whatever had to be guessed
sits in the ASSUMPTIONS block below, each entry naming the VENDORS.md section and Unknown it
answers, so a real response can correct a guess in one place. Answers are read leniently (unknown
fields ignored, missing counters read as 0) and raise VendorProtocolError only when nothing usable
is left.

This module imports no HTTP library: the params model and the record checks use it too.
"""

import json
import logging
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from jobrelay.domain.errors import VendorProtocolError
from jobrelay.ports import VendorState
from jobrelay.vendors.answers import Counter, error_message

log = logging.getLogger(__name__)


# =================================================================================================
# ASSUMPTIONS about what Which50 sends and accepts. Check each against a real response.
# =================================================================================================

# VENDORS.md 3.1, Unknown 17: the help site documents paths as "~/contactLists/...", "~" being the
# application root; the root is inferred from the docs' own address. The account secret's
# `base_url` overrides it (the local stack's sandbox does).
DEFAULT_BASE_URL = "https://app.which50.com/Which50API"
LISTS_PATH = "/contactLists"
LIST_PATH = LISTS_PATH + "/{list_id}"  # GET: one list, 404 if missing
FIELDS_PATH = LIST_PATH + "/fields"  # GET: the list's schema fields
IMPORT_PATH = LIST_PATH + "/import"  # POST {"FieldNames": [...]}: create an import job
IMPORT_JOB_PATH = IMPORT_PATH + "/{job_id}"  # POST [Contact, ...]: add a batch; GET: the job
RUN_PATH = IMPORT_JOB_PATH + "/run"  # POST, ?customevents=A,B&match=X,Y: start processing

REQUEST_CONTENT_TYPE = "application/json"  # VENDORS.md 3.1: JSON is one of the accepted formats

# VENDORS.md 3.2, Unknown 17: no authentication scheme is documented. We send the API key Which50
# issues to the account in the Authorization header, as "ApiKey <key>". The account secret may name
# another header or scheme word (`auth_header`, `auth_scheme`; an empty scheme sends the bare key),
# so the real scheme is a change of secret, not of code.
AUTH_HEADER = "Authorization"
AUTH_SCHEME = "ApiKey"

# VENDORS.md 3.3 step 2, 3.6: "up to 10,000 contacts per request". No byte limit is documented;
# IIS refuses request bodies over 30,000,000 bytes by default, so batches also stay under 25 MB.
MAX_CONTACTS_PER_BATCH = 10_000
MAX_BATCH_BYTES = 25_000_000

# VENDORS.md 3.3 step 3: customevents and match are comma-separated lists in the query string, so
# a name holding a comma could not be sent (the params model refuses one).
QUERY_LIST_SEPARATOR = ","

# VENDORS.md 3.3 step 4, Unknown 18: CurrentStatus values are not documented. An import job is
#   FAILED  when its CurrentStatus reads as a failure (a word starting with one of FAILURE_WORDS);
#   DONE    when FinishDate is set or ProgressPercent reaches 100;
#   RUNNING otherwise.
# Failure is read first: a job that failed may well carry a FinishDate. Words are read from any
# casing ("CompletedWithErrors", "completed_with_errors"), and one after a negation ("no errors",
# "NotYetRun") does not count.
FAILURE_WORDS = ("fail", "error", "abort", "cancel")
NEGATIONS = frozenset({"no", "not", "without", "zero", "un"})

# VENDORS.md 3.6, Unknown 20: whether `run` may be repeated is not documented (it may import the
# contacts twice). A run whose answer never came is only sent again once the job shows no sign of
# having started: no FinishDate, ProgressPercent 0, and a CurrentStatus that is not one of
# STARTED_WORDS. StartDate is not a sign: it may be set when the job is created.
STARTED_WORDS = ("run", "process", "progress", "import", "queue", "complet", "finish", "done", "success", *FAILURE_WORDS)

# VENDORS.md 3.3 step 2, Unknown 19: the answer to a batch is not documented. We read it as the
# contacts echoed in order, each with its `ValidationWarnings` (the newer Contact model's output
# field). Any other answer (the job, an empty body) is accepted as "no warnings".

# VENDORS.md 3.6: Which50 names no identifier. A contact is identified by its EncContactId (an
# update), or by a value in a field whose MapType reads as email or SMS (IDENTIFIER_MAP_TYPES) or,
# when no field of the list has such a type, whose name does (IDENTIFIER_NAMES); the `match`
# fields identify too. A record with none of them is not sent.
IDENTIFIER_MAP_TYPES = re.compile(r"e-?mail|sms|mobile|phone", re.IGNORECASE)
IDENTIFIER_NAMES = IDENTIFIER_MAP_TYPES
ENC_CONTACT_ID = "EncContactId"

# VENDORS.md 3.6, Unknown 21: StartDate and FinishDate are .NET dates with no stated zone; one
# without an offset is read as UTC. The raw text is kept beside our reading.

# VENDORS.md 3.5, Unknown 21: error bodies are read as ASP.NET's default {"Message": ...}
# (jobrelay.vendors.answers). 429 is not documented; it is treated as transient, like 5xx.

# =================================================================================================


# --- status --------------------------------------------------------------------------------------




class ImportJob(BaseModel):
    """Which50's ImportJob (VENDORS.md 3.3 step 4): what create, run and the status call answer."""

    model_config = ConfigDict(extra="ignore")

    Id: int
    ContactListId: int | None = None
    InvalidEmailCount: Counter = 0
    InvalidSmsCount: Counter = 0
    ProgressPercent: Counter = 0
    CurrentStatus: str | None = None
    StartDate: str | None = None
    FinishDate: str | None = None
    InsertedContacts: Counter = 0
    UpdatedContacts: Counter = 0
    DroppedContacts: Counter = 0
    NotUpdatedContacts: Counter = 0
    TotalContacts: Counter = 0

    @classmethod
    def from_body(cls, body: Any, call: str) -> "ImportJob":
        if not isinstance(body, dict):
            raise VendorProtocolError(f"Which50's answer to {call} is not an ImportJob object")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            fields = sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]})
            raise VendorProtocolError(f"Which50's ImportJob from {call} is unreadable (fields: {', '.join(fields)})") from None

    @property
    def state(self) -> VendorState:
        if says(self.CurrentStatus, FAILURE_WORDS):
            return VendorState.FAILED
        if self.FinishDate or self.ProgressPercent >= 100:
            return VendorState.DONE
        return VendorState.RUNNING

    @property
    def has_started(self) -> bool:
        """Whether a run reached Which50 (see STARTED_WORDS)."""
        return bool(self.FinishDate) or self.ProgressPercent > 0 or says(self.CurrentStatus, STARTED_WORDS)

    @property
    def percent(self) -> int:
        return max(0, min(100, self.ProgressPercent))

    def counts(self) -> dict[str, int]:
        """The job's counters under our names. No "received": Which50 counts nothing before the run."""
        return {
            "inserted": self.InsertedContacts,
            "updated": self.UpdatedContacts,
            "dropped": self.DroppedContacts,
            "not_updated": self.NotUpdatedContacts,
            "invalid_email": self.InvalidEmailCount,
            "invalid_sms": self.InvalidSmsCount,
            "total": self.TotalContacts,
        }

    def times(self) -> dict[str, str | None]:
        """StartDate and FinishDate as given, and as we read them (UTC)."""
        return {
            "start_date": self.StartDate,
            "finish_date": self.FinishDate,
            "started_at": _as_utc(self.StartDate),
            "finished_at": _as_utc(self.FinishDate),
        }


def says(status: str | None, stems: tuple[str, ...]) -> bool:
    """Whether a word of `status` starts with one of `stems`, before any negation."""
    for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", status or ""):
        word = word.lower()
        if word in NEGATIONS:
            return False
        if word.startswith(stems):
            return True
    return False


# The counters that make a finished import PARTIAL rather than SUCCEEDED when any is above zero.
SHORTFALL_COUNTS = ("not_updated", "invalid_email", "invalid_sms")


def _as_utc(text: str | None) -> str | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        log.warning("Which50 date %r is not ISO-8601; kept only as given", text)
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).isoformat()


# --- lists and fields (VENDORS.md 3.4) ------------------------------------------------------------


class ContactList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    Id: int
    Name: str | None = None
    Count: int | None = None


class SchemaField(BaseModel):
    model_config = ConfigDict(extra="ignore")

    Name: str
    MapType: str | None = None


def read_model[M: BaseModel](model: type[M], body: Any, call: str) -> M:
    try:
        return model.model_validate(body)
    except ValidationError:
        raise VendorProtocolError(f"Which50's answer to {call} is not a {model.__name__}") from None


def read_fields(body: Any) -> list[SchemaField]:
    if not isinstance(body, list):
        raise VendorProtocolError("Which50's answer to the list's fields is not a list")
    return [read_model(SchemaField, item, "the list's fields") for item in body]


def identifier_fields(fields: list[SchemaField], wanted: list[str], match: list[str]) -> list[str]:
    """Which of the import's `wanted` fields identify a contact (see IDENTIFIER_MAP_TYPES)."""
    typed = {f.Name for f in fields if f.MapType and IDENTIFIER_MAP_TYPES.search(f.MapType)}
    if not typed:
        typed = {f.Name for f in fields if IDENTIFIER_NAMES.search(f.Name)}
    return [name for name in wanted if name in typed or name in match]


# --- batches ---------------------------------------------------------------------------------------


def batch_warnings(content: bytes) -> list[tuple[int, list[str]]]:
    """(0-based position in the batch, warnings) for each echoed contact that has any."""
    try:
        body = json.loads(content) if content.strip() else None
    except (ValueError, RecursionError):
        raise VendorProtocolError("Which50 answered a batch with a body that is not JSON") from None
    if not isinstance(body, list):
        return []
    warnings = []
    for position, contact in enumerate(body):
        said = contact.get("ValidationWarnings") if isinstance(contact, dict) else None
        if isinstance(said, list) and (texts := [str(w) for w in said if w not in (None, "")]):
            warnings.append((position, texts))
    return warnings


def vendor_message(content: bytes) -> str | None:
    return error_message(content)
