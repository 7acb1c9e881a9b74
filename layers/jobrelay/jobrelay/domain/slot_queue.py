"""A job parked in its account's queue for a concurrency slot, as the SlotQueue port keeps it.

A job over its account's limit does not poll: its execution waits on a task token (the state
machine's WaitForSlot), kept here at the job's place in the queue, and is woken with that token
when a slot frees. The place is the job's submission (created_at, then job_id, which sorts by time
too), so a job keeps its place however often it parks again.
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ParkedJob(BaseModel):
    model_config = ConfigDict(frozen=True)

    pool: str  # the vendor account's pool (services/concurrency.AccountConcurrency.pool)
    job_id: str
    submitted_at: datetime  # the job's created_at: with job_id, its place in the queue
    # What wakes the execution (SendTaskSuccess). Kept out of reprs, so out of logs: whoever holds
    # it can move the job on.
    task_token: str = Field(repr=False)
    limit: int  # the account's limit when the job parked: how many slots a wake-up may fill
    parked_at: datetime
    until: datetime  # the entry's end whatever happens (the job's deadline and some slack)
    # Set, in one guarded write, by whoever sends the token: the job is on its way to take a slot,
    # and that slot is promised to it (nobody else is woken for it) for a while.
    woken_at: datetime | None = None

    @property
    def place(self) -> tuple[datetime, str]:
        return (self.submitted_at, self.job_id)
