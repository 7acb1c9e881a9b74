"""The base of the drivers: what a step asks of one kind of operation.

Like Powertools' resolvers (one base, each event source overriding a little), the base holds the
common answers and each kind overrides what differs: how the vendor's side is started, whether there
is records staging, what ends the wait, and how the result is collected.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from jobrelay.domain.job import Job, WaitingOn, utcnow
from jobrelay.domain.vendor_outcomes import CollectOutcome, PollOutcome
from jobrelay.ports import JobStore, ResultStore, VendorSide
from jobrelay.services.progress import vendor_name
from jobrelay.settings import Settings

if TYPE_CHECKING:  # the import pipeline loads with the first import job's step, not at cold start
    from jobrelay.services.bulk_imports import ImportSteps

# Where a job goes once its vendor side has been started.
AfterStart = Literal["stage", "wait", "collect"]


@dataclass
class DriverContext:
    """What the drivers share: the job store, the result store, the settings and the clock, and the
    bulk-import engine, built on first use (`imports`)."""

    store: JobStore
    results: ResultStore
    settings: Settings
    now: Callable[[], datetime] = utcnow
    imports: Callable[[], "ImportSteps"] | None = field(default=None)


class Driver[V: VendorSide](ABC):
    """The vendor-facing part of each step for one kind of operation, over one adapter (`vendor`)."""

    def __init__(self, vendor: V, context: DriverContext):
        self.vendor = vendor
        self._context = context

    @property
    def max_concurrent_jobs(self) -> int | None:
        """The vendor account's limit of jobs at once, which Start enforces before starting."""
        return self.vendor.max_concurrent_jobs

    # --- start ------------------------------------------------------------------------------------

    def starting_note(self, job: Job) -> str:
        return f"starting the job at {vendor_name(job)}"

    @abstractmethod
    def start(self, job: Job) -> tuple[Job, AfterStart]:
        """Start the job's side at the vendor, once: the job is STARTING, or already past it when Start
        is retried (then nothing is sent again). Returns the job as stored and where it goes next."""

    # --- stage ------------------------------------------------------------------------------------

    def stage(self, job: Job, seconds_left: Callable[[], float]) -> bool:
        """Stage the job's records; True once all are staged and the vendor runs them."""
        raise TypeError(f"{job.operation} has no records to stage")

    # --- wait -------------------------------------------------------------------------------------

    @property
    def waiting_on(self) -> WaitingOn:
        """What ends a wait for the vendor: its webhook (polled as a fallback) or our polling."""
        return "polling"

    def poll(self, job: Job) -> PollOutcome:
        raise TypeError(f"{job.operation} has nothing to wait for")

    # --- collect ----------------------------------------------------------------------------------

    def collecting_note(self, job: Job) -> str:
        return f"collecting the result from {vendor_name(job)}"

    @abstractmethod
    def collect(self, job: Job) -> CollectOutcome: ...

    # --- cancel -----------------------------------------------------------------------------------

    def cancel(self, job: Job) -> bool:
        """Abort the job at the vendor where it allows it; False when it cannot."""
        return self.vendor.cancel(job)
