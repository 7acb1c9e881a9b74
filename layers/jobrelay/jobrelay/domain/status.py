"""Job statuses and the transitions allowed between them (docs/DESIGN.md, Job model)."""

from enum import StrEnum


class JobStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    COLLECTING = "COLLECTING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.PARTIAL, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED}
)
ACTIVE: frozenset[JobStatus] = frozenset(JobStatus) - TERMINAL

# For each status, the statuses a job may be in just before it. A transition is a conditional write
# guarded by exactly this set, so a lost race (webhook vs poll vs timeout vs cancel) changes nothing.
ALLOWED_PREDECESSORS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.SUBMITTED: frozenset(),
    JobStatus.STARTING: frozenset({JobStatus.SUBMITTED}),
    JobStatus.RUNNING: frozenset({JobStatus.STARTING}),
    JobStatus.COLLECTING: frozenset({JobStatus.RUNNING}),
    JobStatus.SUCCEEDED: frozenset({JobStatus.COLLECTING}),
    JobStatus.PARTIAL: frozenset({JobStatus.COLLECTING}),
    # Failure, timeout and cancellation can end a job from any active status.
    JobStatus.FAILED: ACTIVE,
    JobStatus.TIMED_OUT: ACTIVE,
    JobStatus.CANCELLED: ACTIVE,
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return current in ALLOWED_PREDECESSORS[target]
