"""Calls that create work at a vendor are sent once (DESIGN.md, Results are reconciled).

An export's start or an import's opening may reach the vendor even when its answer never reaches
us (a timeout, a Lambda that died after sending). Sending it again could start the work twice, so
the moment of sending is recorded on the job first; a step that finds it recorded with nothing
created cannot know what the vendor did, and fails the job instead of guessing.
"""

from collections.abc import Callable
from datetime import datetime

from jobrelay.domain.errors import VendorOutcomeUnknown
from jobrelay.domain.job import Job, JobPatch
from jobrelay.ports import JobStore


def record_creating_call(store: JobStore, job: Job, now: Callable[[], datetime]) -> None:
    """Record that the job's creating call is about to be sent, or raise VendorOutcomeUnknown when
    an earlier attempt sent it and never recorded what it created."""
    if job.start_sent_at is not None:
        raise VendorOutcomeUnknown(
            f"the call that starts this job at {job.vendor} was sent at {job.start_sent_at.isoformat(timespec='seconds')} "
            "by an earlier attempt whose answer was never recorded; the vendor may have started the work, so the call "
            "is not sent again: check at the vendor, then submit the job again if nothing was started"
        )
    sent_at = now()
    store.update(job.job_id, JobPatch(start_sent_at=sent_at))
    job.start_sent_at = sent_at
