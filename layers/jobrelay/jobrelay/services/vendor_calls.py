"""Which job a vendor call belongs to, and keeping it in the job's vendor call log.

The step runner opens a `recording` around each step (and wiring around a cancel at the vendor):
a context variable names the job, the step and the log, so the one place every vendor request passes
(jobrelay.vendors.recording, the shared httpx client's transport) can file each exchange without any
adapter knowing. Outside a recording nothing is logged. Keeping the log never fails a step: a write
that fails is logged (without the call) and dropped.
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from jobrelay.domain.job import utcnow
from jobrelay.domain.vendor_calls import VendorCall
from jobrelay.ports import VendorCallLog

logger = logging.getLogger(__name__)

JSONL_CHUNK_BYTES = 256 * 1024  # what the result store gets at a time when the log is written as a file


@dataclass(frozen=True)
class Recording:
    job_id: str
    step: str
    log: VendorCallLog
    now: Callable[[], datetime] = field(default=utcnow)  # the clock each call's `at` is read from


_current: ContextVar[Recording | None] = ContextVar("jobrelay_vendor_call_recording", default=None)


@contextmanager
def recording(job_id: str, step: str, log: VendorCallLog | None, now: Callable[[], datetime] = utcnow) -> Iterator[None]:
    """Vendor calls made inside the block go to `log` under `job_id` and `step` (none: not logged)."""
    if log is None:
        yield
        return
    token = _current.set(Recording(job_id, step, log, now))
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Recording | None:
    return _current.get()


def keep(call: VendorCall, into: Recording | None = None) -> None:
    """File `call` in the job's log (`into`, or the current recording); never raises."""
    target = into or _current.get()
    if target is None:
        return
    if call.step is None:
        call = call.model_copy(update={"step": target.step})
    try:
        target.log.record(target.job_id, call)
    except Exception as exc:  # the log is an aid: losing an entry must not lose the job
        logger.warning("a vendor call of job %s was not logged (%s)", target.job_id, type(exc).__name__)


def jsonl_chunks(calls: Iterable[VendorCall], chunk_bytes: int = JSONL_CHUNK_BYTES) -> Iterator[bytes]:
    """The calls as JSON Lines, in chunks of about `chunk_bytes` (for ResultStore.put_stream)."""
    buffer = bytearray()
    for call in calls:
        buffer += call.line()
        if len(buffer) >= chunk_bytes:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)
