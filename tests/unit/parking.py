"""The unit tests' world with a slot queue: jobs over their account's limit park and freed slots
wake them, as jobrelay.wiring.concurrency builds it in production. (The `world` fixture of
conftest.py builds its concurrency without a queue; `with_slot_queue` rebuilds the services that
use it.)

The state machine's part is played by the test: a job whose Start answers `wait_slot` enters
WaitForSlot with a fresh task token (`park`), and the job ids whose tokens were sent, in order,
are `woken`. A token the FakeWorkflow no longer waits on is a task that ended (timed out).
"""

import itertools

from jobrelay.domain.job import TimelineEvent
from jobrelay.domain.status import JobStatus
from jobrelay.drivers.base import DriverContext
from jobrelay.drivers.directory import Drivers
from jobrelay.services.concurrency import AccountConcurrency
from jobrelay.services.jobs import JobService
from jobrelay.services.notices import Notices
from jobrelay.services.steps import StepInput, StepOutput, StepRunner
from jobrelay.services.sweeper import Sweeper
from tests.fake_slot_queue import InMemorySlotQueue
from tests.fakes import InMemorySecretStore
from tests.unit.conftest import DONE, World

_tokens = itertools.count(1)


def with_slot_queue(world: World) -> InMemorySlotQueue:
    queue = InMemorySlotQueue(clock=world.clock)
    concurrency = AccountConcurrency(world.slots, world.store, now=world.clock, queue=queue, workflow=world.workflow)
    notices = Notices(world.events, InMemorySecretStore(), world.settings)
    world.jobs = JobService(
        world.store,
        world.results,
        world.workflow,
        notices,
        world.settings,
        cancel_at_vendor=world.vendor.cancel,
        release_slot=concurrency.release,
        now=world.clock,
    )
    drivers = Drivers(lambda job: world.vendor, DriverContext(world.store, world.results, world.settings, now=world.clock))
    world.steps = StepRunner(
        world.store, world.workflow, notices, drivers.for_job, world.settings, now=world.clock, concurrency=concurrency
    )
    world.sweeper = Sweeper(world.store, world.workflow, notices, concurrency, now=world.clock)
    return queue


def start(world: World, job_id: str) -> StepOutput:
    return world.steps.run(StepInput(step="start", job_id=job_id))


def park(world: World, job_id: str) -> str:
    """WaitForSlot: the task gets a token and the steps function parks the job with it."""
    token = f"slot:{job_id}:{next(_tokens)}"
    world.workflow.wait(token)
    world.steps.run(StepInput(step="await_slot", job_id=job_id, task_token=token))
    return token


def look(world: World, job_id: str) -> StepOutput:
    """Start, and WaitForSlot when Start finds no slot: one look of a job for a slot."""
    out = start(world, job_id)
    if out.next == "wait_slot":
        park(world, job_id)
    return out


def woken(world: World) -> list[str]:
    """The jobs whose parked tasks were sent their token, in the order they were sent."""
    return [token.split(":")[1] for token in world.workflow.resumed if token.startswith("slot:")]


def time_out(world: World, token: str) -> None:
    """The parked task reaches its timeout: nobody waits on its token any more."""
    world.workflow.waiting.discard(token)


def finish(world: World, job_id: str) -> None:
    """The vendor finishes the job; Collect settles it and gives its slot back."""
    world.vendor.polls = [DONE]
    world.steps.run(StepInput(step="poll", job_id=job_id))
    world.steps.run(StepInput(step="collect", job_id=job_id))


def end_silently(world: World, job_id: str) -> None:
    """The job ends and nothing of its own follow-up runs (the function died): its slot stays held."""
    world.store.transition(job_id, JobStatus.CANCELLED, TimelineEvent(at=world.clock(), event="cancelled"))


def submitted_a_second_apart(world: World, **overrides: object) -> str:
    world.clock.advance(1)
    return world.submit(**overrides)
