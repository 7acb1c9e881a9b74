"""HTTP to Pinpointe: calls to its JSON endpoint, and the download of a result link.

Every outcome leaves here either as a parsed answer or as one of the step errors the state machine
understands (docs/DESIGN.md, State machine): VendorTransientError is retried, VendorRejected and
VendorProtocolError end the job with a readable reason (a protocol error carries a redacted excerpt
of the answer we could not read), and VendorOutcomeUnknown, never retried, ends a job whose start
may or may not have created an export at Pinpointe. The account's token goes into request
bodies only; logs carry call names, job ids and HTTP statuses, never a body.
"""

import fnmatch
import json
import logging
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from jobrelay.domain.errors import VendorOutcomeUnknown, VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.domain.request_retries import RequestRetry
from jobrelay.vendors.http import StatusCheck, is_transient, transport_errors_as_transient
from jobrelay.vendors.pinpointe.api import (
    AUTORESPONDER_REQUESTMETHOD,
    AUTORESPONDER_REQUESTTYPE,
    CREDENTIALS_REJECTED_TEXT,
    JOBS_NOT_FOUND_TEXT,
    LAST_PAGE,
    REQUEST_CONTENT_TYPE,
    STATUS_REQUESTMETHOD,
    STATUS_REQUESTTYPE,
    ApiRequest,
    ApiResponse,
    JobEntry,
    ResultsPage,
    StartedJob,
    says_no_results,
    status_page,
)
from jobrelay.vendors.pinpointe.params import AsyncMethod
from jobrelay.vendors.reading import Page, PageTally, follow_pages
from jobrelay.vendors.redaction import excerpt
from jobrelay.vendors.resumable import resumed_body

log = logging.getLogger(__name__)

ENDPOINT_PATH = "/apijson.php"  # docs/VENDORS.md 1.1: the JSON endpoint, under the account's host
DOWNLOAD_CHUNK_BYTES = 1024 * 1024  # what the result store receives at a time: memory stays flat
STATUS_PAGE_SIZE = 100
MAX_STATUS_PAGES = 20  # we ask about one job id; more pages than this means the paging is broken
MAX_RESULT_REDIRECTS = 5
# GetAutoresponderResults (summary stats) never needs this many pages (two million records at the
# default limit); a vendor whose `next` never reads "0" is stopped here, well inside the step's time.
MAX_RESULT_PAGES = 2000


@dataclass(frozen=True)
class JobsNotFound:
    """AsyncJobStatus's documented "Jobs not found" answer: a result, because right after a start it
    is expected, and only the adapter knows how long ago that was."""

    message: str


@dataclass(frozen=True)
class ResultLinkPolicy:
    """Which result links we follow (docs/DESIGN.md, Security: SSRF). A link, and every redirect from it,
    must use https (or http when the account allows it, for the local sandbox) and name a host that
    matches one of the account's patterns: an exact host or a wildcard such as "*.mypinpointe.com"."""

    host_patterns: tuple[str, ...]
    allow_http: bool = False

    def check(self, url: str | httpx.URL) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise VendorProtocolError("Pinpointe's result link is not a valid URL", answer=excerpt(str(url))) from None
        allowed_schemes = ("https", "http") if self.allow_http else ("https",)
        if parsed.scheme not in allowed_schemes:
            raise VendorProtocolError(
                f"Pinpointe's result link uses {parsed.scheme or 'no'} scheme; only "
                f"{' or '.join(allowed_schemes)} links are followed",
                answer=excerpt(str(url)),
            )
        if not host_allowed(parsed.host, self.host_patterns):
            raise VendorProtocolError(
                f"Pinpointe's result link points at host {parsed.host!r}, which is not on the "
                "account's result_hosts; it was not followed",
                answer=excerpt(str(url)),
            )
        return parsed


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """Whether `host` matches one of `patterns` (fnmatch, case-insensitive, whole host only)."""
    host = host.lower().rstrip(".")
    return bool(host) and any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in patterns)


class PinpointeClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        usertoken: SecretStr,
        *,
        http: httpx.Client,
        timeout: httpx.Timeout,
        retry: RequestRetry | None = None,
    ):
        self._endpoint = base_url.rstrip("/") + ENDPOINT_PATH
        self._username = username
        self._usertoken = usertoken
        self._http = http
        self._timeout = timeout
        # Each result page and each stretch of a download is retried on its own (domain/request_retries.py);
        # a poll is not: each poll is a step of its own, retried by the state machine.
        self._retry = retry if retry is not None else RequestRetry()

    def start_async(self, method: AsyncMethod, details: dict[str, Any]) -> StartedJob:
        """Start an async export. This is the one call that creates work at Pinpointe, so it is never
        blindly repeated: an answer we cannot read, or none at all, raises VendorOutcomeUnknown (the
        state machine does not retry it). An error answer (5xx, 429) stays VendorTransientError and is
        retried: Pinpointe said it did not do it. A FAILED answer is a refusal (VendorRejected)."""
        call = f"{method.requesttype}/{method.requestmethod}"
        try:
            response = self._call(method.requesttype, method.requestmethod, details)
            if not response.succeeded:
                raise VendorRejected(f"Pinpointe rejected {call}: {response.reason}")
            started = StartedJob.from_response(response, call)
        except VendorTransientError as error:
            if not error.may_have_arrived:
                raise  # Pinpointe answered with an error, or never got the request: safe to send again
            raise _outcome_unknown(call, f"no answer arrived ({error})", None) from error
        except VendorProtocolError as error:
            raise _outcome_unknown(call, str(error), error.answer) from error
        log.info("Pinpointe %s started job %s", call, started.jobid)
        return started

    def job_status(self, jobids: list[str]) -> list[JobEntry] | JobsNotFound:
        """The entries AsyncJobStatus lists for `jobids`, every page of them (reading.follow_pages)."""
        not_found: list[str] = []

        def fetch(offset: int, cursor: str | None) -> Page:
            pagination = {"limit": str(STATUS_PAGE_SIZE), "next": cursor if cursor is not None else str(offset)}
            response = self._call(STATUS_REQUESTTYPE, STATUS_REQUESTMETHOD, {"jobids": jobids, "pagination": pagination})
            if not response.succeeded:
                if response.says(JOBS_NOT_FOUND_TEXT):
                    not_found.append(response.reason)
                    return Page(records=[], more=False)
                raise VendorRejected(f"Pinpointe rejected AsyncJobStatus: {response.reason}")
            return status_page(response)

        pages = follow_pages(fetch, first=0, what="Pinpointe's AsyncJobStatus pages", max_pages=MAX_STATUS_PAGES)
        entries = [entry for page in pages for entry in page.records]
        if not entries and not_found:
            return JobsNotFound(not_found[0])
        return entries

    def autoresponder_pages(
        self, details: dict[str, Any], limit: int, *, id_key: str = "autoresponderid", tally: PageTally | None = None
    ) -> Generator[ResultsPage]:
        """Every page of GetAutoresponderResults for `details` (docs/VENDORS.md 1.10), `limit` records asked
        for at a time, one page held at a time (reading.follow_pages): each page asked from the record
        after those Pinpointe actually sent, until its `pagination.next` reads "0" (or is missing) or a
        page is empty. `tally` counts pages and records and where Pinpointe's own `next` disagreed with
        them. A page that repeats the one before, a cursor seen before, or more than MAX_RESULT_PAGES
        pages is a VendorProtocolError; a 5xx or a timeout on a page asks for it again, with backoff, and
        one that keeps failing is VendorUnavailable."""
        call = f"{AUTORESPONDER_REQUESTTYPE}/{AUTORESPONDER_REQUESTMETHOD}"

        def fetch(offset: int, cursor: str | None) -> ResultsPage:
            pagination = {"limit": str(limit), "next": cursor if cursor is not None else str(offset)}
            response = self._call(AUTORESPONDER_REQUESTTYPE, AUTORESPONDER_REQUESTMETHOD, {**details, "pagination": pagination})
            if not (response.succeeded or says_no_results(response)):
                raise VendorRejected(f"Pinpointe rejected {call}{_chosen(details)}: {response.reason}")
            page = ResultsPage.from_response(response, call, id_key=id_key)
            log.info(
                "Pinpointe %s from record %s: %d records, next %r",
                call,
                pagination["next"],
                len(page.records),
                page.cursor or page.vendor_next or LAST_PAGE,
            )
            return page

        what = f"Pinpointe's {call} pages ({limit} records asked for a page)"
        yield from follow_pages(fetch, first=0, what=what, max_pages=MAX_RESULT_PAGES, tally=tally, retry=self._retry)  # type: ignore[misc]

    @contextmanager
    def download(self, url: str, policy: ResultLinkPolicy) -> Iterator[Iterator[bytes]]:
        """Open a result link and give its body as chunks of about DOWNLOAD_CHUNK_BYTES, to be
        consumed inside the `with` block; errors while reading arrive as step errors from the
        chunk iterator. Redirects are followed only to links `policy` allows. A broken connection
        or a 5xx goes on from the first byte not yet received (vendors/resumable.py)."""
        target = policy.check(url)
        body = resumed_body(
            lambda headers: self._open_result(target, policy, headers),
            check=_check_download_status,
            what="Pinpointe's result download",
            retry=self._retry,
            chunk_bytes=DOWNLOAD_CHUNK_BYTES,
        )
        try:
            yield body
        finally:
            body.close()

    @contextmanager
    def _open_result(self, target: httpx.URL, policy: ResultLinkPolicy, headers: dict[str, str]) -> Iterator[httpx.Response]:
        for _ in range(MAX_RESULT_REDIRECTS + 1):
            with (
                transport_errors_as_transient("the result download"),
                self._http.stream("GET", target, headers=headers, timeout=self._timeout) as response,
            ):
                if response.next_request is None:  # not a redirect (the client never follows one itself)
                    yield response
                    return
                target = policy.check(response.next_request.url)
        raise VendorProtocolError(f"Pinpointe's result link redirected more than {MAX_RESULT_REDIRECTS} times")

    def _call(self, requesttype: str, requestmethod: str, details: dict[str, Any]) -> ApiResponse:
        request = ApiRequest(
            username=self._username,
            usertoken=self._usertoken,
            requesttype=requesttype,
            requestmethod=requestmethod,
            details=details,
        )
        with transport_errors_as_transient(f"Pinpointe {request.name}"):
            answer = self._http.post(
                self._endpoint,
                content=json.dumps(request.wire()).encode(),
                headers={"Content-Type": REQUEST_CONTENT_TYPE},
                timeout=self._timeout,
            )
        log.info("Pinpointe %s answered HTTP %s", request.name, answer.status_code)
        return _read_answer(answer, request.name)


def _read_answer(answer: httpx.Response, call: str) -> ApiResponse:
    """Pinpointe's answer, or the step error it amounts to. A failure in the body (status FAILED or
    ERROR) is returned for the caller to judge, except the credentials one: old Pinpointe versions
    answered every failure with HTTP 200, so the body is checked whatever the HTTP status."""
    _STATUSES.raise_for_status(answer, call)
    response = ApiResponse.from_body(_json_object(answer, call), call)
    if response.says(CREDENTIALS_REJECTED_TEXT):
        raise _credentials_rejected(call)
    if not (response.succeeded or response.failed):
        raise VendorProtocolError(
            f"Pinpointe answered {call} with an unknown status {response.status!r}", answer=response.excerpt()
        )
    return response


class _Statuses(StatusCheck):
    """What Pinpointe's HTTP statuses mean. A 400 passes, as a 2xx does: its body is an API answer,
    read by the caller. No other error body is read (a 401 says it all; anything else is no answer
    of the JSON endpoint)."""

    vendor = "Pinpointe"

    def passes(self, answer: httpx.Response) -> bool:
        return answer.is_success or answer.status_code == 400

    def refusal(self, status: int, call: str, reason: str | None) -> VendorRejected:
        if status == 401:
            return _credentials_rejected(call)
        return VendorRejected(f"Pinpointe {call} answered HTTP {status}; check the account's base_url")


_STATUSES = _Statuses()


def _json_object(answer: httpx.Response, call: str) -> dict[str, Any]:
    try:
        body = json.loads(answer.content)
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise VendorProtocolError(
            f"Pinpointe answered {call} (HTTP {answer.status_code}) with a body that is not a JSON object",
            answer=excerpt(answer.content),
        )
    return body


def _outcome_unknown(call: str, why: str, answer: str | None) -> VendorOutcomeUnknown:
    return VendorOutcomeUnknown(
        f"Pinpointe may have started an export for {call}, but we cannot tell: {why}. The start is not "
        "sent again, so the export is not run twice; check the account's jobs at Pinpointe "
        "(API/AsyncJobStatus without jobids lists them) before submitting this job again",
        answer=answer,
    )


def _chosen(details: dict[str, Any]) -> str:
    """Which autoresponder a refused call asked for, for its error message."""
    for key in ("autoresponderid", "autorespondername"):
        if key in details:
            return f" for {key} {details[key]!r}"
    return ""


def _credentials_rejected(call: str) -> VendorRejected:
    return VendorRejected(
        f"Pinpointe did not accept the account's username and usertoken for {call} "
        "(Unable to verify user credentials); check the account secret and that the API is enabled"
    )


def _check_download_status(response: httpx.Response) -> None:
    status = response.status_code
    if is_transient(status):
        raise VendorTransientError(f"Pinpointe's result link answered HTTP {status}")
    if not response.is_success:
        raise VendorProtocolError(
            f"Pinpointe's result link answered HTTP {status} (expired or wrong link?)", answer=excerpt(_head(response))
        )


def _head(response: httpx.Response, limit: int = 2048) -> bytes:
    """The first bytes of an error answer's body, for its excerpt (never the whole of a large one)."""
    head = b""
    try:
        for chunk in response.iter_bytes(limit):
            head += chunk
            if len(head) >= limit:
                break
    except httpx.HTTPError:
        pass
    return head[:limit]
