"""The steps' side of "no silent shortfall": a result settles SUCCEEDED only when it reconciles with
the vendor's counts, a creating call is never sent twice, and what the vendor said that we could not
read is kept on the timeline, redacted."""

import json

import pytest

from jobrelay.domain.errors import VendorOutcomeUnknown, VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.domain.job import JobPatch, Progress
from jobrelay.domain.reconciliation import Reconciler
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_outcomes import PollOutcome, VendorState
from jobrelay.services.steps import StepInput, describe_failure
from tests.unit.conftest import DONE


def run(world, step, job_id, **extra):
    return world.steps.run(StepInput(step=step, job_id=job_id, **extra))


def finished(world) -> str:
    job_id = world.submit()
    run(world, "start", job_id)
    world.vendor.polls = [DONE]
    run(world, "poll", job_id)
    return job_id


def test_a_result_that_reconciles_succeeds_and_the_job_shows_both_sides(world):
    rec = Reconciler(ours={"written": 2}, vendor={"count": 2})
    rec.check("records in the file vs the file's count", 2, 2)
    world.vendor.reconciliation = rec.result()
    job_id = finished(world)

    run(world, "collect", job_id)

    job = world.store.get(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.reconciliation.reconciled is True
    assert job.progress.records == {"written": 2} and "reconciled" in job.progress.note
    (succeeded,) = [e for e in world.store.timeline(job_id) if e.event == "succeeded"]
    assert succeeded.detail["reconciled"] is True and succeeded.detail["shortfall"] == []
    assert world.events.published[-1][1]["reconciliation"]["reconciled"] is True


def test_a_result_short_of_the_vendors_count_is_partial_with_the_shortfall_explained(world):
    rec = Reconciler(ours={"written": 40}, vendor={"count": 50})
    rec.check("records in the file vs the file's count", 40, 50, explain="the file holds 40 records but says it has 50")
    world.vendor.reconciliation = rec.result()
    job_id = finished(world)

    run(world, "collect", job_id)

    job = world.store.get(job_id)
    assert job.status is JobStatus.PARTIAL and job.reconciliation.reconciled is False
    assert (job.progress.phase, job.progress.note) == ("finished", "the file holds 40 records but says it has 50")
    assert [t for t, _ in world.events.published] == ["Job Partially Succeeded"]


def test_no_vendor_count_is_not_reconciled_but_not_a_shortfall_either(world):
    job_id = finished(world)

    run(world, "collect", job_id)

    job = world.store.get(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.reconciliation.reconciled is None
    assert "no count" in job.progress.note


def test_a_start_whose_answer_was_never_recorded_is_not_sent_again(world):
    job_id = world.submit()
    world.vendor.start_error, world.vendor.start_error_after_sending = RuntimeError("the Lambda died"), True
    with pytest.raises(RuntimeError):
        run(world, "start", job_id)
    world.vendor.start_error = None

    with pytest.raises(VendorOutcomeUnknown, match="not sent again"):
        run(world, "start", job_id)  # the state machine's retry of the step

    assert len(world.vendor.started_with) == 1
    status, error = describe_failure({"Error": "VendorOutcomeUnknown", "Cause": json.dumps({"errorMessage": "x"})})
    assert (status, error.code) == (JobStatus.FAILED, "VENDOR_PROTOCOL")


def test_an_unreadable_answer_is_kept_on_the_timeline_with_its_excerpt(world):
    job_id = world.submit()
    world.vendor.start_error = VendorProtocolError("no job id in the start answer", answer='{"data": {"elapsed": "0.1"}}')

    with pytest.raises(VendorProtocolError):
        run(world, "start", job_id)

    (event,) = [e for e in world.store.timeline(job_id) if e.event == "vendor_answer_unreadable"]
    assert event.detail == {
        "step": "start",
        "error": "VendorProtocolError",
        "message": "no job id in the start answer",
        "answer": '{"data": {"elapsed": "0.1"}}',
    }


def test_an_unknown_status_word_is_recorded_once_with_the_answer_that_carried_it(world):
    job_id = world.submit()
    run(world, "start", job_id)
    odd = PollOutcome(state=VendorState.RUNNING, raw_status="Reticulating", unknown_status_answer='{"status": "Reticulating"}')
    world.vendor.polls = [odd, odd, DONE]

    for _ in range(3):
        run(world, "poll", job_id)

    timeline = world.store.timeline(job_id)
    (unknown,) = [e for e in timeline if e.event == "vendor_status_unknown"]
    assert unknown.detail["status"] == "Reticulating" and unknown.detail["answer"] == '{"status": "Reticulating"}'
    assert [e.detail["status"] for e in timeline if e.event == "vendor_status"] == ["complete"]


def test_polling_keeps_our_own_counts_beside_the_vendors(world):
    job_id = world.submit()
    run(world, "start", job_id)
    world.store.update(job_id, JobPatch(progress=Progress(records={"sent": 7})))
    world.vendor.polls = [
        PollOutcome(state=VendorState.RUNNING, raw_status="waiting", progress=Progress(percent=30, counts={"processed": 3}))
    ]

    run(world, "poll", job_id)

    progress = world.store.get(job_id).progress
    assert (progress.percent, progress.counts, progress.records) == (30, {"processed": 3}, {"sent": 7})


@pytest.mark.parametrize(
    "refusal",
    [
        VendorTransientError("Pinpointe answered HTTP 503"),
        VendorTransientError("a read before the start timed out", vendor_answered=False),
        VendorRejected("Pinpointe rejected the start: bad list"),
    ],
)
def test_a_start_the_vendor_answered_with_an_error_may_be_sent_again(world, refusal):
    job_id = world.submit()
    world.vendor.start_error = refusal
    with pytest.raises(type(refusal)):
        run(world, "start", job_id)
    world.vendor.start_error = None

    run(world, "start", job_id)  # the retry: nothing was created, so it goes out again

    assert world.store.get(job_id).status is JobStatus.RUNNING and len(world.vendor.started_with) == 1
