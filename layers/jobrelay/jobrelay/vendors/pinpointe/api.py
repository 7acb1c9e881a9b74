"""Pinpointe's JSON payloads, and every assumption we make about the parts its docs leave open.

Pinpointe documents its requests well and its responses poorly (VENDORS.md 1.2, 1.5-1.8). Whatever
had to be guessed sits in the ASSUMPTIONS block below, each entry naming the VENDORS.md section and
Unknown it answers, so a real response can correct a guess in one place. The parsers built on them
are lenient on purpose: they accept every shape the assumptions allow and raise VendorProtocolError
only when nothing usable is left.

This module imports no HTTP library: the webhook receiver uses `parse_webhook` and must stay cheap
to import (DESIGN.md, Budgets: cold start).
"""

import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, model_validator

from jobrelay.domain.errors import VendorProtocolError
from jobrelay.ports import VendorState
from jobrelay.vendors.pinpointe.params import AutoresponderResultsParams

log = logging.getLogger(__name__)


# =================================================================================================
# ASSUMPTIONS about what Pinpointe sends and accepts. Check each against a real response.
# =================================================================================================

# VENDORS.md 1.2, Unknown 7: the docs call the answer the "response" element without showing
# whether it is wrapped in {"response": {...}}. Both forms are accepted.
RESPONSE_WRAPPER = "response"

# VENDORS.md 1.2: success is "SUCCESS"; failure is "FAILED" (most calls) or "ERROR" (list pages).
SUCCESS_STATUS = "SUCCESS"
FAILURE_STATUSES = frozenset({"FAILED", "ERROR"})

# VENDORS.md 1.2: the two documented error texts we act on (compared case-insensitively).
CREDENTIALS_REJECTED_TEXT = "unable to verify user credentials"
JOBS_NOT_FOUND_TEXT = "jobs not found"

# VENDORS.md 1.5, Unknown 2: an async start's `data` holds "the job id, the time elapsed and a
# timestamp" under undocumented keys. `data` may also be the bare id (a string or a number).
JOB_ID_KEYS = ("jobid", "job_id", "jobId", "id")

# VENDORS.md 1.6, Unknown 1: AsyncJobStatus's per-job entries are taken from `data` when it is a
# list, else from the first of these keys inside `data`, else `data` itself is one entry.
JOB_LIST_KEYS = ("jobs", "job", "items")

# VENDORS.md 1.6 and 1.7, Unknowns 1 and 3: the name of the result-link field, on a job entry and in
# the completion webhook. The first non-empty one wins.
RESULT_LINK_KEYS = ("url", "link", "file", "fileurl", "file_url", "download_url", "result_url")

# VENDORS.md 1.3 and 1.6, Unknown 1: `pagination.next` may sit inside `data` or beside it; "0" (or
# no value) means there is no further page.
LAST_PAGE = "0"

# VENDORS.md 1.6 guidance (a)-(e), Unknown 1: the per-job status words. Only `waiting` and `failed`
# are documented. Each entry is a word start, matched without regard to case and not preceded by a
# letter, so "Completed" and "job_complete" are done but "incomplete" is not. Checked top to bottom;
# a job whose result link is present is done whatever its word (guidance c) unless it failed.
STATUS_WORDS: dict[VendorState, tuple[str, ...]] = {
    VendorState.FAILED: ("fail", "error"),
    VendorState.DONE: ("complet", "done", "finish"),
    VendorState.RUNNING: ("wait", "pend", "run", "process", "queue"),
}
# Any other word (or none) counts as RUNNING and is logged with its raw value: the job's deadline,
# not a crash, ends a job whose status we cannot read.

# VENDORS.md 1.7, Unknown 3: the completion webhook's payload is undocumented. Its job id, status and
# link are looked up under the keys above in these containers, innermost first (a path of keys from
# the top of the payload; the empty path is the top level itself).
WEBHOOK_CONTAINER_PATHS: tuple[tuple[str, ...], ...] = (("response", "data"), ("data",), ("response",), ())

# VENDORS.md 1.4, Unknown 9: the pages of the four async calls we make say YYYYMMDD (midnight UTC
# at the start of the day). The newer ISO-Zulu advice is on the sync ContactDataSummary page and on
# GetNewsletterStatsAsync, neither of which we call.
WIRE_DATE_FORMAT = "%Y%m%d"

# VENDORS.md 1.1: booleans and numbers travel as strings.
WIRE_TRUE, WIRE_FALSE = "true", "false"

# VENDORS.md 1.1, Unknown 7: the docs only say "JSON POST request"; we send this content type.
REQUEST_CONTENT_TYPE = "application/json"

# VENDORS.md 1.8, Unknown 4: the result link is fetched with a plain GET and no credentials (we
# never send the account's token to a link host), and it holds one JSON document.
RESULT_CONTENT_TYPE = "application/json"

# VENDORS.md 1.6, Unknown 8: AsyncJobStatus answers "Jobs not found" for ids it does not know. A job
# may not be listed at once after its start, so that answer only fails the job once the configured
# grace period (VENDOR_NOT_FOUND_GRACE_SECONDS) has passed since the start; the same holds for a
# successful answer that does not list our job.

# VENDORS.md 1.5.4, Unknown 5: the Tags call's article was not found. Its details are assumed to be
# the sync GetTagSubscribers ones with `notify` instead of `pagination` (what TagSubscribersParams
# accepts), under requesttype "Tags" as the AsyncJobStatus page names it.

# VENDORS.md 1.10, Unknown 6: GetAutoresponderResults is documented twice, under requesttype
# "Autoresponders" (article 12000093162, seeds/002) and "Stats" (12000105822). We send the first, the
# one whose page we have in full; the sandbox accepts both.
AUTORESPONDER_REQUESTTYPE = "Autoresponders"

# VENDORS.md 1.10, Unknown 6: the answer's sample could not be read. Its records are passed on
# unchanged, one JSON object per line, whatever their fields. They are taken from `data` when it is
# a list, else from the first of these keys inside `data` (a lone object there is one record), else
# `data` itself (less its `pagination`) is one record, unless it holds only the bookkeeping keys below.
# GetNewsletterStats answers in `data.item` (1.9), hence the first key. Nothing at all (no `data`,
# null, "", [], {}) is no records; a record that is not a JSON object is a protocol error.
RESULT_RECORD_KEYS = ("item", "items", "results", "records", "autoresponders", "sends", "stats")
RESULT_BOOKKEEPING_KEYS = frozenset({"pagination", "count", "total", "next", "limit"})

# VENDORS.md 1.3 and 1.10, Unknowns 1 and 6: `pagination.next` is read as for AsyncJobStatus, inside
# `data` or beside it, and a missing `next` ends the pages like LAST_PAGE does. We always paginate (the
# docs warn an unpaginated sync answer may be cut by the server's memory) and send `next` from "0".

# VENDORS.md 1.10, Unknown 6: autoresponders are being retired in favour of Journeys, and the newer page
# says "no statistical information is available" for them: "expect empty results or errors". An empty
# answer is zero records, and so is a FAILED answer whose errormessage contains one of these texts
# (compared case-insensitively); the text is kept in the job's summary.json.
NO_RESULTS_TEXTS = ("no statistical information", "no results", "no records", "no data")

# VENDORS.md 1.10, 1.2: the docs do not say how an unknown `autoresponderid` or `autorespondername` is
# answered. We assume a FAILED status with an errormessage, as every refused request is; it fails the
# job (VENDOR_REJECTED) with that reason, at its start. No documented call lists autoresponders, so if
# Pinpointe answered an unknown one with no records instead, the job would succeed with zero records.

# =================================================================================================


# --- the calls we make (VENDORS.md 1.5.1-1.5.4 and 1.6) ------------------------------------------

STATUS_REQUESTTYPE, STATUS_REQUESTMETHOD = "API", "AsyncJobStatus"
# A synchronous, paginated call (1.10): its results are read page by page in the Collect step.
AUTORESPONDER_RESULTS_OPERATION = "pinpointe.autoresponder_results"
AUTORESPONDER_REQUESTMETHOD = "GetAutoresponderResults"


@dataclass(frozen=True)
class AsyncMethod:
    requesttype: str
    requestmethod: str


ASYNC_METHODS: dict[str, AsyncMethod] = {
    "pinpointe.newsletter_contact_data_summary": AsyncMethod(
        "Newsletters", "GetNewsletterContactDataSummaryAsync"
    ),
    "pinpointe.list_subscribers": AsyncMethod("Lists", "GetListSubscribersAsync"),
    "pinpointe.segment_subscribers": AsyncMethod("Segments", "GetSegmentSubscribersAsync"),
    "pinpointe.tag_subscribers": AsyncMethod("Tags", "GetTagSubscribersAsync"),
}


def _word_starts(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![a-z])(?:" + "|".join(map(re.escape, words)) + ")", re.IGNORECASE)


_STATUS_PATTERNS = {state: _word_starts(words) for state, words in STATUS_WORDS.items()}


def vendor_state(raw_status: str | None, *, has_result_link: bool) -> VendorState:
    """Our reading of a Pinpointe job status word (see STATUS_WORDS)."""
    word = raw_status or ""
    if _STATUS_PATTERNS[VendorState.FAILED].search(word):
        return VendorState.FAILED
    if has_result_link or _STATUS_PATTERNS[VendorState.DONE].search(word):
        return VendorState.DONE
    if not _STATUS_PATTERNS[VendorState.RUNNING].search(word):
        log.warning("Pinpointe job status %r is not in our table; treating the job as running", raw_status)
    return VendorState.RUNNING


# --- requests --------------------------------------------------------------------------------------


def async_details(params: BaseModel, webhook_url: str) -> dict[str, Any]:
    """The `details` of an async start: each param in Pinpointe's wire form, unused optional elements
    left out rather than sent empty (VENDORS.md 1.1), and `notify` pointing at our webhook (1.5)."""
    details = {name: wire for name, value in params if (wire := wire_value(value)) is not None}
    details["notify"] = {"type": "webhook", "value": webhook_url}
    return details


def autoresponder_details(params: AutoresponderResultsParams) -> dict[str, Any]:
    """The `details` of GetAutoresponderResults without its `pagination` (VENDORS.md 1.10): the one
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
    """The envelope every call is sent in (VENDORS.md 1.1). The token is a SecretStr so that no repr,
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


def first_text(containers: list[dict[str, Any]], keys: tuple[str, ...]) -> str | None:
    """The first non-empty string (or number, as text) found under `keys`, container by container."""
    for container in containers:
        for key in keys:
            value = _text(container.get(key))
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def unwrap_response(body: dict[str, Any]) -> dict[str, Any]:
    """The response element, whether or not it came wrapped in {"response": ...} (Unknown 7)."""
    inner = body.get(RESPONSE_WRAPPER)
    if "status" not in body and isinstance(inner, dict):
        return inner
    return body


class ApiResponse(BaseModel):
    """The response element (VENDORS.md 1.2): a status, then `data` or an `errormessage`."""

    model_config = ConfigDict(extra="ignore")

    status: VendorText
    data: Any = None
    errormessage: VendorText | None = None
    pagination: dict[str, Any] | None = None  # where a paginated answer may put it (Unknown 1)

    @classmethod
    def from_body(cls, body: dict[str, Any], call: str) -> "ApiResponse":
        try:
            return cls.model_validate(unwrap_response(body))
        except ValidationError:
            raise VendorProtocolError(f"Pinpointe's answer to {call} has no readable status") from None

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


class StartedJob(BaseModel):
    """`data` of an async start (VENDORS.md 1.5): the job id, and perhaps elapsed time and timestamp."""

    jobid: Annotated[VendorText, Field(min_length=1)]
    elapsed: VendorText | None = None
    timestamp: VendorText | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_shapes(cls, data: Any) -> Any:
        if isinstance(data, str | int) and not isinstance(data, bool):
            return {"jobid": data}
        if isinstance(data, dict):
            return {**data, "jobid": first_text([data], JOB_ID_KEYS)}
        return data

    @classmethod
    def from_response(cls, response: ApiResponse, call: str) -> "StartedJob":
        try:
            return cls.model_validate(response.data)
        except ValidationError:
            raise VendorProtocolError(f"Pinpointe's answer to {call} carries no job id") from None


class JobEntry(BaseModel):
    """One job in an AsyncJobStatus answer (VENDORS.md 1.6). Every field is optional: none is
    confirmed."""

    model_config = ConfigDict(extra="ignore")

    jobid: VendorText | None = None
    requestmethod: VendorText | None = None
    status: VendorText | None = None
    result_url: str | None = None
    errormessage: VendorText | None = None
    created: VendorText | None = None
    updated: VendorText | None = None

    @model_validator(mode="before")
    @classmethod
    def _assumed_keys(cls, entry: Any) -> Any:
        if not isinstance(entry, dict):
            return entry  # rejected by the field validation
        return {
            **entry,
            "jobid": first_text([entry], JOB_ID_KEYS),
            "result_url": first_text([entry], RESULT_LINK_KEYS),
        }

    @property
    def state(self) -> VendorState:
        return vendor_state(self.status, has_result_link=self.result_url is not None)


class JobStatusPage(BaseModel):
    jobs: list[JobEntry]
    next: str | None  # the `next` value for the following page; None on the last page

    @classmethod
    def from_response(cls, response: ApiResponse) -> "JobStatusPage":
        try:
            jobs = [JobEntry.model_validate(entry) for entry in _job_entries(response.data)]
        except ValidationError:
            raise VendorProtocolError("Pinpointe's AsyncJobStatus answer has unreadable job entries") from None
        return cls(jobs=jobs, next=_next_page(response))


def _job_entries(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in JOB_LIST_KEYS:
            if key in data:
                found = data[key]
                return found if isinstance(found, list) else [found]
        return [data]
    raise VendorProtocolError("Pinpointe's AsyncJobStatus answer has no job list in `data`")


def _next_page(response: ApiResponse) -> str | None:
    inside_data = response.data.get("pagination") if isinstance(response.data, dict) else None
    paginations = [p for p in (inside_data, response.pagination) if isinstance(p, dict)]
    following = first_text(paginations, ("next",))
    return None if following in (None, LAST_PAGE) else following


class ResultsPage(BaseModel):
    """One page of a paginated results call such as GetAutoresponderResults (VENDORS.md 1.3, 1.10)."""

    records: list[dict[str, Any]]
    next: str | None  # the `next` value for the following page; None on the last page
    note: str | None = None  # Pinpointe's own words when it answered that there is nothing (NO_RESULTS_TEXTS)

    @classmethod
    def from_response(cls, response: ApiResponse, call: str) -> "ResultsPage":
        """The page in a SUCCESS answer, or the empty last page that a "nothing there" answer is."""
        if not response.succeeded:
            if says_no_results(response):
                return cls(records=[], next=None, note=response.reason)
            raise ValueError("only a successful or a no-results answer is a page")
        if isinstance(response.data, str) and _no_results_text(response.data):
            return cls(records=[], next=None, note=response.data.strip())
        return cls(records=_result_records(response.data, call), next=_next_page(response))


def says_no_results(response: ApiResponse) -> bool:
    """A FAILED answer that only says there are no results (NO_RESULTS_TEXTS)."""
    return response.failed and _no_results_text(response.errormessage or "")


def _no_results_text(text: str) -> bool:
    return any(words in text.lower() for words in NO_RESULTS_TEXTS)


def _nothing(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


def _result_records(data: Any, call: str) -> list[dict[str, Any]]:
    """The records of one page, wherever RESULT_RECORD_KEYS says they may be."""
    found = data
    if isinstance(data, dict):
        key = next((key for key in RESULT_RECORD_KEYS if key in data), None)
        if key is not None:
            found = data[key]
        elif set(data) <= RESULT_BOOKKEEPING_KEYS:
            found = None  # only pagination and counts: no records
        else:
            found = {name: value for name, value in data.items() if name != "pagination"}  # one record
    if _nothing(found):
        return []
    records = found if isinstance(found, list) else [found]
    for position, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise VendorProtocolError(
                f"Pinpointe's answer to {call} has a record that is not a JSON object (record {position} of the page)"
            )
    return records


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


class WebhookNotice(BaseModel):
    """What we could read from a completion webhook (VENDORS.md 1.7); every field may be missing.
    The notice is not trusted: the job is cross-checked with AsyncJobStatus, and its link is only
    followed if its host is on the account's allowlist."""

    jobid: str | None = None
    status: str | None = None
    result_url: str | None = None


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
        payload = payload.get(key)
    return payload
