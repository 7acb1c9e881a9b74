"""The job as the API shows it: backend-only fields dropped, vendor links hidden, our own result
files given presigned download links, and its progress as of the moment it is read (the time a
wait has lasted so far, services/progress.live)."""

from datetime import datetime
from typing import Any

from jobrelay.api.models import FileView, JobView, ResultView
from jobrelay.domain.job import Job, TimelineEvent, utcnow
from jobrelay.ports import ResultStore
from jobrelay.services.progress import live


def job_view(job: Job, results: ResultStore, timeline: list[TimelineEvent] | None = None, now: datetime | None = None) -> JobView:
    return JobView(
        job_id=job.job_id,
        operation=job.operation,
        account=job.account,
        status=job.status,
        created_at=job.created_at,
        updated_at=job.updated_at,
        deadline_at=job.deadline_at,
        progress=live(job, now or utcnow()),
        vendor_ref=shown_vendor_ref(job),
        callback_url=job.callback_url,
        schedule=job.schedule,
        result=_result_view(job, results),
        reconciliation=job.reconciliation,
        error=job.error,
        timeline=timeline,
    )


def _result_view(job: Job, results: ResultStore) -> ResultView | None:
    if job.result is None:
        return None
    return ResultView(
        s3_uri=job.result.s3_uri,
        size=job.result.size,
        sha256=job.result.sha256,
        download_url=results.download_url(job.result.s3_uri),
        files=[
            FileView(
                name=f.name,
                s3_uri=f.s3_uri,
                size=f.size,
                sha256=f.sha256,
                download_url=results.download_url(f.s3_uri),
            )
            for f in job.result.files
        ],
    )


def shown_vendor_ref(job: Job) -> dict[str, Any]:
    """The vendor reference as the API shows it: the adapter's public fields (its secret ones are
    stored apart, never here), with when the vendor's side began and its last status word."""
    shown: dict[str, Any] = {}
    if job.vendor_started_at is not None:
        shown["started_at"] = job.vendor_started_at.isoformat()
    shown.update(job.vendor_ref)
    if job.vendor_status is not None:
        shown["last_status"] = job.vendor_status
    return shown
