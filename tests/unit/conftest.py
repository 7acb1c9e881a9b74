"""Services wired to the in-memory fakes and a scripted vendor, on a clock the test controls."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from jobrelay.api.models import JobSubmission
from jobrelay.domain.job import JobResult, Progress, WebhookNotice
from jobrelay.domain.reconciliation import Reconciliation
from jobrelay.domain.vendor_outcomes import CollectOutcome, PollOutcome, StartOutcome, VendorState, WaitMode
from jobrelay.domain.vendor_ref import VendorRef
from jobrelay.drivers.base import DriverContext
from jobrelay.drivers.directory import Drivers
from jobrelay.services.concurrency import AccountConcurrency
from jobrelay.services.jobs import JobService
from jobrelay.services.notices import Notices
from jobrelay.services.steps import StepRunner
from jobrelay.services.sweeper import Sweeper
from jobrelay.services.webhooks import WebhookReceiver
from jobrelay.settings import Settings
from tests.fakes import (
    FakeEventPublisher,
    FakeWorkflow,
    InMemoryJobStore,
    InMemoryResultStore,
    InMemorySecretStore,
    InMemorySlots,
)


class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ScriptedRef(VendorRef):
    jobid: str
    requestmethod: str
    result_url: SecretStr | None = None


@dataclass
class ScriptedVendor:
    """A vendor whose answers the test scripts: `polls` is consumed one outcome per poll."""

    wait_mode: WaitMode = WaitMode.WEBHOOK
    polls: list[PollOutcome] = field(default_factory=list)
    started_with: list[str | None] = field(default_factory=list)
    result: bytes = b'{"count": 2, "subscribers": [{}, {}]}'
    start_error: Exception | None = None
    max_concurrent_jobs: int | None = None  # the account's limit
    reconciliation: Reconciliation = field(default_factory=Reconciliation)  # what collect finds
    start_error_after_sending: bool = False  # start_error is raised after the vendor took the start

    def start(self, job, webhook_url):
        if self.start_error and not self.start_error_after_sending:
            raise self.start_error
        self.started_with.append(webhook_url)
        if self.start_error:
            raise self.start_error
        return StartOutcome(vendor_ref=ScriptedRef(jobid="v-1", requestmethod="GetListSubscribersAsync"))

    def check(self, job):  # a paged read's start (an operation of OperationKind.PAGED_READ)
        self.started_with.append(None)
        return StartOutcome(vendor_ref=ScriptedRef(jobid="-", requestmethod="GetAutoresponderResults"), note="read page by page")

    def poll(self, job):
        return self.polls.pop(0)

    def collect(self, job, results):
        stored = results.put_stream(job.job_id, "result.json", iter([self.result[:5], self.result[5:]]), "application/json")
        result = JobResult(s3_uri=stored.s3_uri, size=stored.size, sha256=stored.sha256, files=[stored])
        return CollectOutcome(result=result, reconciliation=self.reconciliation)

    def cancel(self, job):
        return False


RUNNING = PollOutcome(state=VendorState.RUNNING, raw_status="waiting", progress=Progress(percent=10))
DONE = PollOutcome(
    state=VendorState.DONE,
    raw_status="complete",
    vendor_ref=ScriptedRef(jobid="v-1", requestmethod="GetListSubscribersAsync", result_url=SecretStr("https://x/1.json")),
)


@dataclass
class World:
    clock: Clock
    store: InMemoryJobStore
    results: InMemoryResultStore
    workflow: FakeWorkflow
    events: FakeEventPublisher
    vendor: ScriptedVendor
    settings: Settings
    jobs: JobService
    steps: StepRunner
    webhooks: WebhookReceiver
    slots: InMemorySlots
    sweeper: Sweeper

    def submit(self, **overrides) -> str:
        body = {"operation": "pinpointe.list_subscribers", "params": {"list": ["1"]}, **overrides}
        return self.jobs.submit(JobSubmission.model_validate(body)).job_id


@pytest.fixture
def world() -> World:
    clock = Clock()
    store = InMemoryJobStore(clock=clock)
    results = InMemoryResultStore()
    workflow = FakeWorkflow()
    events = FakeEventPublisher()
    vendor = ScriptedVendor()
    settings = Settings.model_validate(
        {
            "JOBS_TABLE": "jobs",
            "RESULTS_BUCKET": "results",
            "EVENT_BUS_NAME": "bus",
            "PUBLIC_API_URL": "https://api.example.test",
            "WEBHOOK_FALLBACK_SECONDS": 900,
            "DEFAULT_JOB_TIMEOUT_SECONDS": 3600,
        }
    )
    notices = Notices(events, InMemorySecretStore(), settings)
    slots = InMemorySlots(clock=clock)
    concurrency = AccountConcurrency(slots, store, now=clock)
    return World(
        clock=clock,
        store=store,
        results=results,
        workflow=workflow,
        events=events,
        vendor=vendor,
        settings=settings,
        jobs=JobService(
            store,
            results,
            workflow,
            notices,
            settings,
            cancel_at_vendor=vendor.cancel,
            release_slot=concurrency.release,
            now=clock,
        ),
        steps=StepRunner(
            store,
            workflow,
            notices,
            Drivers(lambda job: vendor, DriverContext(store, results, settings, now=clock)).for_job,
            settings,
            now=clock,
            concurrency=concurrency,
        ),
        webhooks=WebhookReceiver(
            store,
            workflow,
            lambda key, body: f"s3://results/{key}",
            lambda vendor, body: WebhookNotice(status="complete"),
            now=clock,
        ),
        slots=slots,
        sweeper=Sweeper(store, workflow, notices, concurrency, now=clock),
    )


# --- the `jobrelay` CLI's tests (tests/unit/test_cli_*.py) ----------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    """The CLI run as if on a clean machine: no proxy, no API URL, no AWS profile or credentials of
    the developer's (and no instance-metadata lookups), and retries a thousand times quicker."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "JOBRELAY_API_URL"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr("jobrelay_cli.client.RETRY_DELAYS_SECONDS", (0.001, 0.002, 0.004))


@pytest.fixture
def fake_api(cli_env):
    from tests.unit.cli_support import FakeApi

    api = FakeApi().start()
    yield api
    api.stop()
