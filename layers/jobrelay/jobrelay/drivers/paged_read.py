"""Reads the vendor answers at once, page by page (OperationKind.PAGED_READ): Start only checks that
the read can succeed, then the job goes straight to Collect, which reads every page. Nothing runs at
the vendor in between: no wait, nothing to cancel."""

from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_outcomes import CollectOutcome
from jobrelay.drivers.base import AfterStart, Driver
from jobrelay.ports import PagedReads
from jobrelay.services import progress


class PagedReadDriver(Driver[PagedReads]):
    def start(self, job: Job) -> tuple[Job, AfterStart]:
        if job.status is JobStatus.STARTING:
            checked = self.vendor.check(job)
            now = self._context.now()
            # The vendor's note says how the result will be read (its pages, their size).
            shown = progress.collecting(job.progress, self.collecting_note(job)).model_copy(
                update={"percent": None, "note": checked.note or self.collecting_note(job)}
            )
            moved = self._context.store.transition(
                job.job_id,
                JobStatus.RUNNING,
                TimelineEvent(at=now, event="started", detail={"vendor_ref": checked.vendor_ref.shown(), "wait": "none"}),
                checked.vendor_ref.patch(vendor_started_at=now, progress=shown),
            )
            job = moved.job
        return job, "collect"

    def collect(self, job: Job) -> CollectOutcome:
        return self.vendor.collect(job, self._context.results)

    def cancel(self, job: Job) -> bool:
        return False  # nothing runs at the vendor between our calls
