import json

import pytest

from jobrelay.api.models import JobSubmission
from jobrelay.domain.errors import InvalidRequest, JobConflict, JobNotFound
from jobrelay.domain.status import JobStatus
from jobrelay.services.jobs import InvalidNextToken, JobService, ServiceUnavailable
from jobrelay.services.notices import Notices
from jobrelay.services.steps import StepInput
from tests.fakes import InMemorySecretStore
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
    with pytest.raises(InvalidNextToken, match="different query"):
        world.jobs.list(status=None, operation=None, limit=2, next_token=first.next)
    with pytest.raises(InvalidNextToken, match="not valid") as refused:
        world.jobs.list(status="SUBMITTED", operation=None, limit=2, next_token="garbage!")
    assert refused.value.status == 400  # README: a bad `next` token is a 400
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


def test_credentials_in_the_vendor_reference_never_reach_the_api(world):
    from pydantic import Secret, SecretStr

    from jobrelay.domain.vendor_ref import VendorRef

    class Ref(VendorRef):
        jobid: str
        result_url: SecretStr
        access_token: Secret[int]
        expires_at: str

    ref = Ref(jobid="1", result_url=SecretStr("https://x"), access_token=Secret(918273), expires_at="t")
    job_id = world.submit()
    world.store.update(job_id, ref.patch())

    stored = world.store.get(job_id)
    assert Ref.of(stored) == ref  # the job keeps both halves, for the adapter
    view = world.jobs.get(job_id).model_dump(mode="json")
    assert view["vendor_ref"] == {"jobid": "1", "expires_at": "t"}
    assert "918273" not in json.dumps(view) and "https://x" not in json.dumps(view)


def test_filters_read_status_and_operation_in_any_casing_and_account_exactly(world):
    mine = world.submit(account="acme")
    theirs = world.submit(operation="pinpointe.segment_subscribers", params={"segmentid": ["3"]})

    def listed(**filters):
        query = {"status": None, "operation": None} | filters
        return [job.job_id for job in world.jobs.list(limit=10, next_token=None, **query).jobs]

    assert listed(operation="Pinpointe.List_Subscribers", status=" submitted ") == [mine]
    assert listed(operation="PINPOINTE.SEGMENT_SUBSCRIBERS") == [theirs]
    assert listed(account="acme") == [mine]
    assert listed(account="ACME") == []  # an account is a name the submitter chose: matched exactly
    assert sorted(listed()) == sorted([mine, theirs])


def test_an_account_filter_pages_with_its_own_tokens(world):
    ids = [world.submit(account="acme" if n % 2 else "default") for n in range(6)]

    first = world.jobs.list(status=None, operation=None, account="acme", limit=2, next_token=None)
    second = world.jobs.list(status=None, operation=None, account="acme", limit=2, next_token=first.next)

    assert sorted(j.job_id for j in first.jobs + second.jobs) == sorted(ids[1::2]) and second.next is None
    with pytest.raises(InvalidNextToken):
        world.jobs.list(status=None, operation=None, account="default", limit=2, next_token=first.next)


class RecordsFiles:
    """S3RecordsSource's head(), over a dict of key -> size."""

    def __init__(self, files: dict[str, int]):
        self.files = files

    def head(self, s3_uri: str) -> int:
        if not s3_uri.startswith(("s3://results/uploads/", "s3://results/incoming/")):
            raise ValueError(
                f"records files are read only from s3://results/uploads/ or s3://results/incoming/, not from {s3_uri!r}"
            )
        if s3_uri not in self.files:
            raise FileNotFoundError(f"no records file at {s3_uri}")
        return self.files[s3_uri]


def service_reading(world, files: dict[str, int]) -> JobService:
    notices = Notices(world.events, InMemorySecretStore(), world.settings)
    return JobService(
        world.store, world.results, world.workflow, notices, world.settings, now=world.clock, records=RecordsFiles(files)
    )


def bulk_import(source: str) -> JobSubmission:
    return JobSubmission.model_validate(
        {"operation": "mypreferences.bulk_import", "params": {"source": source, "format": "csv", "name": "nightly"}}
    )


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("s3://results/uploads/a/missing.csv", "no records file"),
        ("s3://results/results/job_1/result.json", "read only from"),
        ("s3://other-bucket/uploads/a/x.csv", "read only from"),
        ("s3://results/incoming/empty.csv", "empty"),
    ],
)
def test_an_import_whose_file_cannot_be_read_is_refused_at_submit(world, source, says):
    jobs = service_reading(world, {"s3://results/incoming/empty.csv": 0})

    with pytest.raises(InvalidRequest) as refused:
        jobs.submit(bulk_import(source))

    assert refused.value.details[0]["field"] == "params.source"
    assert says in refused.value.message + refused.value.details[0]["message"]
    assert world.store.list(status=None, operation=None, limit=10, cursor=None).jobs == []
    assert world.workflow.started == []


def test_an_import_whose_file_is_there_is_accepted(world):
    jobs = service_reading(world, {"s3://results/uploads/a/ok.csv": 120})

    job = jobs.submit(bulk_import("s3://results/uploads/a/ok.csv"))

    assert job.status is JobStatus.SUBMITTED and world.workflow.started == [job.job_id]
