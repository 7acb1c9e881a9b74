"""How many jobs of one vendor account may be at the vendor at once (the account secret's
`max_concurrent_jobs`): vendors throttle, and MyPreferences recommends one import at a time.

A job takes a slot of its account's pool (a DynamoDB lease, see adapters/dynamodb_slots) before
its Start reaches the vendor, and gives it back on every way a job ends: Collect, FailJob, a step
that finds the job ended, cancel, and the sweeper. A job over the limit stays SUBMITTED with a
"queued behind N jobs" note and tries again after a wait (the state machine's WaitForSlot). Should
every one of those releases be lost, the lease still ends at the job's deadline plus LEASE_SLACK,
and the sweeper frees any lease whose holder has ended.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from jobrelay.domain.job import Job, utcnow
from jobrelay.domain.lease import Lease
from jobrelay.domain.status import JobStatus
from jobrelay.ports import JobStore, Slots

logger = logging.getLogger(__name__)

LEASE_SLACK = timedelta(minutes=15)
QUEUE_SCAN = 100  # queued jobs looked at to say how many are ahead (the newest ones)


class AccountConcurrency:
    def __init__(self, slots: Slots, store: JobStore, now: Callable[[], datetime] = utcnow):
        self._slots = slots
        self._store = store
        self._now = now

    @staticmethod
    def pool(job: Job) -> str:
        return f"{job.vendor}#{job.account}"

    def admit(self, job: Job, limit: int | None) -> int:
        """0 when the job may go to the vendor (it holds a slot, or its account has no limit);
        otherwise how many jobs are ahead of it: those holding the slots and those queued earlier."""
        if limit is None:
            return 0
        if self._slots.acquire(self.pool(job), job.job_id, limit, job.deadline_at + LEASE_SLACK):
            return 0
        return len(self._slots.leases(self.pool(job))) + self._queued_ahead(job)

    def release(self, job: Job) -> None:
        self._slots.release(self.pool(job), job.job_id)

    def release_orphans(self, ended: Callable[[str], bool]) -> list[Lease]:
        """Free every lease whose holder has ended (`ended(job_id)`): what a crash left behind."""
        freed = []
        for lease in self._slots.leases():
            if ended(lease.holder):
                self._slots.release(lease.pool, lease.holder)
                freed.append(lease)
        return freed

    def _queued_ahead(self, job: Job) -> int:
        page = self._store.list(status=JobStatus.SUBMITTED, operation=None, limit=QUEUE_SCAN, cursor=None)
        return sum(
            1
            for other in page.jobs
            # Submitted earlier; job ids sort by time too, which breaks a tie of the same instant.
            if self.pool(other) == self.pool(job) and (other.created_at, other.job_id) < (job.created_at, job.job_id)
        )
