"""Pinpointe's side of a job, one adapter per kind of operation (jobrelay.ports):

- PinpointeExports (AsyncExports): start an async export, read its status, stream its result file into
  our result store. Pinpointe calls us back when a job ends (docs/VENDORS.md 1.5), so the wait is a
  webhook with polling as the fallback. The webhook's notice is only a hint: `poll` cross-checks it
  with AsyncJobStatus.
- PinpointeAutoresponderResults (PagedReads): GetAutoresponderResults (1.10) is synchronous and
  paginated: `check` only makes sure the autoresponder asked for exists, and Collect reads every page
  into a JSON Lines file.

Every Collect reconciles what it stored with the counts Pinpointe gave (the file's own count, the
AsyncJobStatus entry's, a total or page counts beside paged records, the pages' own `next`), writes
both sides into summary.json, and returns the Reconciliation: a mismatch is never SUCCEEDED.
"""

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator

from jobrelay.domain.errors import VendorJobFailed, VendorProtocolError
from jobrelay.domain.job import Job, JobResult, Progress, utcnow
from jobrelay.domain.operation import stored_params
from jobrelay.domain.reconciliation import Reconciler, Reconciliation
from jobrelay.domain.request_retries import RequestRetry
from jobrelay.domain.vendor_outcomes import CollectOutcome, PollOutcome, StartOutcome, VendorState, WaitMode
from jobrelay.domain.vendor_ref import VendorRef
from jobrelay.ports import ResultStore
from jobrelay.vendors.http import VendorAccount, shared_http_client
from jobrelay.vendors.pinpointe.api import (
    AUTORESPONDER_REQUESTMETHOD,
    AUTORESPONDER_REQUESTTYPE,
    RESULT_CONTENT_TYPE,
    RESULT_ID_KEYS,
    JobEntry,
    ResultsPage,
    async_details,
    autoresponder_details,
    find_job,
    parse_webhook,
)
from jobrelay.vendors.pinpointe.client import ENDPOINT_PATH, JobsNotFound, PinpointeClient, ResultLinkPolicy
from jobrelay.vendors.pinpointe.manifest import MANIFEST
from jobrelay.vendors.pinpointe.params import AsyncExportParams, AutoresponderResultsParams
from jobrelay.vendors.pinpointe.result_file import FileCount, ResultFileCounter
from jobrelay.vendors.reading import PageTally
from jobrelay.vendors.redaction import excerpt

__all__ = [
    "PinpointeAccount",
    "PinpointeAutoresponderResults",
    "PinpointeExports",
    "parse_webhook",
    "pinpointe_autoresponder_results",
    "pinpointe_exports",
]

log = logging.getLogger(__name__)

RESULT_FILE_NAME = "result.json"
RECORDS_FILE_NAME = "autoresponder_results.jsonl"  # GetAutoresponderResults: one record per line
RECORDS_CONTENT_TYPE = "application/x-ndjson"
SUMMARY_FILE_NAME = "summary.json"
PARAMS_MODELS = {operation.name: operation.params_model for operation in MANIFEST.operations}


class ExportRef(VendorRef):
    """An async export at Pinpointe."""

    jobid: str
    requestmethod: str
    started_at: datetime
    # Pinpointe's link to the result file, once AsyncJobStatus gives one: anyone holding it can
    # download the file, so it is a secret of the job, never shown.
    result_url: SecretStr | None = None
    # The record count AsyncJobStatus gave (api.ENTRY_COUNT_KEYS), kept at poll time so that Collect
    # checks the file against it.
    status_count: int | None = None


class AutoresponderResultsRef(VendorRef):
    """The synchronous call a GetAutoresponderResults job reads page by page."""

    requesttype: str
    requestmethod: str


class PinpointeAccount(VendorAccount):
    """One Pinpointe account, as stored in its secret (one secret per account, docs/DESIGN.md Security).
    Its `allow_http` (declared by VendorAccount, before base_url, whose check reads it) also allows
    http result links."""

    vendor_title = "Pinpointe"

    base_url: str = Field(description="the account's host, e.g. https://na01.mypinpointe.com")
    username: Annotated[str, Field(min_length=1)]
    usertoken: Annotated[SecretStr, Field(min_length=1)]
    result_hosts: Annotated[list[str], Field(min_length=1)] = ["*.mypinpointe.com", "*.pinpointe.com"]

    @field_validator("base_url")
    @classmethod
    def _https_host(cls, value: str, info: ValidationInfo) -> str:
        # The Pinpointe UI shows the full endpoint path; accept it as well as the bare host.
        url = value.strip().rstrip("/").removesuffix(ENDPOINT_PATH)
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        schemes = ("https", "http") if info.data.get("allow_http") else ("https",)
        if parsed is None or parsed.scheme not in schemes or not parsed.host:
            raise ValueError(
                "must be an https URL such as https://na01.mypinpointe.com (http only with allow_http, "
                "which is meant for the local sandbox)"
            )
        return url


class _PinpointeSide:
    """What both adapters hold for one Pinpointe account: its client, its result-link policy, a clock."""

    def __init__(
        self,
        account: PinpointeAccount,
        *,
        http: httpx.Client | None = None,
        now: Callable[[], datetime] = utcnow,
        not_found_grace_seconds: int,
        retry: RequestRetry | None = None,
    ):
        self.max_concurrent_jobs = account.max_concurrent_jobs  # read by the Start step
        self._client = PinpointeClient(
            account.base_url,
            account.username,
            account.usertoken,
            http=http or httpx.Client(),
            timeout=account.timeout,
            retry=retry,
        )
        self._links = ResultLinkPolicy(tuple(account.result_hosts), account.allow_http)
        self._now = now
        self._not_found_grace = timedelta(seconds=not_found_grace_seconds)

    def cancel(self, job: Job) -> bool:
        return False  # Pinpointe documents no way to cancel an async job (a synchronous one has nothing to cancel)


class PinpointeExports(_PinpointeSide):
    """The AsyncExports port for one Pinpointe account: the four `...Async` exports."""

    wait_mode = WaitMode.WEBHOOK

    def start(self, job: Job, webhook_url: str | None) -> StartOutcome:
        if not webhook_url:
            raise ValueError("Pinpointe's async calls need a webhook URL to notify (docs/VENDORS.md 1.5)")
        params = stored_params(job, _export_params_model(job.operation))
        method = params.async_method
        started = self._client.start_async(method, async_details(params, webhook_url))
        return StartOutcome(
            vendor_ref=ExportRef(jobid=started.jobid, requestmethod=method.requestmethod, started_at=self._now()),
            note=f"Pinpointe job {started.jobid} started ({method.requestmethod})",
        )

    def poll(self, job: Job) -> PollOutcome:
        ref = ExportRef.of(job)
        found = self._client.job_status([ref.jobid])
        entry = None if isinstance(found, JobsNotFound) else find_job(found, ref.jobid)
        if entry is None:
            return self._not_listed(ref)
        outcome = _outcome(entry, ref)
        log.info("Pinpointe job %s is %s (status %r)", ref.jobid, outcome.state, entry.status)
        return outcome

    def collect(self, job: Job, results: ResultStore) -> CollectOutcome:
        ref = ExportRef.of(job)
        jobid = ref.jobid
        # AsyncJobStatus's link first; the webhook's (a hint, host-checked like any link) otherwise.
        link = ref.result_url.get_secret_value() if ref.result_url else (job.webhook_notice and job.webhook_notice.result_url)
        if not link:
            raise VendorProtocolError(f"Pinpointe gave no result link for job {jobid}")
        counter = ResultFileCounter(f"Pinpointe's result file for job {jobid}")
        with self._client.download(link, self._links) as chunks:
            stored = results.put_stream(job.job_id, RESULT_FILE_NAME, _counted(chunks, counter), RESULT_CONTENT_TYPE)
        counted = counter.finish()
        reconciliation = _reconcile_file(counted, ref.status_count)
        summary = {
            "operation": job.operation,
            "jobid": jobid,
            "file": RESULT_FILE_NAME,
            "records": counted.records,
            "vendor_count": counted.vendor_count,
            "records_key": counted.records_key,
            "records_shape": counted.shape,
            "reconciliation": reconciliation.model_dump(mode="json"),
            **_unchecked_note(reconciliation, "the file carries no count and AsyncJobStatus gave none"),
        }
        summary_file = results.put_bytes(
            job.job_id, SUMMARY_FILE_NAME, json.dumps(summary, indent=2).encode(), "application/json"
        )
        log.info(
            "Pinpointe job %s: result stored, %d bytes, %d records (the file counts %s)",
            jobid,
            stored.size,
            counted.records,
            counted.vendor_count,
        )
        return CollectOutcome(
            result=JobResult(s3_uri=stored.s3_uri, size=stored.size, sha256=stored.sha256, files=[stored, summary_file]),
            reconciliation=reconciliation,
        )

    def _not_listed(self, ref: ExportRef) -> PollOutcome:
        """Pinpointe does not list our job: expected for a moment after the start, fatal after."""
        age = self._now() - ref.started_at
        seconds = int(age.total_seconds())
        if age > self._not_found_grace:
            raise VendorJobFailed(f"Pinpointe no longer knows job {ref.jobid} ({seconds} s after it was started)")
        log.info("Pinpointe does not list job %s yet (%d s after its start)", ref.jobid, seconds)
        return PollOutcome(
            state=VendorState.RUNNING,
            progress=Progress(note=f"Pinpointe does not list job {ref.jobid} yet ({seconds} s after its start)"),
        )


class PinpointeAutoresponderResults(_PinpointeSide):
    """The PagedReads port for one Pinpointe account: GetAutoresponderResults (docs/VENDORS.md 1.10)."""

    def check(self, job: Job) -> StartOutcome:
        """Nothing long-running starts at Pinpointe. An autoresponder asked for by id or name is looked
        up with a one-record page, so that one Pinpointe does not know fails the job now, with
        Pinpointe's reason (VendorRejected); `all` needs no check."""
        params = stored_params(job, AutoresponderResultsParams)
        details = autoresponder_details(params)
        chosen = _chosen(params)
        note = f"{chosen}: results are read page by page ({params.limit} records a page)"
        if not params.all:
            pages = self._client.autoresponder_pages(details, limit=1)
            try:
                first = next(pages)
            finally:
                pages.close()
            found = "has no results" if first.note or not first.records else "found"
            note = f"{chosen} {found} at Pinpointe; results are read page by page ({params.limit} records a page)"
        return StartOutcome(
            vendor_ref=AutoresponderResultsRef(requesttype=AUTORESPONDER_REQUESTTYPE, requestmethod=AUTORESPONDER_REQUESTMETHOD),
            note=note,
        )

    def collect(self, job: Job, results: ResultStore) -> CollectOutcome:
        """Every page of GetAutoresponderResults streamed into one JSON Lines file, a page at a time
        (never all pages in memory), and summary.json with the record count and its reconciliation
        with whatever counts Pinpointe gave (api.py, ASSUMPTIONS: how counts beside the records are
        told apart).

        A 5xx or a timeout on a page asks for that page again, with backoff (reading.follow_pages); the
        pages go on where they stopped. Only a page that keeps failing ends the step (VendorUnavailable);
        a step that dies is run again from the first page and writes the file anew under the same
        name (the interrupted upload is aborted, never completed), so no record appears twice."""
        params = stored_params(job, AutoresponderResultsParams)
        tally = _Tally()
        pages = self._client.autoresponder_pages(
            autoresponder_details(params), params.limit, id_key=RESULT_ID_KEYS[params.grouping], tally=tally.paging
        )
        stored = results.put_stream(job.job_id, RECORDS_FILE_NAME, _json_lines(pages, tally), RECORDS_CONTENT_TYPE)
        reconciliation = _reconcile_pages(tally)
        summary = {
            "operation": job.operation,
            **params.model_dump(include={"autoresponderid", "autorespondername", "all"}, exclude_defaults=True),
            "grouping": params.grouping,
            "records": tally.records,
            "pages": tally.pages,
            "page_limit": params.limit,
            "file": RECORDS_FILE_NAME,
            **({"vendor_note": tally.note} if tally.note else {}),
            "reconciliation": reconciliation.model_dump(mode="json"),
            **_unchecked_note(reconciliation, "Pinpointe's pages carry no count"),
        }
        summary_file = results.put_bytes(
            job.job_id, SUMMARY_FILE_NAME, json.dumps(summary, indent=2).encode(), "application/json"
        )
        log.info("Pinpointe GetAutoresponderResults: %d records in %d pages stored", tally.records, tally.pages)
        return CollectOutcome(
            result=JobResult(s3_uri=stored.s3_uri, size=stored.size, sha256=stored.sha256, files=[stored, summary_file]),
            reconciliation=reconciliation,
        )


def _outcome(entry: JobEntry, ref: ExportRef) -> PollOutcome:
    jobid = ref.jobid
    state = entry.state
    # A word not in STATUS_WORDS: keep what Pinpointe said, for the job's timeline (the steps service
    # records it once per new word), so a wrong guess about its words can be corrected.
    unknown = None if entry.status_known else excerpt(entry.raw)
    if state is VendorState.DONE:
        updated = ref.model_copy(
            update={
                "result_url": SecretStr(entry.result_url) if entry.result_url else ref.result_url,
                "status_count": entry.count if entry.count is not None else ref.status_count,
            }
        )
        return PollOutcome(state=state, raw_status=entry.status, vendor_ref=updated, unknown_status_answer=unknown)
    if state is VendorState.FAILED:
        reason = entry.errormessage or f"Pinpointe reports job {jobid} as {entry.status!r}"
        return PollOutcome(state=state, raw_status=entry.status, message=reason)
    progress = Progress(percent=entry.percent) if entry.percent is not None else None
    return PollOutcome(state=state, raw_status=entry.status, progress=progress, unknown_status_answer=unknown)


def _unchecked_note(reconciliation: Reconciliation, why: str) -> dict[str, str]:
    """summary.json's word on a result Pinpointe gave nothing to check against (`reconciled` null)."""
    if reconciliation.reconciled is None:
        return {"note": f"{why}: the records could not be checked against Pinpointe's counts"}
    return {}


def _counted(chunks: Iterable[bytes], counter: ResultFileCounter) -> Iterator[bytes]:
    """The chunks unchanged, each also fed to `counter` on its way to the result store."""
    for chunk in chunks:
        counter.feed(chunk)
        yield chunk


def _reconcile_file(counted: FileCount, status_count: int | None) -> Reconciliation:
    """The records in result.json against the file's own count and AsyncJobStatus's, when given."""
    vendor = {name: n for name, n in (("file_count", counted.vendor_count), ("status_count", status_count)) if n is not None}
    rec = Reconciler(ours={"written": counted.records}, vendor=vendor)
    rec.check(
        "records in result.json vs the count in the file",
        counted.records,
        counted.vendor_count,
        explain=_shortfall_sentence("result.json", counted.records, counted.vendor_count, "the file's own count"),
    )
    rec.check(
        "records in result.json vs the count AsyncJobStatus reported",
        counted.records,
        status_count,
        explain=_shortfall_sentence("result.json", counted.records, status_count, "the count AsyncJobStatus reported"),
    )
    return rec.result()


def _shortfall_sentence(where: str, ours: int, vendor: int | None, theirs: str) -> str:
    if vendor is not None and ours < vendor:
        return f"{where} holds {ours} records but {theirs} says {vendor}: {vendor - ours} missing"
    return f"{where} holds {ours} records but {theirs} says {vendor}: {ours - (vendor or 0)} more than counted"


@dataclass
class _Tally:
    paging: PageTally = field(default_factory=PageTally)
    pages: int = 0
    records: int = 0
    note: str | None = None
    totals: list[int] = field(default_factory=list)  # each page's total (RESULT_TOTAL_KEYS), in order
    page_counts: list[tuple[int, int, int]] = field(default_factory=list)  # (page, its `count`, records sent)


def _json_lines(pages: Iterable[ResultsPage], tally: _Tally) -> Iterator[bytes]:
    """Each page's records as JSON Lines, one chunk per page, counted into `tally` on the way."""
    for page in pages:
        tally.pages += 1
        tally.note = page.note or tally.note
        lines = []
        for record in page.records:
            try:
                lines.append(json_line(record))
            except ValueError:
                raise VendorProtocolError(
                    f"Pinpointe's page {tally.pages} of GetAutoresponderResults has a number JSON cannot hold (NaN or Infinity)",
                    answer=excerpt(repr(record)),
                ) from None
        tally.records += len(lines)
        if page.total is not None:
            tally.totals.append(page.total)
        if page.page_count is not None:
            tally.page_counts.append((tally.pages, page.page_count, len(lines)))
        if lines:
            yield ("\n".join(lines) + "\n").encode()


# Characters that some readers take for a line break (Python's str.splitlines, JavaScript before
# ES2019): inside a JSON string they are written as escapes, so one record is always one line.
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def json_line(record: Any) -> str:
    """One record as one line of JSON Lines (UTF-8 text, no line break of any kind inside)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False).translate(_LINE_BREAKS)


def _reconcile_pages(tally: _Tally) -> Reconciliation:
    """The records written against Pinpointe's counts (api.py, ASSUMPTIONS: a total, page counts, or
    a bare `count` told apart by how it behaves over the pages) and its own `next` offsets."""
    written = tally.records
    vendor: dict[str, int] = {}
    total = tally.totals[-1] if tally.totals else None
    counts = tally.page_counts
    page_counts_agree = bool(counts) and all(count == sent for _, count, sent in counts)
    if counts and not page_counts_agree and total is None and len({count for _, count, _ in counts}) == 1:
        total, counts = counts[0][1], []  # the same `count` beside every page, not the page's records: a total
    if total is not None:
        vendor["total"] = total
    if counts:
        vendor["page_counts_sum"] = sum(count for _, count, _ in counts)
    rec = Reconciler(ours={"written": written, "pages": tally.pages}, vendor=vendor)
    if total is not None:
        changed = sorted(set(tally.totals))
        rec.check(
            "records written vs Pinpointe's total",
            written,
            total,
            explain=_shortfall_sentence(RECORDS_FILE_NAME, written, total, "Pinpointe's total"),
            note=f"the total changed between pages: {changed}" if len(changed) > 1 else None,
        )
    if counts:
        wrong = [(page, count, sent) for page, count, sent in counts if count != sent]
        shown = ", ".join(f"page {page}: counted {count}, sent {sent}" for page, count, sent in wrong[:5])
        rec.check(
            "records sent vs the count beside them on each page",
            sum(sent for _, _, sent in counts),
            vendor["page_counts_sum"],
            explain=f"Pinpointe's count beside the records disagrees with the records it sent on {len(wrong)} "
            f"page(s) ({shown}{', ...' if len(wrong) > 5 else ''})",
        )
    disagreements = tally.paging.next_disagreements
    if disagreements:
        page, vendor_next, ours = disagreements[0]
        vendor["first_disagreeing_next"] = vendor_next
        rec.check(
            f"page {page}: Pinpointe's pagination.next vs the records it had sent",
            ours,
            vendor_next,
            explain=f"after page {page} Pinpointe's pagination.next said the next page starts at record {vendor_next}, "
            f"but it had sent {ours} records; the pages were read on from the records actually sent, so records "
            f"may be missing or repeated where the two disagree ({len(disagreements)} page(s) disagreed)",
        )
    return rec.result()


def _chosen(params: AutoresponderResultsParams) -> str:
    if params.autoresponderid is not None:
        return f"autoresponder {params.autoresponderid}"
    if params.autorespondername is not None:
        return f"autoresponder {params.autorespondername!r}"
    return "all autoresponders"


def _export_params_model(operation: str) -> type[AsyncExportParams]:
    model = PARAMS_MODELS.get(operation)
    if model is None or not issubclass(model, AsyncExportParams):
        raise ValueError(f"{operation!r} is not a Pinpointe async export")
    return model


def pinpointe_exports(secret: dict[str, Any], *, not_found_grace_seconds: int) -> PinpointeExports:
    """The exports adapter for the account whose secret is `secret` (VendorRejected if it is invalid)."""
    return PinpointeExports(
        PinpointeAccount.from_secret(secret), http=shared_http_client(), not_found_grace_seconds=not_found_grace_seconds
    )


def pinpointe_autoresponder_results(secret: dict[str, Any], *, not_found_grace_seconds: int) -> PinpointeAutoresponderResults:
    """The GetAutoresponderResults adapter for the account whose secret is `secret`."""
    return PinpointeAutoresponderResults(
        PinpointeAccount.from_secret(secret), http=shared_http_client(), not_found_grace_seconds=not_found_grace_seconds
    )
