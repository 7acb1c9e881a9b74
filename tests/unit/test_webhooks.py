import pytest

from jobrelay.domain.errors import JobNotFound
from jobrelay.services.steps import StepInput
from jobrelay.services.webhooks import PayloadTooLarge


@pytest.fixture
def started(world):
    job_id = world.submit()
    world.steps.run(StepInput(step="start", job_id=job_id))
    token = world.vendor.started_with[-1].rsplit("/", 1)[-1]
    return job_id, token


def test_a_valid_webhook_resumes_the_parked_wait(world, started):
    job_id, token = started
    world.workflow.wait("t1")
    world.steps.run(StepInput(step="await_webhook", job_id=job_id, task_token="t1"))

    ack = world.webhooks.receive("pinpointe", job_id, token, b'{"status": "complete"}')

    assert ack.outcome == "resumed"
    job = world.store.get(job_id)
    assert job.webhook_notice.raw_s3_uri.startswith("s3://results/webhooks/")
    assert world.store.timeline(job_id)[-1].event == "webhook_received"


def test_a_duplicate_is_acknowledged_and_changes_nothing(world, started):
    job_id, token = started
    world.webhooks.receive("pinpointe", job_id, token, b"{}")
    version = world.store.get(job_id).version
    assert world.webhooks.receive("pinpointe", job_id, token, b"{}").outcome == "duplicate"
    assert world.store.get(job_id).version == version


@pytest.mark.parametrize("case", ["wrong token", "unknown job", "other vendor", "junk token"])
def test_forged_webhooks_all_get_the_same_404(world, started, case):
    job_id, token = started
    vendor, job, presented = {
        "wrong token": ("pinpointe", job_id, "A" * 43),
        "unknown job": ("pinpointe", "job_unknown", token),
        "other vendor": ("which50", job_id, token),
        "junk token": ("pinpointe", job_id, "../" * 10),
    }[case]
    version = world.store.get(job_id).version
    with pytest.raises(JobNotFound) as caught:
        world.webhooks.receive(vendor, job, presented, b"{}")
    assert caught.value.message == "not found"
    assert world.store.get(job_id).version == version


def test_late_webhooks_are_harmless(world, started):
    job_id, token = started
    world.jobs.cancel(job_id)
    assert world.webhooks.receive("pinpointe", job_id, token, b"{}").outcome == "ignored"
    assert world.store.get(job_id).status.value == "CANCELLED"


def test_oversize_bodies_are_refused(world, started):
    job_id, token = started
    with pytest.raises(PayloadTooLarge):
        world.webhooks.receive("pinpointe", job_id, token, b"x" * (256 * 1024 + 1))


def test_oversize_bodies_are_refused_before_the_token_is_looked_at(world, started):
    job_id, _ = started
    with pytest.raises(PayloadTooLarge, match="limited to 262144 bytes"):
        world.webhooks.receive("pinpointe", job_id, "A" * 43, b"x" * (256 * 1024 + 1))
