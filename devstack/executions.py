"""StopExecution as AWS does it, on moto's Step Functions interpreter (moto 5.2.5, pinned).

moto's stop (`parser/backend/execution.Execution.stop`) only marks the program stopped. A task
parked on .waitForTaskToken keeps waiting until its timeout, the execution reads RUNNING all the
while, and the timeout then replaces the stop with a failure, because
`parser/asl/eval/environment.Environment.set_error` (unlike `set_stop`) does not look at the
program's state first: a cancelled job's execution would end FAILED, minutes later. In AWS the
execution is ABORTED as soon as StopExecution answers.

`stop_executions_at_once` makes moto do the same: the execution reads ABORTED at once, parked
tasks are woken, and a stopped program stays stopped. The woken task still leaves a
TaskTimedOut event in the history before ExecutionAborted.
"""

import datetime
from collections.abc import Iterator
from contextlib import contextmanager

from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, ExecutionStatus
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import Execution


@contextmanager
def stop_executions_at_once() -> Iterator[None]:
    original_stop = Execution.stop
    original_set_error = Environment.set_error
    original_set_timed_out = Environment.set_timed_out

    def stop(self: Execution, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
        original_stop(self, stop_date, error, cause)
        if self.exec_status != ExecutionStatus.RUNNING or self.exec_worker is None:
            return
        self.exec_status = ExecutionStatus.ABORTED
        self.stop_date = stop_date
        env = self.exec_worker.env
        if env is None:  # the worker has not set up its environment yet: no task is waiting
            return
        for endpoint in list(env.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()

    def set_error(self: Environment, error: ExecutionFailedEventDetails) -> None:
        if not isinstance(self._program_state, ProgramStopped):
            original_set_error(self, error)

    def set_timed_out(self: Environment) -> None:
        if not isinstance(self._program_state, ProgramStopped):
            original_set_timed_out(self)

    Execution.stop = stop  # type: ignore[method-assign]
    Environment.set_error = set_error  # type: ignore[method-assign]
    Environment.set_timed_out = set_timed_out  # type: ignore[method-assign]
    try:
        yield
    finally:
        Execution.stop = original_stop  # type: ignore[method-assign]
        Environment.set_error = original_set_error  # type: ignore[method-assign]
        Environment.set_timed_out = original_set_timed_out  # type: ignore[method-assign]
