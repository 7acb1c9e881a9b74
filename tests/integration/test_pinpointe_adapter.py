"""The Pinpointe adapter against the Pinpointe sandbox over real sockets: every operation from start
to stored result, and each fault the sandbox can switch on, as the step errors the state machine
expects."""

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devstack.sandbox.http import RecordingServer
from devstack.sandbox.pinpointe import PinpointeSandbox
from jobrelay.domain.errors import VendorJobFailed, VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.domain.job import Job, StoredFile
from jobrelay.ports import PollOutcome, VendorState
from jobrelay.vendors.pinpointe.adapter import PinpointeAccount, PinpointeJobs, parse_webhook
from jobrelay.vendors.pinpointe.client import DOWNLOAD_CHUNK_BYTES

JOB_SECONDS = 0.2
HOOK = "http://127.0.0.1:9/webhooks/pinpointe/job/token"  # nobody listens: delivery fails quietly

OPERATIONS = {  # operation: (params, the result document's list of records)
    "pinpointe.newsletter_contact_data_summary": (
        {"stat": "4711", "startdate": "2025-03-01", "enddate": "20250308"},
        "events",
    ),
    "pinpointe.list_subscribers": (
        {"list": [12, "13"], "include_membership": True, "customfields": ["all"]},
        "subscribers",
    ),
    "pinpointe.segment_subscribers": ({"segmentid": ["5"], "status": "active"}, "subscribers"),
    "pinpointe.tag_subscribers": ({"tag": ["7"], "extag": ["8"], "emailonly": True}, "subscribers"),
}


class MemoryResults:
    """A ResultStore that consumes the chunks one at a time, as the S3 adapter must."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.chunk_sizes: list[int] = []

    def put_stream(self, job_id: str, name: str, chunks: Iterable[bytes], content_type: str) -> StoredFile:
        digest, size, kept = hashlib.sha256(), 0, bytearray()
        for chunk in chunks:
            self.chunk_sizes.append(len(chunk))
            digest.update(chunk)
            size += len(chunk)
            kept += chunk
        uri = f"mem://{job_id}/{name}"
        self.files[uri] = bytes(kept)
        return StoredFile(name=name, s3_uri=uri, size=size, sha256=digest.hexdigest(), content_type=content_type)

    def put_bytes(self, job_id: str, name: str, data: bytes, content_type: str) -> StoredFile:
        return self.put_stream(job_id, name, [data], content_type)

    def download_url(self, s3_uri: str) -> str:
        return s3_uri


@pytest.fixture
def sandbox() -> Iterator[PinpointeSandbox]:
    with PinpointeSandbox(job_seconds=JOB_SECONDS, records=25) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as client:
        yield client


def make_jobs(sandbox: PinpointeSandbox, http: httpx.Client, *, grace: int = 60, now=None, **secret) -> PinpointeJobs:
    account = PinpointeAccount.model_validate({**sandbox.account_secret(), **secret})
    clock = {"now": now} if now else {}
    return PinpointeJobs(account, http=http, not_found_grace_seconds=grace, **clock)


@pytest.fixture
def jobs(sandbox, http) -> PinpointeJobs:
    return make_jobs(sandbox, http)


def new_job(operation: str = "pinpointe.list_subscribers", params: dict | None = None) -> Job:
    return Job(
        job_id=f"job-{time.monotonic_ns()}",
        operation=operation,
        vendor="pinpointe",
        deadline_at=datetime.now(UTC) + timedelta(hours=1),
        params=params if params is not None else {"list": ["12"]},
    )


def with_ref(job: Job, **updates) -> Job:
    return job.model_copy(update={"vendor_ref": {**job.vendor_ref, **updates}})


def started(jobs: PinpointeJobs, job: Job, webhook_url: str = HOOK) -> Job:
    return with_ref(job, **jobs.start(job, webhook_url).vendor_ref)


def poll_until_ended(jobs: PinpointeJobs, job: Job, timeout: float = 5.0) -> tuple[Job, PollOutcome]:
    deadline = time.monotonic() + timeout
    while (outcome := jobs.poll(job)).state is VendorState.RUNNING:
        assert time.monotonic() < deadline, f"still running: {outcome}"
        time.sleep(0.03)
    return with_ref(job, **outcome.vendor_ref_updates), outcome


def configure(sandbox: PinpointeSandbox, **changes) -> None:
    sandbox.configure(changes)


# --- the four operations ---------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_operation_runs_from_start_to_stored_result(jobs, sandbox, http, operation):
    params, records_key = OPERATIONS[operation]
    job = started(jobs, new_job(operation, params))
    assert job.vendor_ref["jobid"].isdigit()

    job, outcome = poll_until_ended(jobs, job)
    assert outcome.state is VendorState.DONE and outcome.raw_status == "complete"

    results = MemoryResults()
    collected = jobs.collect(job, results)
    direct = http.get(job.vendor_ref["result_url"]).content
    stored = results.files[collected.result.s3_uri]
    assert collected.result.sha256 == hashlib.sha256(direct).hexdigest() == hashlib.sha256(stored).hexdigest()
    assert collected.result.size == len(direct) and collected.result.files[0].name == "result.json"
    assert json.loads(direct)["count"] == 25 and len(json.loads(direct)[records_key]) == 25


def test_params_reach_pinpointe_in_its_wire_forms(jobs, sandbox, http):
    for operation, (params, _) in OPERATIONS.items():
        started(jobs, new_job(operation, params))
    sent = {job["requestmethod"]: job["details"] for job in http.get(f"{sandbox.base_url}/_sandbox/jobs").json()}
    notify = {"type": "webhook", "value": HOOK}
    assert sent["GetNewsletterContactDataSummaryAsync"] == {
        "stat": "4711", "startdate": "20250301", "enddate": "20250308", "notify": notify,
    }
    assert sent["GetTagSubscribersAsync"] == {
        "tag": ["7"], "extag": ["8"], "status": "any", "include_membership": "false", "emailonly": "true",
        "notify": notify,
    }
    assert sent["GetListSubscribersAsync"]["list"] == ["12", "13"]


def test_wrapped_answers_work_the_same(jobs, sandbox):
    configure(sandbox, wrap_response=True)
    job, outcome = poll_until_ended(jobs, started(jobs, new_job()))
    assert outcome.state is VendorState.DONE
    assert jobs.collect(job, MemoryResults()).result.size > 0


@pytest.mark.parametrize("content_length", [False, True])
def test_a_large_result_arrives_in_bounded_chunks(jobs, sandbox, content_length):
    configure(sandbox, records=12_000, file_content_length=content_length)  # about 2.5 MiB
    job, _ = poll_until_ended(jobs, started(jobs, new_job(params={"list": ["1"], "customfields": ["all"]})))
    results = MemoryResults()
    stored = jobs.collect(job, results).result
    assert len(results.chunk_sizes) >= 3 and max(results.chunk_sizes) <= DOWNLOAD_CHUNK_BYTES
    assert stored.size == sum(results.chunk_sizes) > 2 * DOWNLOAD_CHUNK_BYTES
    assert json.loads(results.files[stored.s3_uri])["count"] == 12_000


# --- vendor outcomes and faults ------------------------------------------------------------------------


def test_a_failed_job_is_reported_failed_with_pinpointe_s_reason(jobs, sandbox):
    configure(sandbox, fail_jobs="Export quota exceeded")
    job, outcome = poll_until_ended(jobs, started(jobs, new_job()))
    assert outcome.state is VendorState.FAILED
    assert (outcome.raw_status, outcome.message) == ("failed", "Export quota exceeded")
    with pytest.raises(VendorProtocolError, match="no result link"):
        jobs.collect(job, MemoryResults())


@pytest.mark.parametrize("fault_methods", [None, ["GetListSubscribersAsync"]])
def test_503_on_start_is_transient(jobs, sandbox, fault_methods):
    configure(sandbox, http_5xx=1, fault_methods=fault_methods)
    with pytest.raises(VendorTransientError, match="HTTP 503"):
        jobs.start(new_job(), HOOK)
    assert jobs.start(new_job(), HOOK).vendor_ref["jobid"]  # the retry gets through


def test_503_on_poll_is_transient(jobs, sandbox):
    job = started(jobs, new_job())
    configure(sandbox, http_5xx=1, fault_methods=["AsyncJobStatus"])
    with pytest.raises(VendorTransientError):
        jobs.poll(job)
    assert jobs.poll(job).state in (VendorState.RUNNING, VendorState.DONE)


def test_a_hanging_call_times_out_as_transient(sandbox, http):
    jobs = make_jobs(sandbox, http, read_timeout_seconds=0.2, connect_timeout_seconds=0.2)
    configure(sandbox, timeouts=1, timeout_hang_seconds=3)
    started_at = time.monotonic()
    with pytest.raises(VendorTransientError, match="timed out"):
        jobs.start(new_job(), HOOK)
    assert time.monotonic() - started_at < 1.5


def test_a_malformed_answer_is_a_protocol_error(jobs, sandbox):
    job = started(jobs, new_job())
    configure(sandbox, malformed=1)
    with pytest.raises(VendorProtocolError, match="not a JSON object"):
        jobs.poll(job)


def test_bad_credentials_are_rejected(sandbox, http):
    jobs = make_jobs(sandbox, http, usertoken="not-the-token")
    with pytest.raises(VendorRejected, match="username and usertoken") as raised:
        jobs.start(new_job(), HOOK)
    assert "not-the-token" not in str(raised.value)


def test_an_expired_token_is_rejected_on_poll(jobs, sandbox):
    job = started(jobs, new_job())
    configure(sandbox, expired_token=True)
    with pytest.raises(VendorRejected):
        jobs.poll(job)


def test_an_unlisted_job_runs_on_within_the_grace_period_then_fails(sandbox, http):
    configure(sandbox, not_visible_seconds=30)
    now = datetime.now(UTC)
    early = make_jobs(sandbox, http, grace=60, now=lambda: now)
    job = started(early, new_job())
    outcome = early.poll(job)
    jobid = job.vendor_ref["jobid"]
    assert outcome.state is VendorState.RUNNING and f"does not list job {jobid} yet" in outcome.progress.note

    late = make_jobs(sandbox, http, grace=60, now=lambda: now + timedelta(seconds=61))
    with pytest.raises(VendorJobFailed, match=f"no longer knows job {jobid}"):
        late.poll(job)


def test_a_result_host_off_the_allowlist_is_not_followed(sandbox, http):
    jobs = make_jobs(sandbox, http, result_hosts=["*.mypinpointe.com"])
    job, _ = poll_until_ended(jobs, started(jobs, new_job()))
    with pytest.raises(VendorProtocolError, match="host '127.0.0.1'"):
        jobs.collect(job, MemoryResults())
    assert not [c for c in sandbox.calls() if c["requestmethod"] == "ResultDownload"]


def test_a_503_on_download_is_transient_and_the_retry_stores_the_file(jobs, sandbox):
    job, _ = poll_until_ended(jobs, started(jobs, new_job()))
    configure(sandbox, file_5xx=1)
    with pytest.raises(VendorTransientError, match="HTTP 503"):
        jobs.collect(job, MemoryResults())
    assert jobs.collect(job, MemoryResults()).result.size > 0


def test_an_unreachable_result_link_is_transient(jobs, sandbox):
    job, _ = poll_until_ended(jobs, started(jobs, new_job()))
    sandbox.stop()  # the link now points at a closed port
    with pytest.raises(VendorTransientError, match="the result download"):
        jobs.collect(job, MemoryResults())


# --- webhooks -------------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


def hook_url(receiver: RecordingServer) -> str:
    return f"{receiver.base_url}/webhooks/pinpointe/job-1/token"


def test_the_webhook_notice_arrives_and_its_link_can_be_collected(jobs, receiver):
    job = started(jobs, new_job(), hook_url(receiver))
    (delivery,) = receiver.wait_for(1)
    assert delivery.path == "/webhooks/pinpointe/job-1/token"
    notice = parse_webhook(delivery.body)
    assert notice.jobid == job.vendor_ref["jobid"] and notice.status == "complete"

    # What the webhook receiver stores, collected without a poll in between.
    collected = jobs.collect(with_ref(job, webhook_result_url=notice.result_url), MemoryResults())
    assert collected.result.size > 0


def test_a_duplicated_webhook_arrives_twice(jobs, sandbox, receiver):
    configure(sandbox, duplicate_webhook=True)
    started(jobs, new_job(), hook_url(receiver))
    first, second = receiver.wait_for(2)
    assert parse_webhook(first.body) == parse_webhook(second.body)


def test_a_dropped_webhook_leaves_polling_to_find_the_end(jobs, sandbox, receiver):
    configure(sandbox, drop_webhook=True)
    job = started(jobs, new_job(), hook_url(receiver))
    job, outcome = poll_until_ended(jobs, job)
    time.sleep(0.1)
    assert outcome.state is VendorState.DONE and receiver.received() == []
