"""How long to wait before looking at the vendor again, bounded by the job's deadline.

Budgets (docs/DESIGN.md): a 2-hour job may cost at most 40 state transitions when the vendor calls us back
(a webhook wait whose timeout is the poll fallback) and at most 120 when we can only poll. The
numbers below are chosen so the worst case (every jitter at its low end) stays inside those budgets;
tests/unit/test_backoff.py counts it.
"""

import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class Jitter(Protocol):
    """Where jitter is drawn from: the `random` module, a seeded random.Random, or a stand-in."""

    def uniform(self, a: float, b: float, /) -> float: ...


@dataclass(frozen=True)
class BackoffPolicy:
    initial_seconds: int = 5
    max_seconds: int = 300
    factor: float = 2.0
    # +/- share of the delay drawn at random so many jobs do not poll in lockstep.
    jitter: float = 0.1

    def delay(self, attempt: int, rng: Jitter | None = None) -> int:
        """Seconds to wait before poll number `attempt` (0-based), jittered, at least 1."""
        base = min(self.max_seconds, self.initial_seconds * self.factor ** max(attempt, 0))
        spread = base * self.jitter
        value = base + (rng or random).uniform(-spread, spread)
        return max(1, round(value))


def seconds_left(deadline: datetime, now: datetime) -> float:
    return (deadline - now).total_seconds()


def bounded_wait(wanted_seconds: int, deadline: datetime, now: datetime) -> int:
    """`wanted_seconds`, cut so the wait ends at the deadline (never below 1: Step Functions needs a
    positive whole number). The caller checks `seconds_left` first: a job past its deadline must not
    wait at all."""
    left = math.ceil(seconds_left(deadline, now))
    return max(1, min(wanted_seconds, left))
