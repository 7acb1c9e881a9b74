"""The stage requests of an import that are out at once: at most `size`, each on a worker thread,
and their bodies at most `body_bytes` together (one request is always let out, however big).

Against a vendor that takes seconds per request, staging one request at a time costs the sum of
their latencies; with a window of N the wall time is about a 1/N of it. The byte bound keeps a
step's memory flat: every body out is held until its answer comes. The window only sends and
hands back answers: what an answer means for the checkpoint is decided by the caller (the bulk-import
engine), on its own thread, so the import's state is never written from two threads.

Each request runs in a copy of the caller's context (contextvars), so its vendor calls are filed in
the job's call log and carry the job's telemetry like any call made on the step's own thread.
"""

import contextvars
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from jobrelay.domain.bulk_import import InFlight, StagedBatch


@dataclass(frozen=True)
class Answer:
    """What one stage request came back with: the vendor's acknowledgement, or the error it met."""

    batch: InFlight
    staged: StagedBatch | None
    error: BaseException | None


class StageWindow:
    def __init__(self, size: int, body_bytes: int):
        self.size = max(1, size)
        self.body_bytes = body_bytes
        self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="stage")
        self._out: dict[Future[StagedBatch], tuple[InFlight, int]] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        # Never walk away from a request still out: its answer decides whether the batch arrived.
        self._pool.shutdown(wait=True)

    def full_for(self, body_bytes: int) -> bool:
        """Whether a request with a body of `body_bytes` must wait for an answer before it goes."""
        if not self._out:
            return False
        held = sum(size for _, size in self._out.values())
        return len(self._out) >= self.size or held + body_bytes > self.body_bytes

    @property
    def empty(self) -> bool:
        return not self._out

    def send(self, batch: InFlight, body_bytes: int, request: Callable[[], StagedBatch]) -> None:
        context = contextvars.copy_context()
        self._out[self._pool.submit(context.run, request)] = (batch, body_bytes)

    def answers(self, *, wait_for_one: bool) -> list[Answer]:
        """The answers that have come, in batch order; with `wait_for_one`, after at least one has."""
        if not self._out:
            return []
        done, _ = wait(self._out, timeout=None if wait_for_one else 0, return_when=FIRST_COMPLETED)
        return self._taken(done)

    def all_answers(self) -> list[Answer]:
        """Every answer still to come, once all have come, in batch order."""
        done, _ = wait(self._out)
        return self._taken(done)

    def _taken(self, done: set[Future[StagedBatch]]) -> list[Answer]:
        answers = []
        for future in done:
            batch, _ = self._out.pop(future)
            error = future.exception()
            answers.append(Answer(batch, None if error is not None else future.result(), error))
        return sorted(answers, key=lambda answer: answer.batch.index)
