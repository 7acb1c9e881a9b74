"""Pinpointe's JSON payloads, and every assumption we make about the parts its docs leave open.

Pinpointe documents its requests well and its responses poorly (docs/VENDORS.md 1.2, 1.5-1.8). Whatever
had to be guessed sits in the ASSUMPTIONS block below, each entry naming the docs/VENDORS.md section and
Unknown it answers, so a real response can correct a guess in one place. The parsers built on them
are lenient on purpose: they accept every shape the assumptions allow and raise VendorProtocolError
only when nothing usable is left.

This module imports no HTTP library: the webhook receiver uses `parse_webhook` and must stay cheap
to import (docs/DESIGN.md, Budgets: cold start).
"""

import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, model_validator

from jobrelay.domain.errors import VendorProtocolError
from jobrelay.domain.job import WebhookNotice
from jobrelay.domain.vendor_outcomes import VendorState
from jobrelay.vendors.pinpointe.params import AutoresponderResultsParams
from jobrelay.vendors.reading import CaselessModel, Page, as_int, collection, fold, has_key, lookup, nothing, text
from jobrelay.vendors.redaction import excerpt

log = logging.getLogger(__name__)


# =================================================================================================
# ASSUMPTIONS about what Pinpointe sends and accepts. Check each against a real response.
# =================================================================================================

# docs/VENDORS.md Unknowns 1-4, 6 and 7 (and the docs spelling one key two ways, `jobid` and `Jobid`):
# every answer is read through jobrelay.vendors.reading, the one reading layer every vendor shares.
# So, below and everywhere in this package: keys are matched without regard to case, `_`, `-` or
# spaces (`jobid`, `Jobid`, `JobId`, `job_id` are one key); a collection may come as a list, as an
# object keyed by id (the key is then the id) or as a single object; numbers may be written as
# strings; pages follow reading.follow_pages (see the pagination entries below).

# docs/VENDORS.md 1.2, Unknown 7: the docs call the answer the "response" element without showing
# whether it is wrapped in {"response": {...}}. Both forms are accepted.
RESPONSE_WRAPPER = "response"

# docs/VENDORS.md 1.2: success is "SUCCESS"; failure is "FAILED" (most calls) or "ERROR" (list pages).
SUCCESS_STATUS = "SUCCESS"
FAILURE_STATUSES = frozenset({"FAILED", "ERROR"})

# docs/VENDORS.md 1.2: the two documented error texts we act on (compared case-insensitively).
CREDENTIALS_REJECTED_TEXT = "unable to verify user credentials"
JOBS_NOT_FOUND_TEXT = "jobs not found"

# docs/VENDORS.md 1.5, Unknown 2: an async start's `data` holds "the job id, the time elapsed and a
# timestamp" under undocumented keys (the docs write both `jobid` and `Jobid`; caseless, as above).
# `data` may also be the bare id (a string or a number). A start whose answer we cannot read (not
# JSON, no status, SUCCESS without a job id) or that gets no answer at all (timeout, dropped
# connection) may still have started the export: it is never sent again (VendorOutcomeUnknown). An
# error answer (5xx, 429) is taken at its word, that nothing was started, and is retried.
JOB_ID_KEYS = ("jobid", "id")

# docs/VENDORS.md 1.6, Unknown 1: AsyncJobStatus's per-job entries are the collection in `data` when it
# is a list, else under the first of these keys inside `data`, else `data` itself (less its
# `pagination`): a list, an object keyed by job id (the key is the job id; it need not be repeated
# inside the entry) or a single entry.
JOB_LIST_KEYS = ("jobs", "job", "items")

# docs/VENDORS.md 1.6 and 1.7, Unknowns 1 and 3: the name of the result-link field, on a job entry and in
# the completion webhook. The first non-empty one wins.
RESULT_LINK_KEYS = ("url", "link", "file", "fileurl", "download_url", "result_url")

# docs/VENDORS.md 1.6, Unknown 1: a job entry may carry the number of records the export holds. When it
# does, the result file is checked against it too (a mismatch makes the job PARTIAL).
ENTRY_COUNT_KEYS = ("count", "records", "recordcount", "total", "totalrecords")

# docs/VENDORS.md 1.6, Unknown 1: a job entry may carry a percentage. It is shown as progress only: a
# percentage, even 100, never ends a job (the status word does).
ENTRY_PERCENT_KEYS = ("percent", "percentage", "progress", "percentcomplete")

# docs/VENDORS.md 1.3 and 1.6, Unknown 1: `pagination.next` may sit inside `data` or beside it; "0" (or
# no `next` at all) means there is no further page, and so does an empty page. A numeric `next` is
# the vendor's record number for the next page, but we ask for the record after those it actually
# sent (a vendor that caps its pages below our `limit` loses nothing); where its `next` disagrees
# with the records sent, that is tallied (and makes an autoresponder result PARTIAL, see below). A
# `next` that is not a number is an opaque cursor, sent back as given.
LAST_PAGE = "0"

# docs/VENDORS.md 1.6 guidance (a)-(e), Unknown 1: the per-job status words. Only `waiting` and `failed`
# are documented. Each entry is a word start, matched without regard to case and not preceded by a
# letter, so "Completed" and "job_complete" are done but "incomplete" is not. Checked top to bottom.
# Done means the status WORD says done (guidance c, narrowed): a result link (or a percentage)
# finishes a job only when there is no status word or the word is not in this table; a job whose
# word says it is still running stays running whatever link it carries.
STATUS_WORDS: dict[VendorState, tuple[str, ...]] = {
    VendorState.FAILED: ("fail", "error", "abort", "cancel"),
    VendorState.DONE: ("complet", "done", "finish", "success", "succeed"),
    VendorState.RUNNING: ("wait", "pend", "run", "process", "queue", "progress", "start", "active", "new"),
}
# Any other word (or none) counts as RUNNING (DONE with a result link), is logged with its raw value,
# and an excerpt of the entry goes on the job's timeline (PollOutcome.unknown_status_answer): the
# job's deadline, not a crash, ends a job whose status we cannot read.

# docs/VENDORS.md 1.7, Unknown 3: the completion webhook's payload is undocumented. Its job id, status and
# link are looked up under the keys above in these containers, innermost first (a path of keys from
# the top of the payload, each matched caselessly; the empty path is the top level itself).
WEBHOOK_CONTAINER_PATHS: tuple[tuple[str, ...], ...] = (("response", "data"), ("data",), ("response",), ())

# docs/VENDORS.md 1.4, Unknown 9: the pages of the four async calls we make say YYYYMMDD (midnight UTC
# at the start of the day). The newer ISO-Zulu advice is on the sync ContactDataSummary page and on
# GetNewsletterStatsAsync, neither of which we call.
WIRE_DATE_FORMAT = "%Y%m%d"

# docs/VENDORS.md 1.1: booleans and numbers travel as strings.
WIRE_TRUE, WIRE_FALSE = "true", "false"

# docs/VENDORS.md 1.1, Unknown 7: the docs only say "JSON POST request"; we send this content type.
REQUEST_CONTENT_TYPE = "application/json"

# docs/VENDORS.md 1.8, Unknown 4: the result link is fetched with a plain GET and no credentials (we
# never send the account's token to a link host), and it holds one JSON document.
RESULT_CONTENT_TYPE = "application/json"

# docs/VENDORS.md 1.8, Unknown 4: whether the result link's server honours HTTP ranges is not
# documented. A broken download is asked for again from the byte it broke at (`Range: bytes=N-`, and
# If-Range with a strong ETag when the first answer had one); 206 from that byte and 200 with the
# whole file (its first N bytes dropped) are both read. See jobrelay.vendors.resumable.

# docs/VENDORS.md 1.5.2 and 1.8, Unknown 4: the result file is one JSON object {"count": N, "subscribers":
# [...]} (subscriber exports; "events" for the contact data summary), also accepted: wrapped in
# `response` and/or `data`, keys in any casing, the records as a list, as an object keyed by id or as
# a single object, a bare top-level list of records (no count), the count as a number or a string.
# The file is stored unchanged; its records are counted as it streams (never held whole) and checked
# against its own count (and the AsyncJobStatus entry's, ENTRY_COUNT_KEYS). A file without a count is
# stored with nothing to check it against (SUCCEEDED, `reconciled` null); one that is not JSON or
# holds no record collection is a protocol error.
RESULT_FILE_WRAPPER_KEYS = ("response", "data")
RESULT_FILE_RECORD_KEYS = ("subscribers", "events", "records", "items", "item", "contacts")
RESULT_FILE_COUNT_KEYS = ("count", "total", "totalcount", "totalrecords", "recordcount")

# docs/VENDORS.md 1.6, Unknown 8: AsyncJobStatus answers "Jobs not found" for ids it does not know. A job
# may not be listed at once after its start, so that answer only fails the job once the configured
# grace period (VENDOR_NOT_FOUND_GRACE_SECONDS) has passed since the start; the same holds for a
# successful answer that does not list our job.

# docs/VENDORS.md 1.5.4, Unknown 5: the Tags call's article was not found. Its details are assumed to be
# the sync GetTagSubscribers ones with `notify` instead of `pagination` (what TagSubscribersParams
# accepts), under requesttype "Tags" as the AsyncJobStatus page names it.

# docs/VENDORS.md 1.10, Unknown 6: GetAutoresponderResults is documented twice, under requesttype
# "Autoresponders" (article 12000093162, seeds/002) and "Stats" (12000105822). We send the first, the
# one whose page we have in full; the sandbox accepts both.
AUTORESPONDER_REQUESTTYPE = "Autoresponders"

# docs/VENDORS.md 1.10, Unknown 6: the answer's sample could not be read. Its records are passed on
# unchanged, one JSON object per line whatever their fields (U+2028, U+2029 and U+0085 inside them
# are written as JSON escapes, so no reader splits a record in two). They are the collection in
# `data` when it is a list, else under the first of these keys inside `data`, else `data` itself
# less its `pagination`: an object whose other values are all objects is keyed by id, anything else
# is one record, unless it holds only the bookkeeping keys below. A collection keyed by id gets its
# key written into each record as RESULT_ID_KEYS[grouping] unless the record holds that key already.
# GetNewsletterStats answers in `data.item` (1.9), hence the first key. Nothing at all (no `data`,
# null, "", [], {}) is no records; a record that is not a JSON object is a protocol error.
RESULT_RECORD_KEYS = ("item", "items", "results", "records", "autoresponders", "sends", "stats")
RESULT_ID_KEYS = {"autoresponder": "autoresponderid", "send": "sendid"}

# docs/VENDORS.md 1.3 and 1.10, Unknowns 1 and 6: how counts beside the records are told apart. A key that
# names a total (RESULT_TOTAL_KEYS, beside the records or in `pagination`) and a `count` inside
# `pagination` are the number of records over all pages. A `count` beside the records (in `data`, next
# to the record key) is read as that page's count when it equals the records on the page on every
# page that gives one; otherwise, when it is the same number on every page, as a total; otherwise as
# page counts that disagree with what was sent. The records written are checked against the total
# and the sum of the page counts; a `next` that disagreed with the records sent is a check that
# disagrees too (we cannot tell whether records were skipped or repeated there): all make the job
# PARTIAL, explained in summary.json's `reconciliation`. No count at all leaves it unreconciled (null).
RESULT_TOTAL_KEYS = ("total", "totalcount", "totalrecords", "totalresults", "recordcount")
RESULT_PAGE_COUNT_KEY = "count"
RESULT_BOOKKEEPING_KEYS = ("pagination", "next", "limit", RESULT_PAGE_COUNT_KEY, *RESULT_TOTAL_KEYS)

# docs/VENDORS.md 1.3 and 1.10, Unknowns 1 and 6: `pagination.next` is read as for AsyncJobStatus, inside
# `data` or beside it, and a missing `next` ends the pages like LAST_PAGE does. We always paginate (the
# docs warn an unpaginated sync answer may be cut by the server's memory) and send `next` from "0".

# docs/VENDORS.md 1.10, Unknown 6: autoresponders are being retired in favour of Journeys, and the newer page
# says "no statistical information is available" for them: "expect empty results or errors". An empty
# answer is zero records, and so is a FAILED answer whose errormessage contains one of these texts
# (compared case-insensitively); the text is kept in the job's summary.json.
NO_RESULTS_TEXTS = ("no statistical information", "no results", "no records", "no data")

# docs/VENDORS.md 1.10, 1.2: the docs do not say how an unknown `autoresponderid` or `autorespondername` is
# answered. We assume a FAILED status with an errormessage, as every refused request is; it fails the
# job (VENDOR_REJECTED) with that reason, at its start. No documented call lists autoresponders, so if
# Pinpointe answered an unknown one with no records instead, the job would succeed with zero records.

# =================================================================================================


# --- the calls we make (docs/VENDORS.md 1.5.1-1.5.4 and 1.6) ------------------------------------------

STATUS_REQUESTTYPE, STATUS_REQUESTMETHOD = "API", "AsyncJobStatus"
# A synchronous, paginated call (1.10): its results are read page by page in the Collect step.
AUTORESPONDER_REQUESTMETHOD = "GetAutoresponderResults"


def _word_starts(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![a-z])(?:" + "|".join(map(re.escape, words)) + ")", re.IGNORECASE)


_STATUS_PATTERNS = {state: _word_starts(words) for state, words in STATUS_WORDS.items()}


def known_status(raw_status: str | None) -> VendorState | None:
    """The state a status word names in STATUS_WORDS (any casing), None for a word not in it."""
    word = raw_status or ""
    for state, pattern in _STATUS_PATTERNS.items():  # FAILED, DONE, RUNNING: the order matters
        if pattern.search(word):
            return state
    return None


def vendor_state(raw_status: str | None, *, has_result_link: bool) -> VendorState:
    """Our reading of a Pinpointe job status word (see STATUS_WORDS): the word decides; a result link
    counts only when there is no word or the word is not in the table."""
    state = known_status(raw_status)
    if state is not None:
        return state
    log.warning(
        "Pinpointe job status %r is not in our table; treating the job as %s",
        raw_status,
        "done (it has a result link)" if has_result_link else "running",
    )
    return VendorState.DONE if has_result_link else VendorState.RUNNING


# --- requests --------------------------------------------------------------------------------------


def async_details(params: BaseModel, webhook_url: str) -> dict[str, Any]:
    """The `details` of an async start: each param in Pinpointe's wire form, unused optional elements
    left out rather than sent empty (docs/VENDORS.md 1.1), and `notify` pointing at our webhook (1.5)."""
    details = {name: wire for name, value in params if (wire := wire_value(value)) is not None}
    details["notify"] = {"type": "webhook", "value": webhook_url}
    return details


def autoresponder_details(params: AutoresponderResultsParams) -> dict[str, Any]:
    """The `details` of GetAutoresponderResults without its `pagination` (docs/VENDORS.md 1.10): the one
    autoresponder asked for (none: all of them) and the grouping, always written out."""
    details: dict[str, Any] = {}
    if params.autoresponderid is not None:
        details["autoresponderid"] = params.autoresponderid
    elif params.autorespondername is not None:
        details["autorespondername"] = params.autorespondername
    details["grouping"] = params.grouping
    return details


def wire_value(value: Any) -> Any:
    """A param value as Pinpointe writes it; None for an element that must be left out."""
    match value:
        case None:
            return None
        case bool():
            return WIRE_TRUE if value else WIRE_FALSE
        case int() | float():
            return str(value)
        case date():
            return value.strftime(WIRE_DATE_FORMAT)
        case list() | tuple():
            items = [wire for item in value if (wire := wire_value(item)) is not None]
            return items or None
        case _:
            return value or None


class ApiRequest(BaseModel):
    """The envelope every call is sent in (docs/VENDORS.md 1.1). The token is a SecretStr so that no repr,
    log line or error message can show it; `wire()` is the only place it is revealed."""

    username: str
    usertoken: SecretStr
    requesttype: str
    requestmethod: str
    details: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return f"{self.requesttype}/{self.requestmethod}"

    def wire(self) -> dict[str, Any]:
        body = self.model_dump(exclude_none=True)
        body["usertoken"] = self.usertoken.get_secret_value()
        return body


# --- responses -------------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    """Pinpointe writes numbers as strings but may not always: accept both for text fields."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


VendorText = Annotated[str, BeforeValidator(_text)]


def first_text(containers: list[Any], keys: tuple[str, ...]) -> str | None:
    """The first non-empty string (or number, as text) found under `keys` (caseless), container by
    container."""
    for container in containers:
        if isinstance(container, dict):
            for key in keys:
                value = text(lookup(container, key))
                if value is not None:
                    return value
    return None


def unwrap_response(body: dict[str, Any]) -> dict[str, Any]:
    """The response element, whether or not it came wrapped in {"response": ...} (Unknown 7)."""
    inner = lookup(body, RESPONSE_WRAPPER)
    if not has_key(body, "status") and isinstance(inner, dict):
        return inner
    return body


class ApiResponse(CaselessModel):
    """The response element (docs/VENDORS.md 1.2): a status, then `data` or an `errormessage`."""

    model_config = ConfigDict(extra="ignore")

    status: VendorText
    data: Any = None
    errormessage: VendorText | None = None
    pagination: Any = None  # where a paginated answer may put it (Unknown 1)

    @classmethod
    def from_body(cls, body: dict[str, Any], call: str) -> "ApiResponse":
        try:
            return cls.model_validate(unwrap_response(body))
        except ValidationError:
            raise VendorProtocolError(f"Pinpointe's answer to {call} has no readable status", answer=excerpt(body)) from None

    @property
    def succeeded(self) -> bool:
        return self.status.strip().upper() == SUCCESS_STATUS

    @property
    def failed(self) -> bool:
        return self.status.strip().upper() in FAILURE_STATUSES

    @property
    def reason(self) -> str:
        return (self.errormessage or "").strip() or f"status {self.status}"

    def says(self, text: str) -> bool:
        return text in (self.errormessage or "").lower()

    def excerpt(self) -> str:
        """A bounded, redacted excerpt of this answer, for an error that keeps what we could not read."""
        return excerpt(self.model_dump(exclude_none=True))


class StartedJob(BaseModel):
    """`data` of an async start (docs/VENDORS.md 1.5): the job id, and perhaps elapsed time and timestamp."""

    jobid: Annotated[VendorText, Field(min_length=1)]
    elapsed: VendorText | None = None
    timestamp: VendorText | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_shapes(cls, data: Any) -> Any:
        if isinstance(data, str | int) and not isinstance(data, bool):
            return {"jobid": data}
        if isinstance(data, dict):
            return {
                "jobid": first_text([data], JOB_ID_KEYS),
                "elapsed": text(lookup(data, "elapsed")),
                "timestamp": text(lookup(data, "timestamp")),
            }
        return data

    @classmethod
    def from_response(cls, response: ApiResponse, call: str) -> "StartedJob":
        """The started job, or VendorProtocolError (with an excerpt of the answer) when `data` names
        no job id; the client turns that into VendorOutcomeUnknown (the export may have started)."""
        try:
            return cls.model_validate(response.data)
        except ValidationError:
            raise VendorProtocolError(f"Pinpointe's answer to {call} carries no job id", answer=response.excerpt()) from None


class JobEntry(BaseModel):
    """One job in an AsyncJobStatus answer (docs/VENDORS.md 1.6). Every field is optional: none is
    confirmed. `raw` is the entry as Pinpointe sent it, for an excerpt when its word is unknown."""

    model_config = ConfigDict(extra="ignore")

    jobid: VendorText | None = None
    requestmethod: VendorText | None = None
    status: VendorText | None = None
    result_url: str | None = None
    errormessage: VendorText | None = None
    created: VendorText | None = None
    updated: VendorText | None = None
    count: int | None = None  # the records of the export, when the entry says (ENTRY_COUNT_KEYS)
    percent: int | None = None  # shown as progress, never a reason to finish (ENTRY_PERCENT_KEYS)
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _assumed_keys(cls, entry: Any) -> Any:
        if not isinstance(entry, dict):
            return entry  # rejected by the field validation
        percent = as_int(lookup(entry, *ENTRY_PERCENT_KEYS))
        return {
            "jobid": first_text([entry], JOB_ID_KEYS),
            "requestmethod": text(lookup(entry, "requestmethod")),
            "status": text(lookup(entry, "status")),
            "result_url": first_text([entry], RESULT_LINK_KEYS),
            "errormessage": text(lookup(entry, "errormessage", "error", "message")),
            "created": text(lookup(entry, "created")),
            "updated": text(lookup(entry, "updated")),
            "count": as_int(lookup(entry, *ENTRY_COUNT_KEYS)),
            "percent": percent if percent is not None and 0 <= percent <= 100 else None,
            "raw": entry,
        }

    @property
    def state(self) -> VendorState:
        return vendor_state(self.status, has_result_link=self.result_url is not None)

    @property
    def status_known(self) -> bool:
        return known_status(self.status) is not None


def job_entries(data: Any) -> list[JobEntry]:
    """The job entries of one AsyncJobStatus answer's `data` (JOB_LIST_KEYS): a list, an object keyed
    by job id, or a single entry."""
    if isinstance(data, dict):
        listed = lookup(data, *JOB_LIST_KEYS, default=_NOT_LISTED)
        found = _without(data, ("pagination",)) if listed is _NOT_LISTED else listed
    elif isinstance(data, list) or nothing(data):
        found = data
    else:
        raise VendorProtocolError("Pinpointe's AsyncJobStatus answer has no job list in `data`", answer=excerpt(data))
    try:
        entries = collection(found, id_key="jobid", what="Pinpointe's AsyncJobStatus answer")
        return [JobEntry.model_validate(entry) for entry in entries]
    except (VendorProtocolError, ValidationError):
        raise VendorProtocolError("Pinpointe's AsyncJobStatus answer has unreadable job entries", answer=excerpt(data)) from None


_NOT_LISTED = object()


def _without(mapping: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """`mapping` less `keys` (compared by fold)."""
    dropped = {fold(key) for key in keys}
    return {k: v for k, v in mapping.items() if not (isinstance(k, str) and fold(k) in dropped)}


@dataclass(frozen=True)
class NextPage:
    """What an answer says about the page after it (docs/VENDORS.md 1.3), in reading.Page's terms."""

    more: bool
    cursor: str | None = None  # a `next` that is not a record number: sent back as given
    vendor_next: int | None = None  # a `next` that is one: the vendor's own offset, to compare with ours


def next_page(response: ApiResponse) -> NextPage:
    """`pagination.next`, inside `data` or beside it: "0" or missing ends the pages."""
    inside = lookup(response.data, "pagination") if isinstance(response.data, dict) else None
    following = first_text([inside, response.pagination], ("next",))
    if following is None or following == LAST_PAGE:
        return NextPage(more=False)
    number = as_int(following)
    if number is None:
        return NextPage(more=True, cursor=following)
    if number <= 0:
        return NextPage(more=False)
    return NextPage(more=True, vendor_next=number)


def status_page(response: ApiResponse) -> Page:
    """One page of AsyncJobStatus entries, with its pagination signal."""
    following = next_page(response)
    return Page(
        records=job_entries(response.data),
        more=following.more,
        cursor=following.cursor,
        vendor_next=following.vendor_next,
        answer=response.excerpt,
    )


@dataclass(frozen=True)
class ResultsPage(Page):
    """One page of a paginated results call such as GetAutoresponderResults (docs/VENDORS.md 1.3, 1.10):
    the records and paging signal (reading.Page), and the counts Pinpointe gave beside them."""

    note: str | None = None  # Pinpointe's own words when it answered that there is nothing (NO_RESULTS_TEXTS)
    page_count: int | None = None  # a bare `count` beside the records (a page count or a total: see above)
    total: int | None = None  # a count that names a total (RESULT_TOTAL_KEYS, or `count` in `pagination`)

    @classmethod
    def from_response(cls, response: ApiResponse, call: str, *, id_key: str = "id") -> "ResultsPage":
        """The page in a SUCCESS answer, or the empty last page that a "nothing there" answer is."""
        if not response.succeeded:
            if says_no_results(response):
                return cls(records=[], more=False, note=response.reason)
            raise ValueError("only a successful or a no-results answer is a page")
        if isinstance(response.data, str) and _no_results_text(response.data):
            return cls(records=[], more=False, note=response.data.strip())
        records, beside = _result_records(response.data, call, id_key)
        following = next_page(response)
        paginations = [p for p in (_pagination_of(response.data), response.pagination) if isinstance(p, dict)]
        total = next(
            (n for container in [beside, *paginations] if (n := as_int(lookup(container, *RESULT_TOTAL_KEYS))) is not None),
            None,
        )
        if total is None:
            total = next((n for p in paginations if (n := as_int(lookup(p, RESULT_PAGE_COUNT_KEY))) is not None), None)
        return cls(
            records=records,
            more=following.more,
            cursor=following.cursor,
            vendor_next=following.vendor_next,
            answer=response.excerpt,
            page_count=as_int(lookup(beside, RESULT_PAGE_COUNT_KEY)),
            total=total,
        )


def says_no_results(response: ApiResponse) -> bool:
    """A FAILED answer that only says there are no results (NO_RESULTS_TEXTS)."""
    return response.failed and _no_results_text(response.errormessage or "")


def _no_results_text(text: str) -> bool:
    return any(words in text.lower() for words in NO_RESULTS_TEXTS)


def _pagination_of(data: Any) -> Any:
    return lookup(data, "pagination") if isinstance(data, dict) else None


def _result_records(data: Any, call: str, id_key: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The records of one page, wherever RESULT_RECORD_KEYS says they may be, and the keys that came
    beside them (where a count may be; empty when `data` is itself the records)."""
    beside: dict[str, Any] = {}
    found = data
    if isinstance(data, dict):
        key = next((name for name in data if isinstance(name, str) and fold(name) in _RECORD_KEYS), None)
        if key is not None:
            found, beside = data[key], {k: v for k, v in data.items() if k != key}
        else:
            rest = _without(data, ("pagination",))
            bookkeeping = {k: v for k, v in rest.items() if isinstance(k, str) and fold(k) in _BOOKKEEPING_KEYS}
            others = {k: v for k, v in rest.items() if k not in bookkeeping}
            if not others:
                found, beside = None, bookkeeping  # only pagination and counts: no records
            elif all(isinstance(value, dict) for value in others.values()):
                found, beside = others, bookkeeping  # keyed by id, counts beside
            else:
                found = rest  # one record: its own fields (a `count` among them) are kept
    what = f"Pinpointe's answer to {call}"
    try:
        records = collection(found, id_key=id_key, what=what)
    except VendorProtocolError as error:
        raise VendorProtocolError(f"{error} (a record of the page)", answer=excerpt(data)) from None
    return records, beside


_RECORD_KEYS = tuple(fold(key) for key in RESULT_RECORD_KEYS)
_BOOKKEEPING_KEYS = frozenset(fold(key) for key in RESULT_BOOKKEEPING_KEYS)


def find_job(entries: list[JobEntry], jobid: str) -> JobEntry | None:
    """Our job among the entries. We ask for one job id, so a lone entry without an id is taken to be
    ours (Unknown 1: the entry keys are not confirmed)."""
    for entry in entries:
        if entry.jobid == jobid:
            return entry
    if len(entries) == 1 and entries[0].jobid is None:
        return entries[0]
    return None


# --- completion webhook ----------------------------------------------------------------------------


def parse_webhook(body: bytes) -> WebhookNotice:
    """Read a completion webhook's body. Never raises: an unreadable body gives an empty notice."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested beyond the parser's reach
        return WebhookNotice()
    containers = _webhook_containers(payload)
    return WebhookNotice(
        jobid=first_text(containers, JOB_ID_KEYS),
        status=first_text(containers, ("status",)),
        result_url=first_text(containers, RESULT_LINK_KEYS),
    )


def _webhook_containers(payload: Any) -> list[dict[str, Any]]:
    return [c for path in WEBHOOK_CONTAINER_PATHS if isinstance(c := _at_path(payload, path), dict)]


def _at_path(payload: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(payload, dict):
            return None
        payload = lookup(payload, key)
    return payload
