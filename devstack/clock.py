"""The local stack's time scale: 1.0 is real time, 0.05 makes every wait 20 times shorter.

Step Functions' waits run inside moto's interpreter, which really sleeps. `scaled_step_functions`
patches the three places where it does (moto 5.2.5, pinned in requirements/dev.txt, internals
read from moto/stepfunctions/parser/asl/component/...):

- Wait states: `state/wait/wait_function/wait_function.WaitFunction._wait_interval(env, wait_seconds)`
  waits on `env.program_state_event` (set when the execution stops).
- Task timeouts (TimeoutSeconds, TimeoutSecondsPath, also for .waitForTaskToken):
  `common/timeouts/timeout.Timeout._eval_body(env)` pushes the seconds its state may take onto
  `env.stack`; the consumers hand them to `threading.Event.wait`, which takes floats.
- Retry intervals: `common/retry/retrier_decl` calls `time.sleep(interval_seconds)` on the `time`
  module it imported; that name is swapped for a stand-in whose `sleep` is scaled.

At scale 1.0 nothing is patched. Otherwise the execution history shows the scaled seconds where
moto records them (a task's `timeoutInSeconds`). Schedules use `ScaledClock`, on which the same
scale makes time run faster.
"""

import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment


@contextmanager
def scaled_step_functions(scale: float) -> Iterator[None]:
    """Within the block, moto's Step Functions waits last `scale` times as long."""
    if scale <= 0:
        raise ValueError(f"the time scale must be positive, got {scale}")
    if scale == 1.0:
        yield
        return
    original_wait = WaitFunction._wait_interval
    original_timeout = Timeout._eval_body
    original_time = retrier_decl.time

    def wait_interval(self: WaitFunction, env: Environment, wait_seconds: int) -> None:
        # Replaces moto's loop, which re-waits the difference rounded to whole seconds (a scaled
        # wait would always look short to it). Waking up early means the execution stopped.
        deadline = time.monotonic() + wait_seconds * scale
        while env.is_running() and (remaining := deadline - time.monotonic()) > 0:
            env.program_state_event.wait(remaining)

    def timeout_body(self: Timeout, env: Environment) -> None:
        original_timeout(self, env)
        env.stack.append(env.stack.pop() * scale)

    WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]
    Timeout._eval_body = timeout_body  # type: ignore[method-assign]
    retrier_decl.time = types.SimpleNamespace(sleep=lambda seconds: time.sleep(seconds * scale))  # type: ignore[assignment]
    try:
        yield
    finally:
        WaitFunction._wait_interval = original_wait  # type: ignore[method-assign]
        Timeout._eval_body = original_timeout  # type: ignore[method-assign]
        retrier_decl.time = original_time


class ScaledClock:
    """A clock that starts at the real time and runs 1/scale times as fast (for the schedule timer)."""

    def __init__(self, scale: float = 1.0):
        if scale <= 0:
            raise ValueError(f"the time scale must be positive, got {scale}")
        self._scale = scale
        self._origin = datetime.now(UTC)
        self._origin_monotonic = time.monotonic()

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=(time.monotonic() - self._origin_monotonic) / self._scale)

    def sleep_until(self, moment: datetime, stop: threading.Event) -> bool:
        while (remaining := (moment - self.now()).total_seconds()) > 0:
            if stop.wait(remaining * self._scale):
                return True
        return stop.is_set()
