"""StepFunctionsWorkflow against moto's executing Step Functions: executions named by job id,
idempotent starts, stops, and task tokens resumed while (and only while) a task waits on them. And
the job state machine itself parking jobs behind their account's concurrency limit: woken in
submission order, one per freed slot, a lost wake-up caught by the parked task's fallback timeout."""

import io
import itertools
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.awslambda.models import LambdaFunction

from devstack.clock import scaled_step_functions
from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.adapters.dynamodb_slot_queue import DynamoSlotQueue
from jobrelay.adapters.dynamodb_slots import DynamoSlots
from jobrelay.adapters.sfn_workflow import StepFunctionsWorkflow, execution_arn
from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.domain.status import JobStatus
from jobrelay.drivers.base import DriverContext
from jobrelay.drivers.directory import Drivers
from jobrelay.services.concurrency import AccountConcurrency
from jobrelay.services.notices import Notices
from jobrelay.services.steps import StepInput, StepRunner
from jobrelay.settings import Settings
from tests.fakes import FakeEventPublisher, InMemoryResultStore, InMemorySecretStore
from tests.integration.aws_env import create_jobs_table, mocked_aws
from tests.unit.conftest import DONE, RUNNING, ScriptedVendor

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


# --- the job state machine's queue for concurrency slots, on moto's interpreter --------------------
#
# The real ASL (statemachines/job.asl.json) runs in moto with its steps function served here by the
# real StepRunner, over the DynamoDB adapters (jobs, slots, the slot queue) and StepFunctionsWorkflow,
# against a scripted vendor that finishes a job when the test says so. Invocations take turns, as
# in the local stack.

REPO = Path(__file__).resolve().parents[2]
ASL_TEXT = (REPO / "statemachines" / "job.asl.json").read_text()
HOLDER_POOL = "pinpointe#default"


@dataclass
class FinishingVendor(ScriptedVendor):
    """Pinpointe as far as the steps see it: running until the test adds the job to `done`."""

    done: set[str] = field(default_factory=set)
    started: list[str] = field(default_factory=list)

    def start(self, job, webhook_url):
        self.started.append(job.job_id)
        return super().start(job, webhook_url)

    def poll(self, job):
        return DONE if job.job_id in self.done else RUNNING


class LosingWakeUps:
    """The workflow the steps wake parked jobs with; while `losing`, a wake-up is marked as sent
    and never sent: the function died between marking the job woken and SendTaskSuccess."""

    def __init__(self, workflow: StepFunctionsWorkflow):
        self._workflow = workflow
        self.losing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._workflow, name)

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        if self.losing and output.get("via") == "slot_free":
            return True
        return self._workflow.resume(task_token, output)


@dataclass
class Machine:
    arn: str
    store: DynamoJobStore
    queue: DynamoSlotQueue
    slots: DynamoSlots
    vendor: FinishingVendor
    wake_ups: LosingWakeUps
    sfn: Any
    clock: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def submit(self, account: str = "default") -> str:
        """A job stored as the API stores it, one second after the previous (submission order)."""
        created = datetime(2026, 11, 22, 9, 0, tzinfo=UTC) + timedelta(seconds=next(self.clock))
        job_id = f"job_{uuid.uuid4().hex}"
        job = Job(job_id=job_id, operation="pinpointe.list_subscribers", vendor="pinpointe", account=account,
                  created_at=created, updated_at=created, deadline_at=datetime.now(UTC) + timedelta(hours=2),
                  params={"list": ["1"]})  # fmt: skip
        self.store.create(job, TimelineEvent(at=created, event="submitted"))
        return job_id

    def run(self, job_id: str) -> str:
        return StepFunctionsWorkflow(self.arn, self.sfn).start(job_id)

    def finish(self, job_id: str) -> None:
        """The vendor finishes and its webhook wakes the job: Poll, Collect, the slot given back."""
        self.vendor.done.add(job_id)
        token = eventually(lambda: self.store.get(job_id).task_token, f"{job_id} waiting for its webhook")
        # (On a shortened time scale the webhook wait may just have timed out: its poll finds it done.)
        StepFunctionsWorkflow(None, self.sfn).resume(token, {"via": "webhook"})
        eventually(lambda: self.store.get(job_id).status is JobStatus.SUCCEEDED, f"{job_id} collected")

    def status(self, job_id: str) -> JobStatus:
        return self.store.get(job_id).status

    def parked(self, pool: str = HOLDER_POOL) -> list[str]:
        return [entry.job_id for entry in self.queue.parked(pool)]

    def slot_waits(self, job_id: str) -> list[str]:
        """What each of the job's WaitForSlot tasks ended with, from its execution's history."""
        events = self.sfn.get_execution_history(executionArn=execution_arn(self.arn, job_id), maxResults=1000)["events"]
        entered = [n for n, e in enumerate(events) if e.get("stateEnteredEventDetails", {}).get("name") == "WaitForSlot"]
        ends = ("TaskSucceeded", "TaskTimedOut", "TaskFailed")
        return [next(e["type"] for e in events[n:] if e["type"] in ends) for n in entered]


def eventually(check: Any, what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def machine(aws: tuple[Any, Any]) -> Iterator[Machine]:
    sfn = aws[0]
    dynamodb = boto3.client("dynamodb")
    table = create_jobs_table(dynamodb)
    role = boto3.client("iam").create_role(RoleName="steps", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context): pass\n")
    function = boto3.client("lambda").create_function(
        FunctionName="steps", Runtime="python3.13", Role=role, Handler="app.handler", Code={"ZipFile": code.getvalue()}
    )["FunctionArn"]
    definition = ASL_TEXT.replace("${StepsFunctionArn}", function)
    arn = sfn.create_state_machine(name="jobs", definition=definition, roleArn=ROLE)["stateMachineArn"]

    settings = Settings.model_validate(
        {"JOBS_TABLE": table, "RESULTS_BUCKET": "results", "EVENT_BUS_NAME": "bus", "PUBLIC_API_URL": "https://api.example.test"}
    )
    store, vendor = DynamoJobStore(table, dynamodb), FinishingVendor(max_concurrent_jobs=1)
    slots, queue = DynamoSlots(table, dynamodb), DynamoSlotQueue(table, dynamodb)
    wake_ups = LosingWakeUps(StepFunctionsWorkflow(arn, sfn))
    concurrency = AccountConcurrency(slots, store, queue=queue, workflow=wake_ups)
    results = InMemoryResultStore()
    steps = StepRunner(
        store,
        StepFunctionsWorkflow(arn, sfn),
        Notices(FakeEventPublisher(), InMemorySecretStore(), settings),
        Drivers(lambda job: vendor, DriverContext(store, results, settings)).for_job,
        settings,
        concurrency=concurrency,
    )
    turns = threading.Lock()

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        with turns:
            try:
                output = steps.run(StepInput.model_validate(event if isinstance(event, dict) else json.loads(event)))
            except Exception as error:
                return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}), True, ""
        return json.dumps(output.model_dump(mode="json") if output is not None else None), False, ""

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke_lambda)
        yield Machine(arn, store, queue, slots, vendor, wake_ups, sfn)


def test_parked_jobs_start_one_per_freed_slot_in_submission_order_on_the_real_state_machine(machine: Machine) -> None:
    holder, first, second, third = (machine.submit() for _ in range(4))
    other_account = machine.submit(account="other")
    machine.run(holder)
    eventually(lambda: machine.status(holder) is JobStatus.RUNNING, "the holder running")
    for n, job_id in enumerate((third, second, first), start=1):  # their executions arrive newest first
        machine.run(job_id)
        eventually(lambda n=n: len(machine.parked()) == n, f"{job_id} parked")
    machine.run(other_account)  # another account's limit: not held up by this queue
    eventually(lambda: machine.status(other_account) is JobStatus.RUNNING, "the other account's job running")
    assert machine.parked() == [first, second, third]

    for ending, starting in ((holder, first), (first, second), (second, third)):
        machine.finish(ending)
        eventually(lambda starting=starting: machine.status(starting) is JobStatus.RUNNING, f"{starting} woken and started")
    machine.finish(third)
    machine.finish(other_account)

    assert machine.vendor.started == [holder, other_account, first, second, third]  # never two at once
    # Each waited parked once, woken by its token: no looks in between, whatever the wait.
    assert [machine.slot_waits(job_id) for job_id in (first, second, third)] == [["TaskSucceeded"]] * 3
    assert machine.parked() == [] and machine.slots.leases(HOLDER_POOL) == []


def test_a_lost_wake_up_is_caught_by_the_parked_tasks_fallback_timeout(machine: Machine) -> None:
    holder, parked = machine.submit(), machine.submit()
    # Every wait 1,000 times shorter: a parked task's fallback timeout of an hour is 3.6 s.
    with scaled_step_functions(0.001):
        machine.run(holder)
        eventually(lambda: machine.status(holder) is JobStatus.RUNNING, "the holder running")
        machine.run(parked)
        eventually(lambda: machine.parked() == [parked], "the second job parked")
        machine.wake_ups.losing = True
        try:
            machine.finish(holder)  # its slot is given back; the wake-up never reaches the parked job
            eventually(lambda: machine.status(parked) is JobStatus.RUNNING, "started after its fallback timeout")
        finally:
            machine.wake_ups.losing = False
        machine.finish(parked)

    waits = machine.slot_waits(parked)
    assert waits and set(waits) == {"TaskTimedOut"}  # never woken: each wait ended at its timeout
