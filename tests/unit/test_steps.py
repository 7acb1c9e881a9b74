import hashlib
import json

import pytest

from jobrelay.domain.errors import JobDeadlineExceeded, VendorJobFailed
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_outcomes import PollOutcome, VendorState, WaitMode
from jobrelay.services.steps import StepInput, describe_failure
from tests.unit.conftest import DONE, RUNNING


def run(world, step, job_id, **extra):
    return world.steps.run(StepInput(step=step, job_id=job_id, **extra))


def test_start_calls_the_vendor_with_a_capability_url_whose_hash_only_is_kept(world):
    job_id = world.submit()

    out = run(world, "start", job_id)

    job = world.store.get(job_id)
    assert job.status is JobStatus.RUNNING and job.vendor_ref["jobid"] == "v-1"
    (url,) = world.vendor.started_with
    prefix = f"https://api.example.test/webhooks/pinpointe/{job_id}/"
    assert url.startswith(prefix)
    token = url.removeprefix(prefix)
    assert len(token) >= 43 and job.webhook_token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps(job.model_dump(mode="json"))
    assert (out.next, out.wait_seconds) == ("wait_webhook", 900)


def test_the_first_wait_never_runs_past_the_deadline(world):
    job_id = world.submit(timeout_seconds=120)
    assert run(world, "start", job_id).wait_seconds == 120


def test_poll_only_vendors_wait_with_backoff(world):
    world.vendor.wait_mode = WaitMode.POLL
    job_id = world.submit()
    out = run(world, "start", job_id)
    assert out.next == "wait_poll" and world.vendor.started_with == [None]
    assert 4 <= out.wait_seconds <= 6


def test_a_synchronous_vendor_call_is_collected_without_waiting(world):
    job_id = world.submit(operation="pinpointe.autoresponder_results", params={"all": True})
    out = run(world, "start", job_id)
    assert out.next == "collect" and world.store.get(job_id).status is JobStatus.RUNNING
    assert run(world, "start", job_id).next == "collect"  # a retried Start does not wait either
    assert len(world.vendor.started_with) == 1  # the vendor was called once


def test_start_of_a_cancelled_job_does_not_reach_the_vendor(world):
    job_id = world.submit()
    world.jobs.cancel(job_id)
    assert run(world, "start", job_id).next == "done"
    assert world.vendor.started_with == []


def test_start_after_the_deadline_times_out(world):
    job_id = world.submit(timeout_seconds=10)
    world.clock.advance(11)
    with pytest.raises(JobDeadlineExceeded):
        run(world, "start", job_id)


def test_poll_keeps_waiting_then_collects(world):
    job_id = world.submit()
    run(world, "start", job_id)
    world.vendor.polls = [RUNNING, RUNNING, DONE]

    first = run(world, "poll", job_id, woken_by={"Error": "States.Timeout"})
    second = run(world, "poll", job_id)
    third = run(world, "poll", job_id)

    assert (first.next, second.next, third.next) == ("wait_webhook", "wait_webhook", "collect")
    job = world.store.get(job_id)
    # The vendor's result link is a secret of the job: stored apart, never in the vendor_ref shown.
    assert job.polls == 3 and job.vendor_secrets["result_url"] == "https://x/1.json" and "result_url" not in job.vendor_ref
    statuses = [e.detail["status"] for e in world.store.timeline(job_id) if e.event == "vendor_status"]
    assert statuses == ["waiting", "complete"]  # one entry per change, not per poll


def test_a_vendor_failure_raises_with_the_vendors_reason(world):
    job_id = world.submit()
    run(world, "start", job_id)
    world.vendor.polls = [PollOutcome(state=VendorState.FAILED, raw_status="failed", message="list 1 is locked")]
    with pytest.raises(VendorJobFailed, match="list 1 is locked"):
        run(world, "poll", job_id)


def test_poll_past_the_deadline_times_out_without_asking_the_vendor(world):
    job_id = world.submit(timeout_seconds=60)
    run(world, "start", job_id)
    world.clock.advance(61)
    with pytest.raises(JobDeadlineExceeded):
        run(world, "poll", job_id)


def test_collect_stores_the_result_and_announces_the_end(world):
    job_id = world.submit()
    run(world, "start", job_id)
    world.vendor.polls = [DONE]
    run(world, "poll", job_id)

    out = run(world, "collect", job_id)

    job = world.store.get(job_id)
    assert (out.next, out.status, job.status) == ("notify", JobStatus.SUCCEEDED, JobStatus.SUCCEEDED)
    assert world.results.read(job.result.s3_uri) == world.vendor.result
    assert job.result.sha256 == hashlib.sha256(world.vendor.result).hexdigest()
    assert [t for t, _ in world.events.published] == ["Job Succeeded"]
    # A retried collect does not collect twice; it announces again (at-least-once).
    assert run(world, "collect", job_id).next == "notify"
    assert [e.event for e in world.store.timeline(job_id)].count("succeeded") == 1


def test_await_webhook_parks_the_token_or_resumes_at_once(world):
    job_id = world.submit()
    run(world, "start", job_id)
    world.workflow.wait("token-1")
    run(world, "await_webhook", job_id, task_token="token-1")
    assert world.store.get(job_id).task_token == "token-1" and not world.workflow.resumed

    world.webhooks.receive("pinpointe", job_id, _token(world), b"{}")
    assert world.workflow.resumed == {"token-1": {"via": "webhook"}}

    # A webhook that came while nobody was parked wakes the next wait at once.
    world.vendor.polls = [RUNNING]
    run(world, "poll", job_id)
    world.clock.advance(1)
    world.webhooks.receive("pinpointe", job_id, _token(world), b"{}")
    world.workflow.wait("token-2")
    run(world, "await_webhook", job_id, task_token="token-2")
    assert world.workflow.resumed["token-2"] == {"via": "webhook", "early": True}


def _token(world):
    return world.vendor.started_with[-1].rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        ({"Error": "VendorJobFailed", "Cause": json.dumps({"errorMessage": "it broke"})}, JobStatus.FAILED, "VENDOR_FAILED"),
        (
            {"Error": "JobDeadlineExceeded", "Cause": json.dumps({"errorMessage": "late"})},
            JobStatus.TIMED_OUT,
            "DEADLINE_EXCEEDED",
        ),
        ({"Error": "VendorRejected", "Cause": "not json"}, JobStatus.FAILED, "VENDOR_REJECTED"),
        ({"Error": "KeyError", "Cause": json.dumps({"errorMessage": "'secret-ish internals'"})}, JobStatus.FAILED, "INTERNAL"),
        ({"Error": "States.Timeout"}, JobStatus.FAILED, "STEP_TIMEOUT"),
    ],
)
def test_failures_become_readable_job_errors(error, status, code):
    got_status, got_error = describe_failure(error)
    assert (got_status, got_error.code) == (status, code)
    assert "internals" not in got_error.message


def test_fail_settles_an_active_job_once_and_leaves_ended_ones_alone(world):
    job_id = world.submit()
    run(world, "start", job_id)
    error = {"Error": "VendorJobFailed", "Cause": json.dumps({"errorMessage": "it broke"})}

    out = run(world, "fail", job_id, error=error)
    again = run(world, "fail", job_id, error={"Error": "JobDeadlineExceeded"})

    job = world.store.get(job_id)
    assert (out.next, again.next) == ("notify", "done")
    assert job.status is JobStatus.FAILED and job.error.message == "it broke"
    assert [t for t, _ in world.events.published] == ["Job Failed"]


def test_callback_failure_is_recorded_not_fatal(world):
    job_id = world.submit()
    out = run(
        world,
        "callback_failed",
        job_id,
        error={"Error": "CallbackDeliveryError", "Cause": json.dumps({"errorMessage": "HTTP 500"})},
    )
    assert out.next == "done"
    assert world.store.timeline(job_id)[-1].detail == {"reason": "HTTP 500"}
