"""A Pinpointe simulator: the JSON API as docs/VENDORS.md section 1 describes it, over real sockets.

POST /apijson.php serves API/Test, the four async starts, API/AsyncJobStatus and the synchronous,
paginated GetAutoresponderResults (docs/VENDORS.md 1.10, generated stats of the configured
autoresponders, `autoresponder_sends` sends each; `limit`/`next` pages, `next` "0" on the last one;
an unknown id or name answers FAILED "Autoresponder not found"). A started job goes
waiting -> processing -> complete (or failed) over `job_seconds`; when it ends, a webhook notice is
POSTed to `notify.value`. GET /files/<jobid>.json streams the result: a deterministic document
generated record by record, so it can be as large as a benchmark needs without being held in memory.

The simulator is stricter than Pinpointe is known to be, so that it catches what the adapter must
not send: unknown or empty elements, booleans and numbers not written as strings, dates not in
YYYYMMDD. Where the docs say nothing (docs/VENDORS.md Unknowns 1-4) it answers in the shapes the adapter
assumes (jobrelay/vendors/pinpointe/api.py): start `data` = {"jobid", "elapsed", "timestamp"};
AsyncJobStatus `data` = {"jobs": [{"jobid", "requestmethod", "status", "url", "created",
"updated"}], "pagination": {"next"}}; webhook = {"jobid", "status", "url", "requestmethod"};
GetAutoresponderResults `data` = {"item": [records], "pagination": {"next"}} (Unknown 6).

Other shapes the docs allow are switched on through PinpointeConfig (the job id under `Jobid`, status
data keyed by job id, status words in other casings and synonyms, records keyed by id, pages capped
below the limit asked for, a `next` counted from that limit, result files wrapped, keyed, capitalised
or a bare list, a count claiming more than the file holds), and so are unreadable start answers.
Result downloads honour `Range: bytes=N-` (206) unless `file_ranges` is off (then 200, whole, as a
server without ranges answers), and `file_cuts` breaks the next downloads part way (Unknown 4).

Extra control routes: GET /_sandbox/jobs, GET /_sandbox/webhooks. Run it alone with
`python -m devstack.sandbox.pinpointe --port 3100`.
"""

import argparse
import hmac
import itertools
import json
import re
import secrets
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import Field

from devstack.sandbox.http import LOOPBACK, FaultConfig, Request, Response, SandboxServer, iso_utc, serve_until_interrupted

API_PATH = "/apijson.php"
FILES_PREFIX = "/files/"
CREDENTIALS_REJECTED = "Unable to verify user credentials"
JOBS_NOT_FOUND = "Jobs not found"
DOWNLOAD = "ResultDownload"  # how result downloads appear in the call log's `requestmethod`


DEFAULT_AUTORESPONDERS = {"301": "Welcome series", "302": "Win-back", "303": "Birthday"}


class PinpointeConfig(FaultConfig):
    """What tests switch through POST /_sandbox/config. Job behaviour (duration, size, failure,
    webhook delivery) is fixed when a job starts; faults apply to the calls that come next."""

    job_seconds: float = Field(default=2.0, ge=0, description="from start to complete/failed")
    records: int = Field(default=50, ge=0, description="records in each job's result file")
    fail_jobs: bool | str = Field(default=False, description="jobs end failed (a string: the error message)")
    wrap_response: bool = Field(default=False, description='answers come as {"response": {...}}')
    drop_webhook: bool = False
    duplicate_webhook: bool = Field(default=False, description="send each webhook twice")
    late_webhook_seconds: float = Field(default=0.0, ge=0, description="send webhooks this long after the end")
    webhook_timeout_seconds: float = Field(default=2.0, gt=0)
    not_visible_seconds: float = Field(default=0.0, ge=0, description='AsyncJobStatus: "Jobs not found" this long')
    expired_token: bool = Field(default=False, description="every API call is refused with HTTP 401")
    file_5xx: int = Field(default=0, ge=0, description="the next N result downloads answer 503")
    file_ranges: bool = Field(default=True, description="result downloads honour Range: bytes=N- (206); False: 200, whole")
    file_cuts: int = Field(
        default=0, ge=0, description="the next N result downloads break: the k-th at byte k x file_cut_every_bytes of the file"
    )
    file_cut_every_bytes: int = Field(default=65536, ge=1, description="where in the file the cuts fall")
    file_grows_after_cut: bool = Field(default=False, description="a cut file holds one record more afterwards")
    file_content_length: bool = Field(
        default=False, description="send result files with Content-Length (computed by a first pass) instead of chunked"
    )
    autoresponders: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_AUTORESPONDERS), description="GetAutoresponderResults: id -> name"
    )
    autoresponder_sends: int = Field(
        default=3, ge=0, description="sends of each autoresponder (grouping send: one record per send)"
    )
    autoresponder_empty: bool | str = Field(
        default=False,
        description="GetAutoresponderResults has nothing: true answers SUCCESS with no records, a string "
        "answers FAILED with it as errormessage (autoresponders being retired for Journeys)",
    )
    later_page_5xx: int = Field(
        default=0, ge=0, description="the next N GetAutoresponderResults calls for a page after the first answer 503"
    )
    # Doc-consistent variants of the shapes docs/VENDORS.md leaves open (Unknowns 1, 2, 4, 6); the defaults are
    # the shapes the adapter assumed first. Each is a way a real Pinpointe may answer, not a fault.
    start_jobid_key: str = Field(
        default="jobid", min_length=1, description='the key of the job id in an async start\'s data (the docs also write "Jobid")'
    )
    start_answer: Literal["ok", "no_jobid", "not_json"] = Field(
        default="ok",
        description="how an async start is answered; the job is started whatever the answer: no_jobid (SUCCESS, "
        "data without a job id), not_json (HTTP 200, a PHP warning that echoes the request, token and all, before "
        "the JSON)",
    )
    status_shape: Literal["list", "keyed_by_id", "single"] = Field(
        default="list",
        description='AsyncJobStatus data: {"jobs": [...]}, an object keyed by job id (the id not repeated inside), '
        "or the one entry itself (when the page has one)",
    )
    status_word_case: Literal["lower", "upper", "title"] = Field(default="lower", description="per-job status words' case")
    status_words: dict[str, str] = Field(
        default_factory=dict,
        description='per-job status words replaced, e.g. {"complete": "Completed", "processing": "Running"} '
        "(also in the webhook notice)",
    )
    status_page_cap: int | None = Field(default=None, ge=1, description="AsyncJobStatus sends at most N entries a page")
    status_count: bool = Field(default=False, description="a finished job's entry carries its record count")
    autoresponder_records_shape: Literal["list", "keyed_by_id", "single"] = Field(
        default="list",
        description="GetAutoresponderResults data.item: a list, an object keyed by autoresponderid/sendid (the id "
        "not repeated inside), or a page's one record as an object",
    )
    autoresponder_page_cap: int | None = Field(
        default=None, ge=1, description="GetAutoresponderResults pages hold at most N records, whatever the limit"
    )
    autoresponder_next_lies: bool = Field(
        default=False,
        description="GetAutoresponderResults pagination.next counts from the limit asked for, not the records sent",
    )
    autoresponder_count: Literal["none", "total", "page"] = Field(
        default="none", description='GetAutoresponderResults data carries "total" (all records) or "count" (this page\'s)'
    )
    result_shape: Literal["default", "keyed_by_id", "wrapped", "bare_list", "capitalised"] = Field(
        default="default",
        description='result files: {"count", "subscribers"|"events": [...]}, records keyed by id, wrapped in '
        '{"response": {"status", "data": ...}}, a bare list (no count), or {"Count": "N", "Subscribers": [...]}',
    )
    result_count_offset: int = Field(default=0, description="a result file's count claims N more records than it holds")


# --- the async calls and their details ------------------------------------------------------------

SUBSCRIBER_STATUSES = ("any", "active", "inactive", "bounced", "unsubscribed")
BOOLEAN_STRINGS = ("true", "false", "1", "0", "yes", "no")


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_id_list(value: Any) -> bool:
    return isinstance(value, list) and all(_is_id(item) for item in value)


def _is_yyyymmdd(value: Any) -> bool:
    if not (isinstance(value, str) and len(value) == 8 and value.isdigit()):
        return False
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return True


def _is_notify(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"type", "value"}
        and value["type"] in ("email", "webhook")
        and _is_id(value["value"])
        and (value["type"] == "email" or value["value"].startswith(("http://", "https://")))
    )


DETAIL_CHECKS: dict[str, Callable[[Any], bool]] = {
    "stat": _is_id,
    "list": _is_id_list,
    "segmentid": _is_id_list,
    "tag": _is_id_list,
    "extag": _is_id_list,
    "tagname": _is_id,
    "customfields": _is_id_list,
    "status": lambda v: v in SUBSCRIBER_STATUSES,
    "include_membership": lambda v: isinstance(v, str) and v.lower() in BOOLEAN_STRINGS,
    "emailonly": lambda v: isinstance(v, str) and v.lower() in BOOLEAN_STRINGS,
    "startdate": _is_yyyymmdd,
    "enddate": _is_yyyymmdd,
    "notify": _is_notify,
}


@dataclass(frozen=True)
class AsyncCall:
    requesttype: str
    fields: frozenset[str]
    required: tuple[tuple[str, ...], ...]  # each tuple: at least one of these must be given
    document: str  # "events" or "subscribers"


_SUBSCRIBER_OPTIONS = {"status", "include_membership", "customfields", "notify"}
ASYNC_CALLS: dict[str, AsyncCall] = {
    "GetNewsletterContactDataSummaryAsync": AsyncCall(
        "Newsletters", frozenset({"stat", "startdate", "enddate", "notify"}), (("stat",), ("notify",)), "events"
    ),
    "GetListSubscribersAsync": AsyncCall(
        "Lists",
        frozenset({"list", "startdate", "enddate"} | _SUBSCRIBER_OPTIONS),
        (("list",), ("notify",)),
        "subscribers",
    ),
    "GetSegmentSubscribersAsync": AsyncCall(
        "Segments", frozenset({"segmentid"} | _SUBSCRIBER_OPTIONS), (("segmentid",), ("notify",)), "subscribers"
    ),
    "GetTagSubscribersAsync": AsyncCall(
        "Tags",
        frozenset({"tag", "tagname", "extag", "emailonly"} | _SUBSCRIBER_OPTIONS),
        (("tag", "tagname"), ("notify",)),
        "subscribers",
    ),
}


AUTORESPONDER_METHOD = "GetAutoresponderResults"
AUTORESPONDER_REQUESTTYPES = ("Autoresponders", "Stats")  # docs/VENDORS.md 1.10: both variants are documented
AUTORESPONDER_FIELDS = frozenset({"autoresponderid", "autorespondername", "grouping", "pagination"})
AUTORESPONDER_NOT_FOUND = "Autoresponder not found"


class Refused(Exception):
    """A request Pinpointe would answer with HTTP 400, status FAILED and this errormessage."""


def check_details(call: AsyncCall, details: Any) -> dict[str, Any]:
    """The details of an async start, or Refused with the reason Pinpointe would give."""
    if not isinstance(details, dict):
        raise Refused("Missing details element")
    for name, value in details.items():
        if name not in call.fields:
            raise Refused(f"Unknown element '{name}'")
        if value in ({}, [], ""):
            raise Refused(f"Empty element '{name}': delete optional elements you do not use")
        if not DETAIL_CHECKS[name](value):
            raise Refused(f"Invalid value for '{name}'")
    for one_of in call.required:
        if not any(name in details for name in one_of):
            raise Refused(f"Missing required element '{' or '.join(one_of)}'")
    return details


# --- jobs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookPlan:
    """How a job's completion notice will go out, fixed when the job starts."""

    drop: bool = False
    copies: int = 1
    late_seconds: float = 0.0
    timeout_seconds: float = 2.0


@dataclass
class SandboxJob:
    jobid: str
    requesttype: str
    requestmethod: str
    details: dict[str, Any]
    created: float
    seconds: float
    records: int
    failure: str | None
    webhook: WebhookPlan = WebhookPlan()
    result_shape: str = "default"
    count_offset: int = 0  # the result file's count claims this many records more than it holds

    @property
    def ends_at(self) -> float:
        return self.created + self.seconds

    def status_at(self, now: float) -> str:
        if now >= self.ends_at:
            return "failed" if self.failure else "complete"
        return "waiting" if now < self.created + self.seconds / 4 else "processing"

    def updated_at(self, now: float) -> float:
        if now >= self.ends_at:
            return self.ends_at
        quarter = self.created + self.seconds / 4
        return quarter if now >= quarter else self.created

    def entry(self, now: float, result_url: str) -> dict[str, Any]:
        status = self.status_at(now)
        entry: dict[str, Any] = {
            "jobid": self.jobid,
            "requestmethod": self.requestmethod,
            "status": status,
            "created": iso_utc(self.created),
            "updated": iso_utc(self.updated_at(now)),
        }
        if status == "complete":
            entry["url"] = result_url
        if status == "failed":
            entry["errormessage"] = self.failure
        return entry

    def summary(self, now: float, result_url: str) -> dict[str, Any]:
        extra = {"requesttype": self.requesttype, "details": self.details, "records": self.records}
        return {**self.entry(now, result_url), **extra}


# --- the sandbox ----------------------------------------------------------------------------------


class PinpointeSandbox(SandboxServer[PinpointeConfig]):
    config_model = PinpointeConfig

    def __init__(
        self,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        job_seconds: float = 2.0,
        records: int = 50,
        username: str = "sandbox-user",
        usertoken: str | None = None,
        **config: Any,
    ):
        super().__init__(host, port, job_seconds=job_seconds, records=records, **config)
        self.username = username
        self._usertoken = usertoken or secrets.token_urlsafe(24)
        self._jobs: dict[str, SandboxJob] = {}
        self._cuts: dict[str, int] = {}  # jobid -> downloads of its file cut so far
        self._webhooks: list[dict[str, Any]] = []
        self._jobids = itertools.count(700_000_001)  # never reset: a stale id must not match a new job

    def account_secret(self) -> dict[str, Any]:
        """The secret a PinpointeAccount accepts to reach this sandbox."""
        return {
            "base_url": self.base_url,
            "username": self.username,
            "usertoken": self._usertoken,
            "result_hosts": [LOOPBACK],
            "allow_http": True,
        }

    def fixtures(self) -> list[str]:
        """What a user can ask this sandbox for, read from its config (the local stack's banner)."""
        config = self.config
        autoresponders = ", ".join(f'{ident} "{name}"' for ident, name in config.autoresponders.items())
        ids = {name for call in ASYNC_CALLS.values() for one_of in call.required for name in one_of}
        kinds = sorted(ids - {"notify"})
        return [
            f"{', '.join(kinds)}: any id; an export makes up {config.records} records whatever ids it is given",
            f"autoresponders {autoresponders} ({config.autoresponder_sends} sends each)",
        ]

    def result_url(self, jobid: str) -> str:
        return f"{self.base_url}{FILES_PREFIX}{jobid}.json"

    def on_reset(self) -> None:
        self._jobs.clear()
        self._cuts.clear()
        self._webhooks.clear()

    # --- routes ------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if (request.method, request.path) == ("POST", API_PATH):
            return self._api(request)
        if request.method == "GET" and request.path.startswith(FILES_PREFIX) and request.path.endswith(".json"):
            return self._download(request.path.removeprefix(FILES_PREFIX).removesuffix(".json"), request.headers)
        return Response(404, b"Not Found", "text/plain")

    def control(self, request: Request) -> Response | None:
        now = time.time()
        if (request.method, request.path) == ("GET", "/_sandbox/jobs"):
            with self.lock:
                return Response.json([job.summary(now, self.result_url(job.jobid)) for job in self._jobs.values()])
        if (request.method, request.path) == ("GET", "/_sandbox/webhooks"):
            with self.lock:
                return Response.json(list(self._webhooks))
        return None

    def _api(self, request: Request) -> Response:
        try:
            envelope = request.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            return self._failure("Invalid JSON request")
        method = str(envelope.get("requestmethod") or "")
        fault = self.call_fault(method)
        if fault is not None and fault.response is not None:
            return fault.response.noted(requestmethod=method, fault=fault.name)
        answer = self._answer(envelope, method)
        return answer.noted(requestmethod=method, fault=fault.name if fault else None)

    def _answer(self, envelope: dict[str, Any], method: str) -> Response:
        if not self._credentials_ok(envelope, method):
            return self._failure(CREDENTIALS_REJECTED, 401)
        requesttype, details = envelope.get("requesttype"), envelope.get("details")
        try:
            if (requesttype, method) == ("API", "Test"):
                return self._success(details)
            if (requesttype, method) == ("API", "AsyncJobStatus"):
                return self._job_status(details if details is not None else {})
            if method == AUTORESPONDER_METHOD and requesttype in AUTORESPONDER_REQUESTTYPES:
                return self._autoresponder_results(details if details is not None else {})
            call = ASYNC_CALLS.get(method)
            if call is None or call.requesttype != requesttype:
                raise Refused(f"Invalid request: {requesttype}/{method}")
            return self._start(call, method, check_details(call, details))
        except Refused as refused:
            return self._failure(str(refused))

    def _credentials_ok(self, envelope: dict[str, Any], method: str) -> bool:
        if self.config.expired_token and self.faults_apply_to(method):
            return False
        username, token = envelope.get("username"), envelope.get("usertoken")
        return (
            isinstance(username, str)
            and isinstance(token, str)
            and username == self.username
            and hmac.compare_digest(token.encode(), self._usertoken.encode())
        )

    def _start(self, call: AsyncCall, method: str, details: dict[str, Any]) -> Response:
        started = time.perf_counter()
        job = self._new_job(call, method, details)
        if details["notify"]["type"] == "webhook":
            self.later(job.seconds + job.webhook.late_seconds, lambda: self._send_webhooks(job))
        elapsed = f"{time.perf_counter() - started:.4f}"
        data = {self.config.start_jobid_key: job.jobid, "elapsed": elapsed, "timestamp": iso_utc(job.created)}
        note = {"jobid": job.jobid, "start_answer": self.config.start_answer}
        if self.config.start_answer == "no_jobid":
            return self._success({"elapsed": elapsed, "timestamp": iso_utc(job.created)}).noted(**note)
        if self.config.start_answer == "not_json":
            return Response(200, self._php_warning(method, data), "text/html").noted(**note)
        return self._success(data).noted(**note)

    def _php_warning(self, method: str, data: dict[str, Any]) -> bytes:
        """An answer a PHP server gives when a warning is printed before the JSON: it echoes the request,
        the account's token with it (what the adapter keeps of it must be redacted)."""
        echoed = f"username={self.username}&usertoken={self._usertoken}&requestmethod={method}"
        warning = (
            "<br />\n<b>Warning</b>:  Cannot modify header information - headers already sent in "
            f"<b>/var/www/api/apijson.php</b> on line <b>88</b><br />\nrequest: {echoed}\n"
        )
        return (warning + json.dumps({"status": "SUCCESS", "data": data})).encode()

    def _new_job(self, call: AsyncCall, method: str, details: dict[str, Any]) -> SandboxJob:
        config = self.config
        with self.lock:
            job = SandboxJob(
                jobid=str(next(self._jobids)),
                requesttype=call.requesttype,
                requestmethod=method,
                details=details,
                created=time.time(),
                seconds=config.job_seconds,
                records=config.records,
                failure=_failure_message(config.fail_jobs),
                result_shape=config.result_shape,
                count_offset=config.result_count_offset,
                webhook=WebhookPlan(
                    drop=config.drop_webhook,
                    copies=2 if config.duplicate_webhook else 1,
                    late_seconds=config.late_webhook_seconds,
                    timeout_seconds=config.webhook_timeout_seconds,
                ),
            )
            self._jobs[job.jobid] = job
        return job

    def _job_status(self, details: Any) -> Response:
        if not isinstance(details, dict) or not set(details) <= {"jobids", "pagination"}:
            raise Refused("Invalid details element")
        jobids, pagination = details.get("jobids"), details.get("pagination")
        if jobids is not None and not (_is_id_list(jobids) and jobids):
            raise Refused("Invalid value for 'jobids'")
        page_bounds = _page_bounds(pagination)
        now = time.time()
        with self.lock:
            visible = [
                job
                for job in self._jobs.values()
                if (jobids is None or job.jobid in jobids) and now - job.created >= self.config.not_visible_seconds
            ]
        if not visible:
            return self._failure(JOBS_NOT_FOUND).noted(jobid=_one(jobids))
        config = self.config
        start, limit = page_bounds or (0, len(visible))
        if config.status_page_cap is not None:
            limit = min(limit, config.status_page_cap)
        page = visible[start : start + limit]
        entries = [self._status_entry(job, now) for job in page]
        data: dict[str, Any]
        if config.status_shape == "keyed_by_id":
            data = {entry.pop("jobid"): entry for entry in entries}
        elif config.status_shape == "single" and len(entries) == 1:
            data = entries[0]
        else:
            data = {"jobs": entries}
        if pagination is not None:
            data["pagination"] = {"next": str(start + len(page)) if start + len(page) < len(visible) else "0"}
        return self._success(data).noted(jobid=_one(jobids))

    def _status_entry(self, job: SandboxJob, now: float) -> dict[str, Any]:
        entry = job.entry(now, self.result_url(job.jobid))
        if self.config.status_count and "url" in entry:
            entry["count"] = str(job.records)
        entry["status"] = self._word(entry["status"])
        return entry

    def _word(self, status: str) -> str:
        """A per-job status word as the config spells it (status_words, status_word_case)."""
        word = self.config.status_words.get(status, status)
        match self.config.status_word_case:
            case "upper":
                return word.upper()
            case "title":
                return word.title()
        return word

    def _autoresponder_results(self, details: Any) -> Response:
        """GetAutoresponderResults (docs/VENDORS.md 1.10): the stats of one autoresponder (by id or by name;
        given both, the first found in the request wins) or of all, a page at a time."""
        if not isinstance(details, dict):
            raise Refused("Invalid details element")
        for name, value in details.items():
            if name not in AUTORESPONDER_FIELDS:
                raise Refused(f"Unknown element '{name}'")
            if value in ({}, [], ""):
                raise Refused(f"Empty element '{name}': delete optional elements you do not use")
        grouping = details.get("grouping", "autoresponder")
        if grouping not in ("autoresponder", "send"):
            raise Refused("Invalid value for 'grouping'")
        if "autoresponderid" in details and not (
            isinstance(details["autoresponderid"], str) and details["autoresponderid"].isdigit()
        ):
            raise Refused("Invalid value for 'autoresponderid'")
        if "autorespondername" in details and not _is_id(details["autorespondername"]):
            raise Refused("Invalid value for 'autorespondername'")
        page_bounds = _page_bounds(details.get("pagination"))
        note = {"details": details, "grouping": grouping}
        config = self.config
        if page_bounds and page_bounds[0] > 0 and self.take("later_page_5xx", AUTORESPONDER_METHOD):
            return Response(503, b"Service Unavailable", "text/plain").noted(**note, fault="later_page_5xx")
        chosen = _chosen_autoresponders(details, config.autoresponders)
        if chosen is None:
            return self._failure(AUTORESPONDER_NOT_FOUND).noted(**note)
        if isinstance(config.autoresponder_empty, str):
            return self._failure(config.autoresponder_empty).noted(**note)
        sends = 0 if config.autoresponder_empty else config.autoresponder_sends
        results = AutoresponderResults(chosen, grouping, sends)
        start, limit = page_bounds or (0, results.count)
        sent_limit = min(limit, config.autoresponder_page_cap) if config.autoresponder_page_cap else limit
        end = min(start + sent_limit, results.count)
        records = [results.record(index) for index in range(start, end)]
        data: dict[str, Any] = {"item": _shaped_records(records, config.autoresponder_records_shape, grouping)}
        if config.autoresponder_count == "total":
            data["total"] = str(results.count)
        elif config.autoresponder_count == "page":
            data["count"] = str(len(records))
        if page_bounds is not None:
            # The docs' next is the record after those sent; a lying one counts from the limit asked for.
            following = start + limit if config.autoresponder_next_lies else end
            data["pagination"] = {"next": str(following) if following < results.count else "0"}
        return self._success(data).noted(**note, next=str(start), records=len(records))

    def _download(self, jobid: str, headers: Mapping[str, str]) -> Response:
        """The result file: whole (200), or from byte N on (206) for `Range: bytes=N-` when
        file_ranges allows; cut short by file_cuts."""
        with self.lock:
            job = self._jobs.get(jobid)
        asked = next((value for name, value in headers.items() if name.lower() == "range"), None)
        note = {"requestmethod": DOWNLOAD, "jobid": jobid, "range": asked}
        if job is None or job.status_at(time.time()) != "complete":
            return Response(404, b"Not Found", "text/plain").noted(**note)
        if self.take("file_5xx", DOWNLOAD):
            return Response(503, b"Service Unavailable", "text/plain").noted(**note, fault="file_5xx")
        first = _range_start(asked) if self.config.file_ranges else None
        # The file's length takes a first pass over it: only when an answer must say it.
        whole = sum(map(len, result_document(job))) if first is not None or self.config.file_content_length else 0
        if first is not None and first >= whole:
            return Response(416, b"Range Not Satisfiable", "text/plain", headers={"Content-Range": f"bytes */{whole}"})
        if first is not None:
            response = Response(
                206,
                _from_byte(result_document(job), first),
                "application/json",
                whole - first,
                headers={"Content-Range": f"bytes {first}-{whole - 1}/{whole}"},
            )
        else:
            length = whole if self.config.file_content_length else None
            response = Response(200, result_document(job), "application/json", length)
        if self.take("file_cuts", DOWNLOAD):
            with self.lock:
                self._cuts[jobid] = cut = self._cuts.get(jobid, 0) + 1
                if self.config.file_grows_after_cut:
                    self._jobs[jobid] = replace(job, records=job.records + 1)
            # The connection breaks at a point of the file, so a download asked again goes further.
            cut_after = max(0, cut * self.config.file_cut_every_bytes - (first or 0))
            return replace(response, cut_after=cut_after).noted(**note, fault="file_cuts")
        return response.noted(**note)

    def _success(self, data: Any) -> Response:
        return self._wrapped({"status": "SUCCESS", "data": data}, 200)

    def _failure(self, message: str, status: int = 400) -> Response:
        return self._wrapped({"status": "FAILED", "errormessage": message}, status)

    def _wrapped(self, payload: dict[str, Any], status: int) -> Response:
        return Response.json({"response": payload} if self.config.wrap_response else payload, status)

    # --- webhooks ----------------------------------------------------------------------------------

    def _send_webhooks(self, job: SandboxJob) -> None:
        url = job.details["notify"]["value"]
        if job.webhook.drop:
            self._record_webhook(job, url, dropped=True)
            return
        status = job.status_at(job.ends_at)
        notice = {"jobid": job.jobid, "status": self._word(status), "requestmethod": job.requestmethod}
        if status == "complete":
            notice["url"] = self.result_url(job.jobid)
        for _ in range(job.webhook.copies):
            try:
                with httpx.Client(trust_env=False, timeout=job.webhook.timeout_seconds) as http:
                    answer = http.post(url, json=notice)
                self._record_webhook(job, url, status_code=answer.status_code)
            except httpx.HTTPError as exc:
                self._record_webhook(job, url, error=f"{type(exc).__name__}: {exc}")

    def _record_webhook(self, job: SandboxJob, url: str, **outcome: Any) -> None:
        with self.lock:
            if self.stopping or self._jobs.get(job.jobid) is not job:
                return  # the sandbox was reset or stopped while this delivery was under way
            at = iso_utc(time.time(), milliseconds=True)
            self._webhooks.append({"at": at, "jobid": job.jobid, "url": url, **outcome})


def _failure_message(fail_jobs: bool | str) -> str | None:
    if isinstance(fail_jobs, str):
        return fail_jobs
    return "Simulated failure" if fail_jobs else None


def _page_bounds(pagination: Any) -> tuple[int, int] | None:
    """(start, limit) from a `pagination` element (docs/VENDORS.md 1.3), None without one."""
    if pagination is None:
        return None
    if not isinstance(pagination, dict) or not pagination or not set(pagination) <= {"limit", "next"}:
        raise Refused("Invalid pagination element")
    limit, start = pagination.get("limit"), pagination.get("next", "0")
    if limit is None:
        raise Refused("pagination 'limit' is required when 'next' is given")
    if not all(isinstance(v, str) and v.isdigit() for v in (limit, start)) or int(limit) == 0:
        raise Refused("pagination 'limit' and 'next' must be numbers written as strings")
    return int(start), int(limit)


def _one(jobids: list[str] | None) -> str | None:
    return jobids[0] if jobids and len(jobids) == 1 else None


def _shaped_records(records: list[dict[str, Any]], shape: str, grouping: str) -> Any:
    """A page's records as `shape` says: a list, an object keyed by id (the id taken out of each record:
    sendid per send, autoresponderid per autoresponder), or the one record of a page as an object."""
    if shape == "keyed_by_id":
        id_key = "sendid" if grouping == "send" else "autoresponderid"
        return {record[id_key]: {k: v for k, v in record.items() if k != id_key} for record in records}
    if shape == "single" and len(records) == 1:
        return records[0]
    return records


def _chosen_autoresponders(details: dict[str, Any], known: dict[str, str]) -> list[tuple[str, str]] | None:
    """The (id, name) pairs a request asks for: the first of id and name found in it (the docs' rule),
    every one without either; None when the one asked for does not exist."""
    for key, value in details.items():
        if key == "autoresponderid":
            return [(value, known[value])] if value in known else None
        if key == "autorespondername":
            matches = [(ident, name) for ident, name in known.items() if name == value]
            return matches[:1] or None
    return list(known.items())


@dataclass(frozen=True)
class AutoresponderResults:
    """The records of one GetAutoresponderResults query, each generated on demand (docs/VENDORS.md 1.10,
    Unknown 6: fields like GetNewsletterStats', numbers written as strings)."""

    chosen: list[tuple[str, str]]
    grouping: str
    sends: int

    @property
    def count(self) -> int:
        if self.grouping == "send":
            return len(self.chosen) * self.sends
        return len(self.chosen) if self.sends else 0

    def record(self, index: int) -> dict[str, Any]:
        if self.grouping == "send":
            ident, name = self.chosen[index // self.sends]
            send = index % self.sends
            return {
                "autoresponderid": ident,
                "autorespondername": name,
                "sendid": f"{ident}-{send + 1}",
                "starttime": str(1_735_689_600 + send * 86_400),
                **_send_stats(ident, send),
            }
        ident, name = self.chosen[index]
        totals: dict[str, int] = {}
        for send in range(self.sends):
            for key, value in _send_stats(ident, send).items():
                totals[key] = totals.get(key, 0) + int(value)
        return {
            "autoresponderid": ident,
            "autorespondername": name,
            "sends": str(self.sends),
            **{key: str(value) for key, value in totals.items()},
        }


def _send_stats(ident: str, send: int) -> dict[str, str]:
    seed = zlib.crc32(ident.encode()) % 10_007 * 7919 + send * 104_729  # the same stats on every call
    size = 100 + seed % 900
    opens = size * (20 + seed % 30) // 100
    return {
        "sendsize": str(size),
        "emailopens": str(opens),
        "linkclicks": str(opens * (5 + seed % 20) // 100),
        "bouncecount_soft": str(seed % 7),
        "bouncecount_hard": str(seed % 3),
        "unsubscribecount": str(seed % 5),
    }


# --- result documents (docs/VENDORS.md 1.8, Unknown 4: the shapes the project assumes) -----------------

STREAM_PIECE_CHARS = 64 * 1024
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie")
CITIES = ("Atlanta", "Boston", "Chicago", "Denver", "Portland", "Austin", "Seattle")
CUSTOM_FIELDS: dict[str, Callable[[int], str]] = {
    "First Name": lambda n: FIRST_NAMES[n % len(FIRST_NAMES)],
    "Last Name": lambda n: LAST_NAMES[n // len(FIRST_NAMES) % len(LAST_NAMES)],
    "City": lambda n: CITIES[n % len(CITIES)],
    "Customer Since": lambda n: str(2010 + n % 15),
}
STATUS_MIX = ("active",) * 7 + ("unsubscribed", "bounced", "inactive")
DEFAULT_SPAN = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))


def result_document(job: SandboxJob) -> Iterator[bytes]:
    """The job's result file as ~64 KiB pieces, generated record by record (never held whole), in the
    job's result_shape, its count claiming count_offset more records than it holds."""
    if ASYNC_CALLS[job.requestmethod].document == "events":
        return _json_document("events", job, _event_maker(job), lambda index, record: str(index + 1))
    return _json_document("subscribers", job, _subscriber_maker(job), lambda index, record: record["subscriberid"])


def _json_document(
    key: str, job: SandboxJob, record: Callable[[int], dict[str, Any]], record_id: Callable[[int, dict[str, Any]], str]
) -> Iterator[bytes]:
    shape, claimed = job.result_shape, job.records + job.count_offset
    keyed = shape == "keyed_by_id"
    if shape == "bare_list":
        opening, closing = "[", "]"
    elif shape == "capitalised":
        opening, closing = f'{{"Count": "{claimed}", "{key.capitalize()}": [', "]}"
    elif shape == "wrapped":
        opening, closing = f'{{"response": {{"status": "SUCCESS", "data": {{"count": {claimed}, "{key}": [', "]}}}"
    else:
        opening, closing = f'{{"count": {claimed}, "{key}": ' + ("{" if keyed else "["), "}}" if keyed else "]}"
    pieces, size = [opening], 0
    for index in range(job.records):
        made = record(index)
        piece = ("," if index else "") + (json.dumps(record_id(index, made)) + ":" if keyed else "")
        piece += json.dumps(made, separators=(",", ":"))
        pieces.append(piece)
        size += len(piece)
        if size >= STREAM_PIECE_CHARS:
            yield "".join(pieces).encode()
            pieces, size = [], 0
    pieces.append(closing)
    yield "".join(pieces).encode()


def _span(details: dict[str, Any]) -> tuple[datetime, float]:
    """The start of the requested date range and its length in seconds (a default year without one)."""
    start, end = DEFAULT_SPAN
    if "startdate" in details:
        start = datetime.strptime(details["startdate"], "%Y%m%d").replace(tzinfo=UTC)
    if "enddate" in details:
        end = datetime.strptime(details["enddate"], "%Y%m%d").replace(tzinfo=UTC)
    return start, max((end - start).total_seconds(), 1.0)


def _moment(start: datetime, span_seconds: float, n: int) -> str:
    offset = (n * 7919) % int(span_seconds)  # a prime stride spreads the times over the range
    return (start + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _person(n: int) -> dict[str, str]:
    first = FIRST_NAMES[n % len(FIRST_NAMES)]
    last = LAST_NAMES[n // len(FIRST_NAMES) % len(LAST_NAMES)]
    return {"email": f"{first}.{last}.{n}@example.org".lower(), "subscriberid": str(1_000_000 + n)}


def _custom_value(name: str, n: int) -> str:
    known = CUSTOM_FIELDS.get(name)
    return known(n) if known else f"{name} {n}"


def _subscriber_maker(job: SandboxJob) -> Callable[[int], dict[str, Any]]:
    details = job.details
    start, span = _span(details)
    wanted = details.get("customfields", [])
    field_names = list(CUSTOM_FIELDS) if wanted == ["all"] else wanted
    status_filter = details.get("status", "any")
    membership = details.get("include_membership", "false").lower() in ("true", "1", "yes")
    lists = details.get("list") or details.get("tag") or ["101", "102", "103"]

    def subscriber(index: int) -> dict[str, Any]:
        n = index + 1
        record: dict[str, Any] = {
            **_person(n),
            "status": STATUS_MIX[n % len(STATUS_MIX)] if status_filter == "any" else status_filter,
            "confirmed": "1" if n % 5 else "0",
            "subscribedate": _moment(start, span, n),
        }
        if field_names:
            record["customfields"] = {name: _custom_value(name, n) for name in field_names}
        if membership:
            record["lists"] = [lists[n % len(lists)]]
        return record

    return subscriber


def _event_maker(job: SandboxJob) -> Callable[[int], dict[str, Any]]:
    start, span = _span(job.details)
    stat = job.details["stat"]

    def event(index: int) -> dict[str, Any]:
        n = index + 1
        record: dict[str, Any] = {
            **_person(n // 3),  # about three events per contact
            "statid": stat,
            "event": "click" if n % 3 == 0 else "open",
            "event_time": _moment(start, span, n),
            "ip": f"203.0.113.{n % 254 + 1}",
        }
        if record["event"] == "click":
            record["link"] = f"https://example.org/offer/{n % 7}"
        return record

    return event


# --- standalone -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Pinpointe sandbox on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=3100, help="0 picks a free port")
    parser.add_argument("--job-seconds", type=float, default=2.0)
    parser.add_argument("--records", type=int, default=50)
    args = parser.parse_args(argv)
    sandbox = PinpointeSandbox(port=args.port, job_seconds=args.job_seconds, records=args.records).start()
    serve_until_interrupted(
        sandbox, f"Pinpointe sandbox on {sandbox.base_url}", f"account secret: {json.dumps(sandbox.account_secret())}"
    )


def _range_start(header: str | None) -> int | None:
    """N of `Range: bytes=N-` (the one form a resumed download asks for); None for anything else."""
    found = re.fullmatch(r"\s*bytes=(\d+)-\s*", header or "")
    return int(found.group(1)) if found else None


def _from_byte(pieces: Iterator[bytes], first: int) -> Iterator[bytes]:
    for piece in pieces:
        if first >= len(piece):
            first -= len(piece)
            continue
        yield piece[first:]
        first = 0


if __name__ == "__main__":
    main()
