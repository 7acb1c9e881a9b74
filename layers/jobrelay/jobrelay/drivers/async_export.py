"""Exports the vendor runs in the background (OperationKind.ASYNC_EXPORT): Start sends the async call
(with a webhook URL when the vendor calls back), the job waits for the webhook or polls, and Collect
streams the vendor's result file into ours."""

import hashlib
import secrets

from jobrelay.domain.job import Job, JobPatch, TimelineEvent, WaitingOn
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_outcomes import CollectOutcome, PollOutcome, WaitMode
from jobrelay.drivers.base import AfterStart, Driver
from jobrelay.ports import AsyncExports
from jobrelay.services import progress
from jobrelay.services.creating_calls import creating_call
from jobrelay.vendors.redaction import register_secret


class AsyncExportDriver(Driver[AsyncExports]):
    def start(self, job: Job) -> tuple[Job, AfterStart]:
        if job.status is JobStatus.STARTING:  # a Start retried after the job moved on sends nothing
            job = self._start_at_vendor(job)
        return job, "wait"

    def _start_at_vendor(self, job: Job) -> Job:
        store, now = self._context.store, self._context.now
        webhook_url = None
        if self.vendor.wait_mode is WaitMode.WEBHOOK:
            # A fresh 256-bit capability token per start; only its hash is kept. Stored before the
            # vendor call so a webhook that beats our own bookkeeping is still recognised.
            token = secrets.token_urlsafe(32)
            register_secret(token)  # masked wherever it shows (the vendor call log of the start)
            store.update(job.job_id, JobPatch(webhook_token_sha256=hashlib.sha256(token.encode()).hexdigest()))
            webhook_url = f"{self._context.settings.public_api_url}/webhooks/{job.vendor}/{job.job_id}/{token}"
        with creating_call(store, job, now):
            outcome = self.vendor.start(job, webhook_url)
        started_at = now()
        # Not the vendor's start note ("job 123 started"): it stayed on jobs long after it was true
        # (the job and its request method are in vendor_ref). From here the job waits, and its note
        # says for whom, since when and how.
        shown = progress.waiting(
            job, job.progress.model_copy(update={"percent": None}), since=started_at, on=self.waiting_on, vendor_status=None
        )
        moved = store.transition(
            job.job_id,
            JobStatus.RUNNING,
            TimelineEvent(
                at=started_at,
                event="started",
                detail={"vendor_ref": outcome.vendor_ref.shown(), "wait": self.vendor.wait_mode.value},
            ),
            outcome.vendor_ref.patch(vendor_started_at=started_at, progress=shown),
        )
        return moved.job

    @property
    def waiting_on(self) -> WaitingOn:
        return "webhook" if self.vendor.wait_mode is WaitMode.WEBHOOK else "polling"

    def poll(self, job: Job) -> PollOutcome:
        return self.vendor.poll(job)

    def collect(self, job: Job) -> CollectOutcome:
        return self.vendor.collect(job, self._context.results)
