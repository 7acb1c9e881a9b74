"""StepFunctionsWorkflow against moto's executing Step Functions: executions named by job id,
idempotent starts, stops, and task tokens resumed while (and only while) a task waits on them."""

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from jobrelay.adapters.sfn_workflow import StepFunctionsWorkflow, execution_arn
from tests.integration.aws_env import mocked_aws

ROLE = "arn:aws:iam::123456789012:role/jobrelay-states"


@pytest.fixture(scope="module")
def aws() -> Iterator[tuple[Any, Any]]:
    config = {"stepfunctions": {"execute_state_machine": True}}
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch, config):
        yield boto3.client("stepfunctions"), boto3.client("sqs")


@pytest.fixture(scope="module")
def sfn(aws: tuple[Any, Any]) -> Any:
    return aws[0]


@pytest.fixture(scope="module")
def passing_machine(sfn: Any) -> str:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(name="passing", definition=json.dumps(definition), roleArn=ROLE)
    return machine["stateMachineArn"]


@pytest.fixture(scope="module")
def waiting_machine(aws: tuple[Any, Any]) -> tuple[str, str]:
    """A machine whose one task hands its token to an SQS queue and waits for it."""
    sfn, sqs = aws
    queue_url = sqs.create_queue(QueueName="task-tokens")["QueueUrl"]
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(name="waiting", definition=json.dumps(definition), roleArn=ROLE)
    return machine["stateMachineArn"], queue_url


def next_token(sqs: Any, queue_url: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return json.loads(message["Body"])["token"]
    raise AssertionError("the task never handed out its token")


def final_state(sfn: Any, arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.05)
    return execution


def test_an_execution_is_named_by_the_job_and_carries_only_its_id(sfn: Any, passing_machine: str) -> None:
    arn = StepFunctionsWorkflow(passing_machine, sfn).start("job-1")

    execution = sfn.describe_execution(executionArn=arn)
    assert arn == execution_arn(passing_machine, "job-1")
    assert (execution["name"], json.loads(execution["input"])) == ("job-1", {"job_id": "job-1"})


def test_starting_a_job_again_answers_its_existing_execution(sfn: Any, passing_machine: str) -> None:
    workflow = StepFunctionsWorkflow(passing_machine, sfn)
    first = workflow.start("job-2")
    final_state(sfn, first)  # even once it has ended

    assert workflow.start("job-2") == first
    assert [e["name"] for e in sfn.list_executions(stateMachineArn=passing_machine)["executions"]].count("job-2") == 1


def test_a_waiting_task_is_resumed_once_with_the_output(aws: tuple[Any, Any], waiting_machine: tuple[str, str]) -> None:
    sfn, sqs = aws
    machine, queue_url = waiting_machine
    workflow = StepFunctionsWorkflow(None, sfn)  # resuming needs no state machine ARN
    arn = StepFunctionsWorkflow(machine, sfn).start("job-3")
    token = next_token(sqs, queue_url)

    assert workflow.resume(token, {"via": "webhook", "count": 2})

    execution = final_state(sfn, arn)
    assert (execution["status"], json.loads(execution["output"])) == ("SUCCEEDED", {"via": "webhook", "count": 2})
    assert not workflow.resume(token, {"via": "poll"})  # nobody waits on it any more


def test_an_unknown_token_is_not_resumed(sfn: Any) -> None:
    assert not StepFunctionsWorkflow(None, sfn).resume("not-a-token", {})


def test_stopping_aborts_and_stopping_again_or_the_unknown_is_harmless(sfn: Any) -> None:
    """On a machine that sleeps: moto's interpreter ignores StopExecution while a task waits for
    its token (the execution stays RUNNING), which real Step Functions does not."""
    definition = {"StartAt": "Sleep", "States": {"Sleep": {"Type": "Wait", "Seconds": 60, "End": True}}}
    machine = sfn.create_state_machine(name="sleeping", definition=json.dumps(definition), roleArn=ROLE)
    workflow = StepFunctionsWorkflow(machine["stateMachineArn"], sfn)
    arn = workflow.start("job-4")

    workflow.stop(arn, "cancelled by the submitter")
    workflow.stop(arn, "cancelled twice")
    workflow.stop(execution_arn(machine["stateMachineArn"], "no-such-job"), "cancelled")

    assert final_state(sfn, arn)["status"] == "ABORTED"


@pytest.mark.parametrize("state_machine_arn", [None, ""])
def test_without_a_state_machine_nothing_can_start(sfn: Any, state_machine_arn: str | None) -> None:
    with pytest.raises(RuntimeError, match="STATE_MACHINE_ARN"):
        StepFunctionsWorkflow(state_machine_arn, sfn).start("job-5")


def test_an_execution_arn_is_derived_from_the_state_machines() -> None:
    machine = "arn:aws-cn:states:cn-north-1:123456789012:stateMachine:jobrelay-JobStateMachine-X1"

    assert execution_arn(machine, "job-6") == (
        "arn:aws-cn:states:cn-north-1:123456789012:execution:jobrelay-JobStateMachine-X1:job-6"
    )
    with pytest.raises(ValueError):
        execution_arn("arn:aws:lambda:us-east-1:123456789012:function:steps", "job-6")
