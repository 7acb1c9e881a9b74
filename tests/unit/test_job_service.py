import pytest

from jobrelay.api_models import JobSubmission
from jobrelay.domain.errors import InvalidRequest, JobConflict, JobNotFound
from jobrelay.domain.status import JobStatus
from jobrelay.services.jobs import ServiceUnavailable
from jobrelay.services.steps import StepInput
from tests.unit.conftest import DONE


def test_submit_stores_the_job_and_starts_its_execution(world):
    job_id = world.submit(params={"list": [12]}, timeout_seconds=600)
    job = world.store.get(job_id)
    assert job.status is JobStatus.SUBMITTED and job.params["list"] == ["12"]
    assert (job.deadline_at - job.created_at).total_seconds() == 600
    assert world.workflow.started == [job_id] and job.execution_arn.endswith(f":{job_id}")


def test_a_failed_start_leaves_the_job_failed_not_hanging(world):
    def refuse(job_id):
        raise RuntimeError("throttled")

    world.workflow.start = refuse
    with pytest.raises(ServiceUnavailable):
        world.submit()
    (job,) = world.store.list(status=None, operation=None, limit=10, cursor=None).jobs
    assert job.status is JobStatus.FAILED and job.error.code == "START_FAILED"


def test_the_view_hides_backend_fields_and_vendor_links(world):
    job_id = world.submit()
    world.vendor.polls = [DONE]
    for step in ("start", "poll", "collect"):
        world.clock.advance(1)
        world.steps.run(StepInput(step=step, job_id=job_id))

    view = world.jobs.get(job_id).model_dump(mode="json")

    assert "result_url" not in view["vendor_ref"] and view["vendor_ref"]["jobid"] == "v-1"
    assert not {"task_token", "webhook_token_sha256", "webhook_notice"} & set(view)
    assert view["result"]["download_url"].startswith("https://")
    assert [e["event"] for e in view["timeline"]][:3] == ["submitted", "starting", "started"]


def test_unknown_jobs_are_404s(world):
    for job_id in ("job_nope", "../../etc", "x" * 500):
        with pytest.raises(JobNotFound):
            world.jobs.get(job_id)


def test_listing_pages_with_an_opaque_token_tied_to_its_filters(world):
    ids = [world.submit() for _ in range(5)]
    world.clock.advance(1)

    first = world.jobs.list(status="submitted", operation=None, limit=2, next_token=None)
    second = world.jobs.list(status="SUBMITTED", operation=None, limit=2, next_token=first.next)
    third = world.jobs.list(status="SUBMITTED", operation=None, limit=2, next_token=second.next)

    seen = [j.job_id for page in (first, second, third) for j in page.jobs]
    assert sorted(seen) == sorted(ids) and len(seen) == 5 and third.next is None
    with pytest.raises(InvalidRequest, match="different query"):
        world.jobs.list(status=None, operation=None, limit=2, next_token=first.next)
    with pytest.raises(InvalidRequest, match="not valid"):
        world.jobs.list(status="SUBMITTED", operation=None, limit=2, next_token="garbage!")
    with pytest.raises(InvalidRequest, match="unknown status"):
        world.jobs.list(status="DONE", operation=None, limit=2, next_token=None)
    with pytest.raises(InvalidRequest, match="unknown operation"):
        world.jobs.list(status=None, operation="nope", limit=2, next_token=None)


def test_cancel_stops_the_execution_once_and_announces_it(world):
    job_id = world.submit()
    world.steps.run(StepInput(step="start", job_id=job_id))

    first = world.jobs.cancel(job_id)
    second = world.jobs.cancel(job_id)

    assert first.status is second.status is JobStatus.CANCELLED
    assert list(world.workflow.stopped) == [world.workflow.execution_arn(job_id)]
    assert [t for t, _ in world.events.published] == ["Job Cancelled"]
    events = [e.event for e in world.store.timeline(job_id)]
    assert events.count("cancelled") == 1 and "vendor_cancel" in events


def test_a_finished_job_cannot_be_cancelled(world):
    job_id = world.submit()
    world.steps.run(StepInput(step="start", job_id=job_id))
    world.vendor.polls = [DONE]
    world.steps.run(StepInput(step="poll", job_id=job_id))
    world.steps.run(StepInput(step="collect", job_id=job_id))
    with pytest.raises(JobConflict):
        world.jobs.cancel(job_id)
    assert world.store.get(job_id).status is JobStatus.SUCCEEDED


def test_invalid_params_are_refused_before_anything_is_stored(world):
    with pytest.raises(InvalidRequest):
        world.jobs.submit(JobSubmission(operation="pinpointe.list_subscribers", params={"list": []}))
    assert world.store.list(status=None, operation=None, limit=10, cursor=None).jobs == []


def test_credentials_in_the_vendor_reference_never_reach_the_api():
    from jobrelay.domain.job import public_vendor_ref

    shown = public_vendor_ref({"jobid": "1", "result_url": "https://x", "access_token": 918273, "expires_at": "t"})
    assert shown == {"jobid": "1", "expires_at": "t"}
