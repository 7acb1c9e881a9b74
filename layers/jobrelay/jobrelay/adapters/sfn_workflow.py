"""The workflow on Step Functions: one execution of the job state machine per job, named by its id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic_core import to_json

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# SendTaskSuccess answers these when the task no longer waits for this token: it timed out, its
# execution ended (stopped, failed), or the token is stale or forged.
_TOKEN_NOT_WAITING = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


class StepFunctionsWorkflow:
    """Workflow over the Step Functions client. `state_machine_arn` is needed only to start jobs:
    the functions that just resume or stop them are not given it."""

    def __init__(self, state_machine_arn: str | None, client: SFNClient):
        self._state_machine_arn = state_machine_arn
        self._client = client

    def start(self, job_id: str) -> str:
        state_machine_arn = self._require_state_machine()
        try:
            answer = self._client.start_execution(
                stateMachineArn=state_machine_arn, name=job_id, input=to_json({"job_id": job_id}).decode()
            )
        except ClientError as exc:
            # The input is a function of the name, so an execution with this name is this job's
            # own: an earlier start that we are repeating (a retried request, a redelivery).
            if _error_code(exc) == "ExecutionAlreadyExists":
                return execution_arn(state_machine_arn, job_id)
            raise
        return answer["executionArn"]

    def stop(self, execution_arn: str, reason: str) -> None:
        # Stopping an execution that already ended is a no-op for Step Functions itself.
        try:
            self._client.stop_execution(executionArn=execution_arn, cause=reason)
        except ClientError as exc:
            if _error_code(exc) != "ExecutionDoesNotExist":
                raise

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        try:
            self._client.send_task_success(taskToken=task_token, output=to_json(output).decode())
        except ClientError as exc:
            if _error_code(exc) in _TOKEN_NOT_WAITING:
                return False
            raise
        return True

    def status(self, execution_arn: str) -> str | None:
        try:
            return self._client.describe_execution(executionArn=execution_arn)["status"]
        except ClientError as exc:
            if _error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise

    def _require_state_machine(self) -> str:
        if not self._state_machine_arn:  # None or "": the environment did not give one
            raise RuntimeError("no state machine ARN configured (STATE_MACHINE_ARN): this workflow cannot start jobs")
        return self._state_machine_arn


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:<partition>:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>"""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    if not prefix:
        raise ValueError(f"not a state machine ARN: {state_machine_arn}")
    return f"{prefix}:execution:{machine}:{name}"


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")
