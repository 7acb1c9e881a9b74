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


# --- GetAutoresponderResults: synchronous, every page ---------------------------------------------------

AUTORESPONDERS = "pinpointe.autoresponder_results"


def autoresponder_job(**params) -> Job:
    return new_job(AUTORESPONDERS, params)


def json_lines(data: bytes) -> list[dict]:
    assert data == b"" or data.endswith(b"\n")
    return [json.loads(line) for line in data.decode().split("\n")[:-1]]


def run_autoresponder_job(jobs: PinpointeJobs, job: Job) -> tuple[list[dict], dict, bytes]:
    """Start (ready at once) then collect, as the state machine does: the records, summary.json and
    the records file as stored."""
    outcome = jobs.start(job, None)
    assert outcome.ready is True
    assert jobs.poll(with_ref(job, **outcome.vendor_ref)).state is VendorState.DONE
    results = MemoryResults()
    collected = jobs.collect(with_ref(job, **outcome.vendor_ref), results).result
    records_file, summary_file = collected.files
    assert collected.s3_uri == records_file.s3_uri and records_file.content_type == "application/x-ndjson"
    assert collected.sha256 == hashlib.sha256(results.files[collected.s3_uri]).hexdigest()
    stored = results.files[collected.s3_uri]
    return json_lines(stored), json.loads(results.files[summary_file.s3_uri]), stored


def autoresponder_calls(sandbox: PinpointeSandbox) -> list[dict]:
    return [c for c in sandbox.calls() if c["requestmethod"] == "GetAutoresponderResults"]


def test_autoresponder_results_across_several_pages_arrive_once_each_in_order(jobs, sandbox):
    configure(sandbox, autoresponder_sends=2500)
    records, summary, _ = run_autoresponder_job(
        jobs, autoresponder_job(autorespondername="Win-back", grouping="send", limit=1000)
    )
    assert [r["sendid"] for r in records] == [f"302-{n}" for n in range(1, 2501)]
    assert {r["autorespondername"] for r in records} == {"Win-back"}
    assert (summary["records"], summary["pages"], summary["page_limit"]) == (2500, 3, 1000)
    pages = [(c["next"], c["records"]) for c in autoresponder_calls(sandbox)]
    assert pages == [("0", 1), ("0", 1000), ("1000", 1000), ("2000", 500)]  # the name check, then 3 pages


def test_autoresponder_by_id_with_each_grouping(jobs, sandbox):
    per_send, _, _ = run_autoresponder_job(jobs, autoresponder_job(autoresponderid=301, grouping="send"))
    (aggregated,), summary, _ = run_autoresponder_job(jobs, autoresponder_job(autoresponderid="301"))
    assert [r["sendid"] for r in per_send] == ["301-1", "301-2", "301-3"]
    assert aggregated["autoresponderid"] == "301" and aggregated["sends"] == "3"
    assert int(aggregated["emailopens"]) == sum(int(r["emailopens"]) for r in per_send)
    assert summary == {"operation": AUTORESPONDERS, "autoresponderid": "301", "grouping": "autoresponder",
                       "records": 1, "pages": 1, "page_limit": 1000, "file": "autoresponder_results.jsonl"}
    sent = [c["details"] for c in autoresponder_calls(sandbox)]
    assert {d["grouping"] for d in sent[:2]} == {"send"} and {d["grouping"] for d in sent[2:]} == {"autoresponder"}
    assert all(d["autoresponderid"] == "301" and "autorespondername" not in d for d in sent)


def test_all_autoresponders_are_read_without_a_start_check(jobs, sandbox):
    configure(sandbox, autoresponders={str(n): f"Drip {n}" for n in range(1, 8)})
    records, summary, _ = run_autoresponder_job(jobs, autoresponder_job(all=True, limit=3))
    assert [r["autorespondername"] for r in records] == [f"Drip {n}" for n in range(1, 8)]
    assert summary["pages"] == 3 and summary["all"] is True
    assert [c["details"] for c in autoresponder_calls(sandbox)][0] == {
        "grouping": "autoresponder", "pagination": {"limit": "3", "next": "0"},
    }


@pytest.mark.parametrize(("params", "named"), [({"autorespondername": "Nope"}, "autorespondername 'Nope'"),
                                               ({"autoresponderid": "999"}, "autoresponderid '999'")])
def test_an_unknown_autoresponder_is_rejected_at_the_start_with_pinpointe_s_reason(jobs, sandbox, params, named):
    with pytest.raises(VendorRejected, match=f"{named}: Autoresponder not found"):
        jobs.start(autoresponder_job(**params), None)


@pytest.mark.parametrize(("empty", "note"), [(True, None), ("No statistical information is available", "No statistical information is available")])
def test_no_autoresponder_results_is_an_empty_file_and_a_zero_count(jobs, sandbox, empty, note):
    configure(sandbox, autoresponder_empty=empty)
    records, summary, stored = run_autoresponder_job(jobs, autoresponder_job(autorespondername="Welcome series"))
    assert records == [] and stored == b""
    assert summary["records"] == 0 and summary.get("vendor_note") == note


def test_a_5xx_on_page_two_is_transient_and_the_retry_has_no_duplicates(jobs, sandbox):
    configure(sandbox, autoresponder_sends=25, later_page_5xx=1)
    job = autoresponder_job(autoresponderid="303", grouping="send", limit=10)
    jobs.start(job, None)
    with pytest.raises(VendorTransientError, match="HTTP 503"):
        jobs.collect(job, MemoryResults())
    results = MemoryResults()
    stored = jobs.collect(job, results).result
    sendids = [r["sendid"] for r in json_lines(results.files[stored.s3_uri])]
    assert sendids == [f"303-{n}" for n in range(1, 26)]
    faults = [(c["details"]["pagination"]["next"], c.get("fault")) for c in autoresponder_calls(sandbox)]
    assert faults == [("0", None), ("0", None), ("10", "later_page_5xx"), ("0", None), ("10", None), ("20", None)]


def test_autoresponder_answers_wrapped_in_response_work_the_same(jobs, sandbox):
    configure(sandbox, wrap_response=True)
    records, summary, _ = run_autoresponder_job(jobs, autoresponder_job(autorespondername="Birthday", grouping="send"))
    assert len(records) == summary["records"] == 3


def test_sandbox_faults_reach_the_autoresponder_call_as_transient_errors(jobs, sandbox):
    configure(sandbox, http_5xx=1, fault_methods=["GetAutoresponderResults"])
    with pytest.raises(VendorTransientError, match="HTTP 503"):
        jobs.start(autoresponder_job(autoresponderid="301"), None)
    assert jobs.start(autoresponder_job(autoresponderid="301"), None).ready
