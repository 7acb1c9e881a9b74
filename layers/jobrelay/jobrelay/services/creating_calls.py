"""Calls that create work at a vendor are sent once (docs/DESIGN.md, Results are reconciled).

An export's start or an import's opening may reach the vendor even when its answer never reaches
us (a timeout, a Lambda that died after sending). Sending it again could start the work twice, so
the moment of sending is recorded on the job first; a step that finds it recorded with nothing
created cannot know what the vendor did, and fails the job instead of guessing.

The adapters raise VendorOutcomeUnknown themselves when the creating call goes unanswered or is
answered unreadably. Every other step error proves nothing was created (an error status the vendor
answered, a refusal, a read before the creating call that failed), so it clears the record again and
the state machine's retry of the step may send the call once more.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from jobrelay.domain.errors import InvalidSource, VendorOutcomeUnknown, VendorRejected, VendorTransientError
from jobrelay.domain.job import Job, JobPatch
from jobrelay.ports import JobStore


@contextmanager
def creating_call(store: JobStore, job: Job, now: Callable[[], datetime]) -> Iterator[None]:
    """Around the job's creating call (and the reads that precede it in the same step): record that
    it is about to be sent, or raise VendorOutcomeUnknown when an earlier attempt sent it and never
    recorded what it created."""
    if job.start_sent_at is not None:
        raise VendorOutcomeUnknown(
            f"the call that starts this job at {job.vendor} was sent at {job.start_sent_at.isoformat(timespec='seconds')} "
            "by an earlier attempt whose answer was never recorded; the vendor may have started the work, so the call "
            "is not sent again: check at the vendor, then submit the job again if nothing was started"
        )
    sent_at = now()
    store.update(job.job_id, JobPatch(start_sent_at=sent_at))
    job.start_sent_at = sent_at
    try:
        yield
    except (VendorTransientError, VendorRejected, InvalidSource):
        # Nothing was created: an error the vendor answered, a refusal, a records file we would not
        # send, or a read before the creating call that failed. (An adapter whose creating call
        # itself goes unanswered raises VendorOutcomeUnknown, never VendorTransientError.)
        _forget(store, job)
        raise


def _forget(store: JobStore, job: Job) -> None:
    store.update(job.job_id, JobPatch(start_sent_at=None))
    job.start_sent_at = None
