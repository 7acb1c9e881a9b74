"""Submissions with an Idempotency-Key (JobService.submit) on DynamoJobStore under moto and on
InMemoryJobStore alike: requests racing with one key make one job, each of the others is told the
first is still in flight (IDEMPOTENCY_IN_PROGRESS, with Retry-After) or gets that job, never an
error of ours; a key whose first request died is taken over, not stuck; a key whose job could not
start submits again. Then the API's answer for a request in flight, through the API function.

The races run on real threads. moto applies a request atomically only when one thread calls it at
a time (a transaction that fails restores a snapshot of the whole table, over what another thread
wrote meanwhile), so the moto fixture lets one DynamoDB request in at a time, as DynamoDB's own
per-request atomicity would; the threads still interleave freely between their requests. Where an
ordering matters (the first request in flight while the others ask), it is staged: the first
request's StartExecution waits until the test lets it go.
"""

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.api.models import JobSubmission
from jobrelay.domain.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidRequest
from jobrelay.domain.idempotency import IDEMPOTENCY_WINDOW, IN_FLIGHT_LIMIT, IdempotentRequest
from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.domain.status import JobStatus
from jobrelay.ports import JobStore
from jobrelay.services.jobs import JobService, ServiceUnavailable
from jobrelay.services.notices import Notices
from jobrelay.settings import Settings
from tests.fakes import FakeEventPublisher, FakeWorkflow, InMemoryJobStore, InMemoryResultStore, InMemorySecretStore
from tests.integration.aws_env import create_jobs_table, mocked_aws
from tests.integration.test_handlers import deployed, http_event, sandbox  # noqa: F401 (fixtures)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BODY = {"operation": "pinpointe.list_subscribers", "params": {"list": [7]}}
OTHER_BODY = {"operation": "pinpointe.list_subscribers", "params": {"list": [8]}}
KEY = "nightly-2026-11-22"
RACERS = 8


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class GatedWorkflow(FakeWorkflow):
    """FakeWorkflow whose StartExecution waits while `gate` is closed (it opens by itself after 10 s,
    so a broken test fails rather than hangs); `entered` is set once one has begun waiting."""

    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    refuse: bool = False

    def __post_init__(self) -> None:
        self.gate.set()
        self._lock = threading.Lock()

    def start(self, job_id: str) -> str:
        self.entered.set()
        self.gate.wait(timeout=10)
        if self.refuse:
            raise RuntimeError("StartExecution throttled")
        with self._lock:
            return super().start(job_id)


class ContainerKilled(BaseException):
    """What Lambda's timeout does to a request: it stops where it is, and nothing after runs."""


@dataclass
class World:
    store: JobStore
    workflow: GatedWorkflow
    clock: Clock
    jobs: JobService

    def submit(self, body: dict[str, Any] = BODY, key: str = KEY) -> Job:
        return self.jobs.submit(JobSubmission.model_validate(body), idempotency_key=key)

    def all_jobs(self) -> list[Job]:
        return self.store.list(status=None, operation=None, limit=100, cursor=None).jobs


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    from moto.dynamodb.responses import DynamoHandler

    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        one_at_a_time = threading.Lock()
        call_action = DynamoHandler.call_action

        def atomic_call_action(self: DynamoHandler) -> Any:
            with one_at_a_time:
                return call_action(self)

        monkeypatch.setattr(DynamoHandler, "call_action", atomic_call_action)
        yield boto3.client("dynamodb")


@pytest.fixture(params=["dynamodb", "memory"])
def world(request: pytest.FixtureRequest) -> World:
    clock = Clock()
    if request.param == "memory":
        store: JobStore = InMemoryJobStore(clock=clock)
    else:
        client = request.getfixturevalue("dynamodb")
        store = DynamoJobStore(create_jobs_table(client), client, clock=clock)
    settings = Settings.model_validate(
        {
            "JOBS_TABLE": "jobs",
            "RESULTS_BUCKET": "results",
            "EVENT_BUS_NAME": "bus",
            "PUBLIC_API_URL": "https://api.example.test",
            "DEFAULT_JOB_TIMEOUT_SECONDS": 3600,
        }
    )
    workflow = GatedWorkflow()
    notices = Notices(FakeEventPublisher(), InMemorySecretStore(), settings)
    return World(store, workflow, clock, JobService(store, InMemoryResultStore(), workflow, notices, settings, now=clock))


def race(world: World, count: int, then: Callable[[], None]) -> list[Job | Exception]:
    """`count` threads submit BODY with KEY at once; `then` runs as soon as all but one have their
    answer (the one whose StartExecution waits). Each thread's job or error, in no order."""
    answers: list[Job | Exception] = []
    lock = threading.Lock()
    start = threading.Barrier(count)

    def submit() -> None:
        start.wait()
        try:
            answer: Job | Exception = world.submit()
        except Exception as error:
            answer = error
        with lock:
            answers.append(answer)
            if len(answers) == count - 1:
                then()

    threads = [threading.Thread(target=submit) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_requests_racing_with_one_key_make_one_job_and_the_others_are_told_to_come_back(world: World) -> None:
    world.workflow.gate.clear()  # the first request stays in flight until all the others have their answer

    answers = race(world, RACERS, then=world.workflow.gate.set)

    (job,) = world.all_jobs()
    assert [answer.job_id for answer in answers if isinstance(answer, Job)] == [job.job_id]
    in_flight = [answer for answer in answers if isinstance(answer, IdempotencyInProgress)]
    assert len(in_flight) == RACERS - 1, answers  # nothing else: no second job, no other error
    assert all((refused.status, refused.retry_after) == (409, 1) for refused in in_flight)
    assert world.workflow.started == [job.job_id]
    # Asked again once the first has answered: its job, started.
    again = world.submit()
    assert again.job_id == job.job_id and again.execution_arn == world.workflow.execution_arn(job.job_id)
    assert len(world.all_jobs()) == 1


def test_requests_racing_after_the_first_has_answered_all_get_its_job(world: World) -> None:
    first = world.submit()

    answers = race(world, RACERS, then=lambda: None)

    assert sorted(answer.job_id for answer in answers if isinstance(answer, Job)) == [first.job_id] * RACERS, answers
    assert [job.job_id for job in world.all_jobs()] == [first.job_id]


def test_the_same_key_with_another_body_is_refused_whether_the_first_is_in_flight_or_done(world: World) -> None:
    world.workflow.gate.clear()
    answers: list[Job] = []
    first = threading.Thread(target=lambda: answers.append(world.submit()))
    first.start()
    assert world.workflow.entered.wait(timeout=10)  # the first request is starting its job

    with pytest.raises(IdempotencyKeyReused):
        world.submit(OTHER_BODY)
    with pytest.raises(IdempotencyInProgress):
        world.submit(BODY)
    world.workflow.gate.set()
    first.join(timeout=10)

    with pytest.raises(IdempotencyKeyReused) as reused:
        world.submit(OTHER_BODY)
    assert (reused.value.status, reused.value.code) == (409, "IDEMPOTENCY_KEY_REUSED")
    with pytest.raises(IdempotencyKeyReused):  # the key is checked before the body: not a 422
        world.submit({"operation": "pinpointe.list_subscribers", "params": {"no_such_param": 1}})
    assert world.submit(BODY).job_id == answers[0].job_id
    assert len(world.all_jobs()) == 1


def test_a_first_request_that_died_before_starting_its_job_is_taken_over_after_the_in_flight_limit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(job: Job, **_: Any) -> Job:
        raise ContainerKilled()

    with monkeypatch.context() as dying:
        dying.setattr(world.jobs, "start_execution", killed)
        with pytest.raises(ContainerKilled):
            world.submit()
    (stored,) = world.all_jobs()
    assert stored.execution_arn is None and world.workflow.started == []

    world.clock.advance(IN_FLIGHT_LIMIT - timedelta(seconds=1))
    with pytest.raises(IdempotencyInProgress):  # it may still be working on it
        world.submit()
    world.clock.advance(timedelta(seconds=1))
    taken_over = world.submit()

    assert taken_over.job_id == stored.job_id and taken_over.execution_arn is not None
    assert world.workflow.started == [stored.job_id]
    assert len(world.all_jobs()) == 1


def test_a_key_whose_job_could_not_start_submits_again_as_the_503_says(world: World) -> None:
    world.workflow.refuse = True
    with pytest.raises(ServiceUnavailable):
        world.submit()
    world.workflow.refuse = False

    again = world.submit()

    jobs = {job.job_id: job for job in world.all_jobs()}
    assert len(jobs) == 2 and jobs[again.job_id].status is JobStatus.SUBMITTED
    (failed,) = [job for job in jobs.values() if job.job_id != again.job_id]
    assert failed.status is JobStatus.FAILED and failed.error is not None and failed.error.code == "START_FAILED"
    assert world.workflow.started == [again.job_id]
    assert world.submit().job_id == again.job_id  # and from now on, that job


def test_a_claim_left_on_a_job_that_never_started_is_given_up_by_the_next_request(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(claim: Any) -> None:
        raise RuntimeError("DynamoDB unavailable")

    world.workflow.refuse = True
    with monkeypatch.context() as flaky:
        flaky.setattr(world.store, "release", unavailable)
        with pytest.raises(ServiceUnavailable):
            world.submit()
    assert world.store.find_claim("default", KEY) is not None  # still naming the FAILED job
    world.workflow.refuse = False

    again = world.submit()

    assert again.status is JobStatus.SUBMITTED and world.workflow.started == [again.job_id]
    claim = world.store.find_claim("default", KEY)
    assert claim is not None and claim.job_id == again.job_id


def test_a_key_names_its_job_for_24_hours_then_submits_anew(world: World) -> None:
    first = world.submit()
    world.clock.advance(IDEMPOTENCY_WINDOW - timedelta(seconds=1))
    assert world.submit().job_id == first.job_id
    world.clock.advance(timedelta(seconds=1))

    later = world.submit()

    assert later.job_id != first.job_id and len(world.all_jobs()) == 2


def test_an_invalid_request_with_a_new_key_is_a_422_and_claims_nothing(world: World) -> None:
    with pytest.raises(InvalidRequest):
        world.submit({"operation": "pinpointe.list_subscribers", "params": {"no_such_param": 1}})

    assert world.store.find_claim("default", KEY) is None and world.all_jobs() == []
    assert world.submit().status is JobStatus.SUBMITTED


# --- through the API function ---------------------------------------------------------------------


def post_job(deployed, body: dict[str, Any], key: str) -> dict[str, Any]:  # noqa: F811
    event = http_event("api_submit_job.json", body=json.dumps(body))
    event["headers"] = {**event["headers"], "idempotency-key": key}
    return deployed.invoke("ApiFunction", event)


def test_the_api_answers_a_request_in_flight_with_409_and_retry_after(deployed) -> None:  # noqa: F811
    # The first request has stored its job and not yet started it (staged in the table itself).
    table = deployed.functions["ApiFunction"].environment["JOBS_TABLE"]
    store = DynamoJobStore(table, deployed.client("dynamodb"))
    now = datetime.now(UTC)
    job = Job(
        job_id=f"job_in_flight_{time.time_ns()}",
        operation=BODY["operation"],
        vendor="pinpointe",
        created_at=now,
        updated_at=now,
        deadline_at=now + timedelta(hours=1),
    )
    request = IdempotentRequest.of("default", KEY, JobSubmission.model_validate(BODY).model_dump(mode="json"))
    store.create(job, TimelineEvent(at=now, event="submitted", detail={}), request.claim(job.job_id, now))

    in_flight = post_job(deployed, BODY, KEY)
    reused = post_job(deployed, OTHER_BODY, KEY)

    assert in_flight["statusCode"] == 409
    assert {name.lower(): value for name, value in in_flight["headers"].items()}["retry-after"] == "1"
    error = json.loads(in_flight["body"])["error"]
    assert error["code"] == "IDEMPOTENCY_IN_PROGRESS" and error["details"] == {"retry_after_seconds": 1}
    assert reused["statusCode"] == 409 and json.loads(reused["body"])["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert "retry-after" not in {name.lower() for name in reused["headers"]}
