"""The in-memory SlotQueue the service tests use. It passes the same contract tests as the DynamoDB
adapter (tests/integration/test_slot_queue_contract.py). Kept beside tests/fakes.py, where it
belongs once that file is free to change."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from jobrelay.domain.job import utcnow
from jobrelay.domain.slot_queue import ParkedJob

Key = tuple[str, datetime, str]  # pool, submitted_at, job_id: the entry's place in its pool


@dataclass
class InMemorySlotQueue:
    """SlotQueue in a dict: one entry per job and pool, ordered by place, gone once past `until`."""

    clock: Callable[[], datetime] = utcnow
    entries: dict[Key, ParkedJob] = field(default_factory=dict)

    def park(self, parked: ParkedJob) -> None:
        self.entries[(parked.pool, parked.submitted_at, parked.job_id)] = parked

    def parked(self, pool: str | None = None) -> list[ParkedJob]:
        now = self.clock()
        live = [entry for entry in self.entries.values() if entry.until > now and pool in (None, entry.pool)]
        return sorted(live, key=lambda entry: (entry.pool, entry.place))

    def claim_wake(self, parked: ParkedJob, at: datetime) -> bool:
        key = (parked.pool, parked.submitted_at, parked.job_id)
        current = self.entries.get(key)
        if current is None or (current.task_token, current.woken_at) != (parked.task_token, parked.woken_at):
            return False
        self.entries[key] = current.model_copy(update={"woken_at": at})
        return True

    def leave(self, pool: str, job_id: str, submitted_at: datetime, *, task_token: str | None = None) -> bool:
        key = (pool, submitted_at, job_id)
        current = self.entries.get(key)
        if current is None or (task_token is not None and current.task_token != task_token):
            return False
        del self.entries[key]
        return True
