"""Retries that follow progress: a transient vendor error costs a retry of the request that met it.

A long step (Stage sends every batch of an import, Collect reads every page or the whole result
file) makes many requests. If its transient errors were retried by the state machine, every error
anywhere in the step would spend one shared budget, and an import that meets a 503 now and then
would fail however well it progresses. So each request is retried here, in the step, with backoff,
and its budget is its own: the next request (the next batch, the next page, the next stretch of a
download) starts with a full one. A request fails for good (VendorUnavailable) only when it keeps
failing `attempts` times in a row.

Only requests that are safe to repeat are repeated: a read always; a request that may create
something at the vendor only when the vendor answered with an error (it did not take it) or no
connection was made. `repeatable` says which; anything else is raised for the caller to settle.

Written here rather than taken from a retry library (tenacity, stamina): the rule is ours (which
errors, what is safe to repeat, how much of the Lambda's time is left) and is a dozen lines.
"""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from jobrelay.domain.backoff import Jitter
from jobrelay.domain.errors import VendorTransientError, VendorUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between the attempts at one request: 1, 2, 4, 8, 16 s (jittered) for six attempts,
    about half a minute in all, short enough to stay inside one step."""

    attempts: int = 6
    initial_seconds: float = 1.0
    factor: float = 2.0
    max_seconds: float = 30.0
    jitter: float = 0.2  # +/- share of each delay, so the retries of many jobs do not align

    def delay(self, failures: int, rng: Jitter | None = None) -> float:
        """Seconds to wait after the request has failed `failures` times in a row (1-based)."""
        base = min(self.max_seconds, self.initial_seconds * self.factor ** max(failures - 1, 0))
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))


def always(_error: VendorTransientError) -> bool:
    """A read: asking again changes nothing at the vendor."""
    return True


def unless_it_may_have_arrived(error: VendorTransientError) -> bool:
    """A request that may create something: repeated only when the vendor cannot have taken it."""
    return not error.may_have_arrived


@dataclass
class RequestRetry:
    """Calls one request until it answers, its budget is spent, or the step's time runs short."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    rng: Jitter | None = None

    def call[T](
        self,
        request: Callable[[], T],
        *,
        what: str,
        repeatable: Callable[[VendorTransientError], bool] = always,
        time_left: Callable[[], float] | None = None,
    ) -> T:
        """`request()`'s answer. A transient error it is not `repeatable` for is raised as it is, and
        so is one whose backoff would not end `time_left()` allows (the caller ends its step and the
        next one goes on). VendorUnavailable once the request has failed `policy.attempts` times."""
        failures = Streak(self, what)
        while True:
            try:
                return request()
            except VendorTransientError as error:
                if not repeatable(error):
                    raise
                failures.wait_after(error, time_left)


@dataclass
class Streak:
    """The failures in a row of one request, and the waits between them. A request that is read in
    stretches (a download resumed where it broke) calls `progressed()` after each stretch that
    brought something, which gives its budget back."""

    retry: RequestRetry
    what: str
    failures: int = 0

    def progressed(self) -> None:
        self.failures = 0

    def wait_after(self, error: VendorTransientError, time_left: Callable[[], float] | None = None) -> None:
        """Count `error` and wait before the next attempt; VendorUnavailable when the budget is spent,
        `error` itself when the wait would not fit in `time_left()`."""
        self.failures += 1
        policy = self.retry.policy
        if self.failures >= policy.attempts:
            raise VendorUnavailable(f"{self.what} failed {self.failures} times in a row; the last time: {error}") from None
        delay = policy.delay(self.failures, self.retry.rng)
        if time_left is not None and time_left() < delay:
            raise error
        logger.warning("%s failed (%s); attempt %d in %.1f s", self.what, error, self.failures + 1, delay)
        self.retry.sleep(delay)
