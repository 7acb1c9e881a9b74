"""MyPreferences' side of a bulk import (the VendorImports port): check and encode records, Initiate
the import, Stage batches, Execute it, follow its status, list the records that failed, and check
the result against the vendor's own counts (reconcile.py).

Everything after Initiate rides on the import's access token, which dies after 6 (or 12) hours
(docs/VENDORS.md 2.3.1). `open` records when we take it to die, and every later call checks that first,
so an import that outlived its token fails with that reason instead of a bare 401.
"""

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
from pydantic import Secret

from jobrelay.domain.bulk_import import BatchFormat, BatchLimits, ImportTotals, StagedBatch
from jobrelay.domain.errors import VendorOutcomeUnknown, VendorProtocolError, VendorRejected
from jobrelay.domain.job import Job, Progress, utcnow
from jobrelay.domain.operation import stored_params
from jobrelay.domain.reconciliation import Reconciler
from jobrelay.domain.request_retries import RequestRetry
from jobrelay.domain.vendor_outcomes import PollOutcome, VendorState
from jobrelay.domain.vendor_ref import VendorRef
from jobrelay.vendors.http import shared_http_client
from jobrelay.vendors.mypreferences.api import (
    EXCEPTIONS_PAGE_SIZE,
    FIRST_OFFSET,
    STAGE_FORMAT,
    ExceptionsPage,
    InitiateRequest,
    UserProfilePreference,
    access_token_expiry,
    is_staging,
)
from jobrelay.vendors.mypreferences.auth import MyPreferencesAccount
from jobrelay.vendors.mypreferences.client import MyPreferencesClient
from jobrelay.vendors.mypreferences.limits import MAX_RECORDS_PER_IMPORT
from jobrelay.vendors.mypreferences.params import BulkImportParams
from jobrelay.vendors.mypreferences.reconcile import reconcile_import
from jobrelay.vendors.reading import Page, PageTally, follow_pages
from jobrelay.vendors.redaction import excerpt, register_secret

__all__ = ["MyPreferencesAccount", "MyPreferencesImports", "mypreferences_imports"]

log = logging.getLogger(__name__)


class ImportRef(VendorRef):
    """A MyPreferences bulk import: its access token (a secret: it is the import's only key, docs/VENDORS.md
    2.2), when we take the token to die, and the last Status word read."""

    access_token: Secret[int]
    expires_at: datetime
    status: str | None = None


class MyPreferencesImports:
    """The VendorImports port for one MyPreferences account."""

    def __init__(
        self,
        account: MyPreferencesAccount,
        *,
        http: httpx.Client | None = None,
        now: Callable[[], datetime] = utcnow,
        exceptions_page_size: int = EXCEPTIONS_PAGE_SIZE,
        retry: RequestRetry | None = None,
    ):
        self.max_concurrent_jobs = account.max_concurrent_jobs  # read by the Start step
        self._stage_concurrency = account.stage_concurrency
        self._client = MyPreferencesClient(
            account.base_url,
            account.client_id,
            auth=account.authenticator(),
            http=http or httpx.Client(),
            timeout=account.timeout,
        )
        self._now = now
        self._page_size = exceptions_page_size
        # Each exception page is retried on its own (reading.follow_pages).
        self._retry = retry if retry is not None else RequestRetry()

    def limits_for(self, job: Job) -> BatchLimits:
        """The job's limits: its `batch_bytes` (never above the vendor's 28 MB, which the params
        model enforces) and the vendor's records-per-import cap."""
        return self._limits(stored_params(job, BulkImportParams).batch_bytes)

    @staticmethod
    def _limits(max_bytes: int) -> BatchLimits:
        return BatchLimits(max_bytes=max_bytes, max_records=None, max_total_records=MAX_RECORDS_PER_IMPORT)

    # --- records ------------------------------------------------------------------------------------

    def validate(self, job: Job, record: dict[str, Any]) -> UserProfilePreference:
        return UserProfilePreference.model_validate(record)

    def record_key(self, record: UserProfilePreference) -> str | None:
        return record.key

    def batch_format(self, job: Job) -> BatchFormat:
        return STAGE_FORMAT

    # --- the import ---------------------------------------------------------------------------------

    def open(self, job: Job) -> ImportRef:
        params = stored_params(job, BulkImportParams)
        initiated_at = self._now()  # before the call: the token's clock may start before its answer
        status = self._client.initiate(initiate_request(params))
        expires_at = access_token_expiry(status.Expires, initiated_at)
        log.info("MyPreferences import %r initiated; its access token is taken to die at %s", params.name, expires_at)
        assert status.AccessToken is not None  # the client raises VendorOutcomeUnknown for an answer without one
        return ImportRef(access_token=Secret(status.AccessToken), expires_at=expires_at, status=status.Status)

    def usable_until(self, job: Job) -> datetime:
        return ImportRef.of(job).expires_at

    def stage_concurrency(self, job: Job) -> int:
        return self._stage_concurrency

    def stage(self, job: Job, body: bytes, records: int) -> StagedBatch:
        cap = stored_params(job, BulkImportParams).batch_bytes
        if len(body) > cap:
            raise ValueError(f"a stage body of {len(body):,} bytes is above this job's batch_bytes ({cap:,})")
        status = self._client.stage(self._live_token(job), body)
        log.info(
            "MyPreferences staged %d records (%d bytes); %d received and %d failed validation so far",
            records,
            len(body),
            status.TotalRecordsReceived,
            status.ValidationFailed,
        )
        return StagedBatch(counts=status.counts())

    def run_started(self, job: Job) -> bool:
        """Whether an Execute sent earlier reached MyPreferences: its status has left staging (see
        api.py, Execute). A word we do not know cannot say, and the job fails with it rather than
        executing twice or waiting for an import never executed."""
        current = self._client.status(self._live_token(job))
        if is_staging(current.Status):
            return False
        if not current.reading.known:
            raise VendorOutcomeUnknown(
                f"an Execute sent earlier got no answer, and MyPreferences' status {current.Status!r} is not one "
                "we know, so it cannot tell whether the import was executed: Execute is not sent again",
                answer=current.excerpt(),
            )
        log.info("MyPreferences import is already %r; Execute is not sent again", current.Status)
        return True

    def execute(self, job: Job) -> None:
        self._client.execute(self._live_token(job))

    def poll(self, job: Job) -> PollOutcome:
        """The import's state from its Status word (api.py, STATUS_TABLE). The counts of the answer
        that says it is done are final: reconcile() checks the result against them."""
        status = self._client.status(self._live_token(job))
        reading = status.reading
        log.info("MyPreferences import is %s (status %r)", reading.state, status.Status)
        note = f"MyPreferences: {status.Status}"
        progress = Progress(percent=status.percent_done(), counts=status.counts(), note=note)
        return PollOutcome(
            state=reading.state,
            raw_status=status.Status,
            progress=progress,
            message=status.failure_reason() if reading.state is VendorState.FAILED else None,
            vendor_ref=ImportRef.of(job).model_copy(update={"status": status.Status}),
            unknown_status_answer=None if reading.known else status.excerpt(),
        )

    def failures(self, job: Job) -> Iterator[tuple[int, list[str], str | None]]:
        """Every record MyPreferences lists as an exception (failed at staging or at execution):
        its 1-based position among the staged records, its reasons, and its key from the echo."""
        return self._exception_records(self._live_token(job))  # the token is checked now, not at first read

    def cancel(self, job: Job) -> bool:
        """MyPreferences documents no way to abort an import (docs/VENDORS.md 2.3): one never executed
        expires with its staged data; one executed runs to its end."""
        return False

    def reconcile(self, job: Job, totals: ImportTotals, rec: Reconciler) -> None:
        """Our totals against the vendor's final counts (reconcile.py)."""
        reconcile_import(job.progress.counts, job.vendor_status, totals, rec)

    def _exception_records(self, token: int) -> Iterator[tuple[int, list[str], str | None]]:
        """Every exception record once, page after page (api.py, EXCEPTIONS_PAGE_SIZE): the next
        page starts after the records the vendor actually sent."""
        seen = _SequenceNumbers()
        offsets: list[int] = []

        def fetch(offset: int, _cursor: str | None) -> Page:
            page = self._client.exceptions(token, limit=self._page_size, offset=offset)
            offsets.append(offset)
            if page.Offset is not None and page.Offset != offset:
                log.warning("MyPreferences answered exceptions at offset %d with Offset %d", offset, page.Offset)
            return Page(records=page.records, more=page.HasMore, answer=lambda: excerpt(_page_answer(page)))

        tally = PageTally()
        pages = follow_pages(
            fetch,
            first=FIRST_OFFSET,
            what="MyPreferences' exception pages",
            max_pages=MAX_RECORDS_PER_IMPORT + 2,
            tally=tally,
            retry=self._retry,
        )
        for page in pages:
            fresh = [record for record in page.records if seen.add(record.SequenceNumber)]
            if page.records and not fresh:
                raise VendorProtocolError(
                    f"MyPreferences' exception page at offset {offsets[-1]} holds only records it listed before "
                    f"(SequenceNumbers {page.records[0].SequenceNumber}..{page.records[-1].SequenceNumber}); "
                    "the pages make no progress",
                    answer=page.answer() if page.answer else None,
                )
            if len(fresh) < len(page.records):
                log.warning(
                    "MyPreferences listed %d exception records twice; each is reported once", len(page.records) - len(fresh)
                )
            for record in fresh:
                yield record.SequenceNumber, record.reasons(), record.key
        log.info("MyPreferences listed %d exception records in %d pages", seen.count, tally.pages)

    def _live_token(self, job: Job) -> int:
        """The import's access token, or VendorRejected once the time we gave it has passed."""
        ref = ImportRef.of(job)
        token, expires_at = ref.access_token.get_secret_value(), ref.expires_at
        if self._now() >= expires_at:
            raise VendorRejected(
                f"the import's access token expired at {expires_at.isoformat()} (MyPreferences keeps it 6 to 12 "
                "hours after Initiate); the import cannot go on, submit it again"
            )
        register_secret(str(token))  # this process may not be the one that read it from Initiate
        return int(token)


def initiate_request(params: BulkImportParams) -> InitiateRequest:
    return InitiateRequest(
        Name=params.name,
        DataStageDuration=params.data_stage_duration,
        ImportAction=params.import_action,
        MatchCriteria=params.match_criteria,
        MatchValue=params.match_value,
        RefreshAlternateIds=params.refresh_alternate_ids,
        RefreshContacts=params.refresh_contacts,
        RefreshCustomFields=params.refresh_custom_fields,
        RefreshGroups=params.refresh_groups,
        RefreshTags=params.refresh_tags,
        AllowPriorConsents=params.allow_prior_consents,
    )


class _SequenceNumbers:
    """The SequenceNumbers listed so far, in a bitmap: an import holds at most 10 million records
    (1.25 MB of bits), where a set of that many ints would take hundreds of MB. Numbers outside
    that range (not positions of staged records) go to a small set."""

    def __init__(self, limit: int = MAX_RECORDS_PER_IMPORT):
        self._limit = limit
        self._bits = bytearray()
        self._others: set[int] = set()
        self.count = 0

    def add(self, number: int) -> bool:
        """True when `number` is new."""
        if not 1 <= number <= self._limit:
            new = number not in self._others
            self._others.add(number)
        else:
            byte, bit = divmod(number - 1, 8)
            if byte >= len(self._bits):
                self._bits.extend(bytes(byte + 1 - len(self._bits)))
            new = not self._bits[byte] & (1 << bit)
            self._bits[byte] |= 1 << bit
        self.count += new
        return new


def _page_answer(page: ExceptionsPage) -> dict[str, Any]:
    """A page as an excerpt shows it: its header and the records' numbers (their echo is not needed)."""
    return {**page.model_dump(exclude_none=True), "SequenceNumbers": [record.SequenceNumber for record in page.records]}


def mypreferences_imports(secret: dict[str, Any], *, not_found_grace_seconds: int = 0) -> MyPreferencesImports:
    """The adapter for the account whose secret is `secret` (raises VendorRejected if it is invalid).
    `not_found_grace_seconds` keeps the registry's one factory signature; it has no use here, since
    MyPreferences knows an import from its Initiate answer on."""
    return MyPreferencesImports(MyPreferencesAccount.from_secret(secret), http=shared_http_client())
