"""How many jobs of one vendor account may be at the vendor at once (the account secret's
`max_concurrent_jobs`): vendors throttle, and MyPreferences recommends one import at a time.

A job takes a slot of its account's pool (a DynamoDB lease, see adapters/dynamodb_slots) before
its Start reaches the vendor, and gives it back on every way a job ends: Collect, FailJob, a step
that finds the job ended, cancel, and the sweeper. Should every one of those releases be lost, the
lease still ends at the job's deadline plus LEASE_SLACK, and the sweeper frees any lease whose
holder has ended.

A job over the limit stays SUBMITTED with a "queued behind N jobs" note and parks: its execution
waits on a task token (the state machine's WaitForSlot), kept in the pool's queue (SlotQueue) at
the job's place, its submission. Waiting costs nothing. Whenever a slot frees, `wake` sends the
tokens of the first parked jobs, one per free slot, in submission order; a woken job's Start looks
again. Queued jobs also go first: a job takes a free slot only when fewer jobs are queued before it
than slots are free, so a new submission does not overtake the queue.

Races are settled by conditional writes, never by timing: two wakers cannot wake the same job
(`SlotQueue.claim_wake`), a slot goes to one of two jobs racing for it (`Slots.acquire`), and a
woken job that finds the slot gone parks again at its place. A woken job's slot is promised to it
for WAKE_GRACE, so wakers do not wake a second job for it meanwhile.

A wake-up can still be lost (the function died between the release and the wake-up, a lease
expired by itself). Three things catch it: a job that parks wakes whoever a slot is free for (itself
included) right after it parks; the sweeper wakes the parked jobs of every pool with free slots
(`wake_stranded`); and the parked task's own timeout, the long fallback of the state machine.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from jobrelay.domain.job import Job, utcnow
from jobrelay.domain.lease import Lease
from jobrelay.domain.slot_queue import ParkedJob
from jobrelay.ports import JobStore, SlotQueue, Slots, Workflow

logger = logging.getLogger(__name__)

LEASE_SLACK = timedelta(minutes=15)
# A woken job takes its slot within seconds (its Start's first read); one that has not after this
# long is taken as lost (its execution died), and the slot is offered to the next job.
WAKE_GRACE = timedelta(minutes=2)


class AccountConcurrency:
    def __init__(
        self,
        slots: Slots,
        store: JobStore,
        now: Callable[[], datetime] = utcnow,
        *,
        queue: SlotQueue | None = None,
        workflow: Workflow | None = None,
    ):
        """`queue` and `workflow` (which sends the tokens): where jobs park, and how they are woken.
        Without them a queued job is never woken and waits out its fallback timeout."""
        self._slots = slots
        self._store = store
        self._now = now
        self._queue = queue
        self._workflow = workflow

    @staticmethod
    def pool(job: Job) -> str:
        return f"{job.vendor}#{job.account}"

    # --- taking a slot ----------------------------------------------------------------------------

    def admit(self, job: Job, limit: int | None) -> int:
        """0 when the job may go to the vendor (it holds a slot, or its account has no limit);
        otherwise how many jobs are ahead of it: those holding the slots and those queued earlier."""
        if limit is None:
            return 0
        pool = self.pool(job)
        leases = self._slots.leases(pool)
        if any(lease.holder == job.job_id for lease in leases):  # a retried Start
            self._leave(job)
            return 0
        ahead = self._parked_ahead(job)
        if ahead < limit - len(leases) and self._slots.acquire(pool, job.job_id, limit, job.deadline_at + LEASE_SLACK):
            self._leave(job)
            return 0
        return len(leases) + ahead

    def park(self, job: Job, limit: int, task_token: str) -> None:
        """Keep the job's task token at its place in its pool's queue, then wake whoever a slot is
        free for: the job itself when a slot freed after its Start looked and before it parked,
        when no release could have found it in the queue."""
        if self._queue is None:
            return
        now = self._now()
        self._queue.park(
            ParkedJob(
                pool=self.pool(job),
                job_id=job.job_id,
                submitted_at=job.created_at,
                task_token=task_token,
                limit=limit,
                parked_at=now,
                until=job.deadline_at + LEASE_SLACK,
            )
        )
        self._wake_best_effort(self.pool(job))

    # --- giving it back ---------------------------------------------------------------------------

    def release(self, job: Job) -> None:
        """Give back the job's slot and its place in the queue; if either freed something (a slot,
        or a slot promised to it), the next parked job is woken."""
        pool = self.pool(job)
        held = any(lease.holder == job.job_id for lease in self._slots.leases(pool))
        self._slots.release(pool, job.job_id)
        left = self._leave(job)
        if held or left:
            self._wake_best_effort(pool)

    def release_orphans(self, ended: Callable[[str], bool]) -> list[Lease]:
        """Free every lease whose holder has ended (`ended(job_id)`): what a crash left behind.
        The parked jobs those slots are for are woken by `wake_stranded`, which the sweeper runs next."""
        freed = []
        for lease in self._slots.leases():
            if ended(lease.holder):
                self._slots.release(lease.pool, lease.holder)
                freed.append(lease)
        return freed

    # --- waking -----------------------------------------------------------------------------------

    def wake(self, pool: str, *, drop_ended: bool = False) -> list[str]:
        """Wake the first parked jobs of `pool`, in submission order: as many as the pool has free
        slots, counting a job woken less than WAKE_GRACE ago as already on its way. A token nobody
        waits on any more (its task timed out, its execution ended) is dropped and the next job gets
        the slot. `drop_ended`: also drop the entries of jobs that have ended (the sweeper's
        clean-up; a release drops its own job's). Returns the ids of the jobs woken."""
        if self._queue is None or self._workflow is None:
            return []
        parked = self._queue.parked(pool)
        if not parked:
            return []
        now = self._now()
        # The limit as the latest job to park read it from the account's secret.
        limit = max(parked, key=lambda entry: entry.parked_at).limit
        seats = limit - len(self._slots.leases(pool))
        woken: list[str] = []
        for entry in parked:
            if seats <= 0:
                break
            if drop_ended and self._has_ended(entry.job_id):
                self._queue.leave(pool, entry.job_id, entry.submitted_at, task_token=entry.task_token)
                continue
            if entry.woken_at is not None and now - entry.woken_at < WAKE_GRACE:
                seats -= 1  # on its way to this slot
                continue
            if not self._queue.claim_wake(entry, now):
                seats -= 1  # another waker has just woken it
                continue
            if self._workflow.resume(entry.task_token, {"via": "slot_free"}):
                woken.append(entry.job_id)
                seats -= 1
            else:  # not waiting on this token any more: it parks again (at its place) or has ended
                self._queue.leave(pool, entry.job_id, entry.submitted_at, task_token=entry.task_token)
        if woken:
            logger.info("woke %d parked jobs of pool %s", len(woken), pool)
        return woken

    def wake_stranded(self) -> list[str]:
        """The sweeper's catch for lost wake-ups: in every pool with parked jobs, drop the entries
        of ended jobs and wake one parked job per free slot nobody was woken for."""
        if self._queue is None:
            return []
        pools = sorted({entry.pool for entry in self._queue.parked()})
        return [job_id for pool in pools for job_id in self.wake(pool, drop_ended=True)]

    # --- helpers ----------------------------------------------------------------------------------

    def _parked_ahead(self, job: Job) -> int:
        if self._queue is None:
            return 0
        place = (job.created_at, job.job_id)
        return sum(1 for entry in self._queue.parked(self.pool(job)) if entry.place < place)

    def _leave(self, job: Job) -> bool:
        if self._queue is None:
            return False
        return self._queue.leave(self.pool(job), job.job_id, job.created_at)

    def _wake_best_effort(self, pool: str) -> None:
        # A wake-up that fails here must not fail what freed the slot (a job's Collect, a cancel):
        # it is a lost wake-up, which the sweeper and the parked task's fallback timeout catch.
        try:
            self.wake(pool)
        except Exception as exc:
            logger.warning("could not wake the parked jobs of pool %s (%s); the sweeper will", pool, type(exc).__name__)

    def _has_ended(self, job_id: str) -> bool:
        job = self._store.get(job_id)
        return job is None or job.is_terminal
