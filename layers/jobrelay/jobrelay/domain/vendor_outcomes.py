"""What a vendor adapter answers at each step of a job (the vendor ports in jobrelay.ports)."""

from dataclasses import dataclass, field
from enum import StrEnum

from jobrelay.domain.job import JobResult, Progress
from jobrelay.domain.reconciliation import Reconciliation
from jobrelay.domain.vendor_ref import VendorRef


class WaitMode(StrEnum):
    WEBHOOK = "webhook"  # the vendor calls us back; we poll only as a fallback
    POLL = "poll"  # we can only poll, with backoff


class VendorState(StrEnum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass
class StartOutcome:
    vendor_ref: VendorRef
    note: str | None = None


@dataclass
class PollOutcome:
    state: VendorState
    raw_status: str | None = None
    progress: Progress | None = None
    message: str | None = None  # the vendor's reason, when FAILED
    # The adapter's reference as this answer changed it (a result link, a count to check), if it did.
    vendor_ref: VendorRef | None = None
    # A status word not in the vendor's table: a bounded, redacted excerpt of the answer that carried
    # it (jobrelay.vendors.redaction), recorded on the job's timeline once per new word.
    unknown_status_answer: str | None = None


@dataclass
class CollectOutcome:
    result: JobResult
    # The result against the vendor's counts; the job is PARTIAL unless it is complete.
    reconciliation: Reconciliation = field(default_factory=Reconciliation)

    @property
    def partial(self) -> bool:
        return not self.reconciliation.complete
