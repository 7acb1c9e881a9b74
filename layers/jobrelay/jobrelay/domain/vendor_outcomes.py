"""What a vendor adapter answers at each step of a job (the vendor ports in jobrelay.ports)."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jobrelay.domain.job import JobResult, Progress
from jobrelay.domain.reconciliation import Reconciliation


class WaitMode(StrEnum):
    WEBHOOK = "webhook"  # the vendor calls us back; we poll only as a fallback
    POLL = "poll"  # we can only poll, with backoff


class VendorState(StrEnum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass
class StartOutcome:
    vendor_ref: dict[str, Any]
    note: str | None = None
    # The result can be collected at once (a synchronous vendor call, read page by page in
    # collect): no wait. poll() must then report DONE, for a Start retried after this one.
    ready: bool = False


@dataclass
class PollOutcome:
    state: VendorState
    raw_status: str | None = None
    progress: Progress | None = None
    message: str | None = None  # the vendor's reason, when FAILED
    vendor_ref_updates: dict[str, Any] = field(default_factory=dict)
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
