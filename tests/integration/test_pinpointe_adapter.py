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
from jobrelay.domain.errors import (
    VendorJobFailed,
    VendorOutcomeUnknown,
    VendorProtocolError,
    VendorRejected,
    VendorTransientError,
    VendorUnavailable,
)
from jobrelay.domain.job import Job, StoredFile
from jobrelay.domain.request_retries import RequestRetry
from jobrelay.domain.vendor_outcomes import CollectOutcome, PollOutcome, VendorState
from jobrelay.domain.vendor_ref import VendorRef
from jobrelay.vendors.pinpointe.adapter import (
    AutoresponderResultsRef,
    ExportRef,
    PinpointeAccount,
    PinpointeAutoresponderResults,
    PinpointeExports,
    parse_webhook,
)
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
        self.chunk_sizes: list[int] = []  # of the first file stored (the result itself)

    def put_stream(self, job_id: str, name: str, chunks: Iterable[bytes], content_type: str) -> StoredFile:
        digest, size, kept = hashlib.sha256(), 0, bytearray()
        first = not self.files
        for chunk in chunks:
            if first:
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

    def named(self, name: str) -> bytes:
        (data,) = [data for uri, data in self.files.items() if uri.endswith(f"/{name}")]
        return data

    def summary(self) -> dict:
        return json.loads(self.named("summary.json"))


@pytest.fixture
def sandbox() -> Iterator[PinpointeSandbox]:
    with PinpointeSandbox(job_seconds=JOB_SECONDS, records=25) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as client:
        yield client


class Waits(list[float]):
    """The retries' backoff, recorded instead of slept (domain/request_retries.py)."""

    def retry(self) -> RequestRetry:
        return RequestRetry(sleep=self.append)


@pytest.fixture
def waits() -> Waits:
    return Waits()


def make_exports(
    sandbox: PinpointeSandbox, http: httpx.Client, *, grace: int = 60, now=None, waits: Waits | None = None, **secret
) -> PinpointeExports:
    account = PinpointeAccount.model_validate({**sandbox.account_secret(), **secret})
    clock = {"now": now} if now else {}
    retry = (waits if waits is not None else Waits()).retry()
    return PinpointeExports(account, http=http, not_found_grace_seconds=grace, retry=retry, **clock)


@pytest.fixture
def exports(sandbox, http, waits) -> PinpointeExports:
    return make_exports(sandbox, http, waits=waits)


@pytest.fixture
def reads(sandbox, http, waits) -> PinpointeAutoresponderResults:
    account = PinpointeAccount.model_validate(sandbox.account_secret())
    return PinpointeAutoresponderResults(account, http=http, not_found_grace_seconds=60, retry=waits.retry())


def new_job(operation: str = "pinpointe.list_subscribers", params: dict | None = None) -> Job:
    return Job(
        job_id=f"job-{time.monotonic_ns()}",
        operation=operation,
        vendor="pinpointe",
        deadline_at=datetime.now(UTC) + timedelta(hours=1),
        params=params if params is not None else {"list": ["12"]},
    )


def carrying(job: Job, ref: VendorRef) -> Job:
    """The job storing `ref` as the steps do: its public fields, and its secret ones apart."""
    return job.model_copy(update={"vendor_ref": ref.shown(), "vendor_secrets": ref.secrets()})


def started(exports: PinpointeExports, job: Job, webhook_url: str = HOOK) -> Job:
    return carrying(job, exports.start(job, webhook_url).vendor_ref)


def poll_until_ended(exports: PinpointeExports, job: Job, timeout: float = 5.0) -> tuple[Job, PollOutcome]:
    deadline = time.monotonic() + timeout
    while (outcome := exports.poll(job)).state is VendorState.RUNNING:
        assert time.monotonic() < deadline, f"still running: {outcome}"
        time.sleep(0.03)
    return (carrying(job, outcome.vendor_ref) if outcome.vendor_ref else job), outcome


def result_link(job: Job) -> str:
    """The result link AsyncJobStatus gave: a secret of the job, never in the vendor_ref it shows."""
    assert "result_url" not in job.vendor_ref
    link = ExportRef.of(job).result_url
    assert link is not None
    return link.get_secret_value()


def configure(sandbox: PinpointeSandbox, **changes) -> None:
    sandbox.configure(changes)


# --- the four operations ---------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_operation_runs_from_start_to_stored_result(exports, sandbox, http, operation):
    params, records_key = OPERATIONS[operation]
    job = started(exports, new_job(operation, params))
    assert job.vendor_ref["jobid"].isdigit()

    job, outcome = poll_until_ended(exports, job)
    assert outcome.state is VendorState.DONE and outcome.raw_status == "complete"

    results = MemoryResults()
    collected = exports.collect(job, results)
    direct = http.get(result_link(job)).content
    stored = results.files[collected.result.s3_uri]
    assert collected.result.sha256 == hashlib.sha256(direct).hexdigest() == hashlib.sha256(stored).hexdigest()
    assert collected.result.size == len(direct) and collected.result.files[0].name == "result.json"
    assert json.loads(direct)["count"] == 25 and len(json.loads(direct)[records_key]) == 25


def test_params_reach_pinpointe_in_its_wire_forms(exports, sandbox, http):
    for operation, (params, _) in OPERATIONS.items():
        started(exports, new_job(operation, params))
    sent = {job["requestmethod"]: job["details"] for job in http.get(f"{sandbox.base_url}/_sandbox/jobs").json()}
    notify = {"type": "webhook", "value": HOOK}
    assert sent["GetNewsletterContactDataSummaryAsync"] == {
        "stat": "4711",
        "startdate": "20250301",
        "enddate": "20250308",
        "notify": notify,
    }
    assert sent["GetTagSubscribersAsync"] == {
        "tag": ["7"],
        "extag": ["8"],
        "status": "any",
        "include_membership": "false",
        "emailonly": "true",
        "notify": notify,
    }
    assert sent["GetListSubscribersAsync"]["list"] == ["12", "13"]


def test_wrapped_answers_work_the_same(exports, sandbox):
    configure(sandbox, wrap_response=True)
    job, outcome = poll_until_ended(exports, started(exports, new_job()))
    assert outcome.state is VendorState.DONE
    assert exports.collect(job, MemoryResults()).result.size > 0


@pytest.mark.parametrize("content_length", [False, True])
def test_a_large_result_arrives_in_bounded_chunks(exports, sandbox, content_length):
    configure(sandbox, records=12_000, file_content_length=content_length)  # about 2.5 MiB
    job, _ = poll_until_ended(exports, started(exports, new_job(params={"list": ["1"], "customfields": ["all"]})))
    results = MemoryResults()
    stored = exports.collect(job, results).result
    assert len(results.chunk_sizes) >= 3 and max(results.chunk_sizes) <= DOWNLOAD_CHUNK_BYTES
    assert stored.size == sum(results.chunk_sizes) > 2 * DOWNLOAD_CHUNK_BYTES
    assert json.loads(results.files[stored.s3_uri])["count"] == 12_000


# --- vendor outcomes and faults ------------------------------------------------------------------------


def test_a_failed_job_is_reported_failed_with_pinpointe_s_reason(exports, sandbox):
    configure(sandbox, fail_jobs="Export quota exceeded")
    job, outcome = poll_until_ended(exports, started(exports, new_job()))
    assert outcome.state is VendorState.FAILED
    assert (outcome.raw_status, outcome.message) == ("failed", "Export quota exceeded")
    with pytest.raises(VendorProtocolError, match="no result link"):
        exports.collect(job, MemoryResults())


@pytest.mark.parametrize("fault_methods", [None, ["GetListSubscribersAsync"]])
def test_503_on_start_is_transient(exports, sandbox, fault_methods):
    configure(sandbox, http_5xx=1, fault_methods=fault_methods)
    with pytest.raises(VendorTransientError, match="HTTP 503"):
        exports.start(new_job(), HOOK)
    assert exports.start(new_job(), HOOK).vendor_ref.jobid  # the retry gets through


def test_503_on_poll_is_transient(exports, sandbox, waits):
    """A poll is a step of its own: the state machine retries it, not the adapter."""
    job = started(exports, new_job())
    configure(sandbox, http_5xx=1, fault_methods=["AsyncJobStatus"])
    with pytest.raises(VendorTransientError):
        exports.poll(job)
    assert exports.poll(job).state in (VendorState.RUNNING, VendorState.DONE) and waits == []


def test_a_hanging_poll_times_out_as_transient(sandbox, http):
    exports = make_exports(sandbox, http, read_timeout_seconds=0.2, connect_timeout_seconds=0.2)
    job = started(exports, new_job())
    configure(sandbox, timeouts=1, timeout_hang_seconds=3, fault_methods=["AsyncJobStatus"])
    started_at = time.monotonic()
    with pytest.raises(VendorTransientError, match="timed out"):
        exports.poll(job)
    assert time.monotonic() - started_at < 1.5


def test_a_start_that_times_out_is_an_unknown_outcome_never_sent_again(sandbox, http):
    """The export was started (the sandbox hangs, then does the work): a second start would run it twice."""
    exports = make_exports(sandbox, http, read_timeout_seconds=0.2, connect_timeout_seconds=0.2)
    configure(sandbox, timeouts=1, timeout_hang_seconds=0.5)
    with pytest.raises(VendorOutcomeUnknown, match="may have started an export .* not sent again"):
        exports.start(new_job(), HOOK)
    time.sleep(0.5)
    assert len(starts(sandbox)) == 1 and len(http.get(f"{sandbox.base_url}/_sandbox/jobs").json()) == 1


def test_a_start_pinpointe_never_received_is_transient(sandbox, http):
    exports = make_exports(sandbox, http, connect_timeout_seconds=0.2)
    sandbox.stop()  # nothing listens: the request never left, so sending it again is safe
    with pytest.raises(VendorTransientError) as raised:
        exports.start(new_job(), HOOK)
    assert not isinstance(raised.value, VendorOutcomeUnknown)


def test_a_malformed_answer_is_a_protocol_error(exports, sandbox):
    job = started(exports, new_job())
    configure(sandbox, malformed=1)
    with pytest.raises(VendorProtocolError, match="not a JSON object"):
        exports.poll(job)


def test_bad_credentials_are_rejected(sandbox, http):
    exports = make_exports(sandbox, http, usertoken="not-the-token")
    with pytest.raises(VendorRejected, match="username and usertoken") as raised:
        exports.start(new_job(), HOOK)
    assert "not-the-token" not in str(raised.value)


def test_an_expired_token_is_rejected_on_poll(exports, sandbox):
    job = started(exports, new_job())
    configure(sandbox, expired_token=True)
    with pytest.raises(VendorRejected):
        exports.poll(job)


def test_an_unlisted_job_runs_on_within_the_grace_period_then_fails(sandbox, http):
    configure(sandbox, not_visible_seconds=30)
    now = datetime.now(UTC)
    early = make_exports(sandbox, http, grace=60, now=lambda: now)
    job = started(early, new_job())
    outcome = early.poll(job)
    jobid = job.vendor_ref["jobid"]
    assert outcome.state is VendorState.RUNNING and f"does not list job {jobid} yet" in outcome.progress.note

    late = make_exports(sandbox, http, grace=60, now=lambda: now + timedelta(seconds=61))
    with pytest.raises(VendorJobFailed, match=f"no longer knows job {jobid}"):
        late.poll(job)


def test_a_result_host_off_the_allowlist_is_not_followed(sandbox, http):
    exports = make_exports(sandbox, http, result_hosts=["*.mypinpointe.com"])
    job, _ = poll_until_ended(exports, started(exports, new_job()))
    with pytest.raises(VendorProtocolError, match="host '127.0.0.1'"):
        exports.collect(job, MemoryResults())
    assert not [c for c in sandbox.calls() if c["requestmethod"] == "ResultDownload"]


def downloads(sandbox: PinpointeSandbox) -> list[dict]:
    return [c for c in sandbox.calls() if c["requestmethod"] == "ResultDownload"]


def test_a_503_on_download_is_asked_again_and_the_file_stored(exports, sandbox, waits):
    job, _ = poll_until_ended(exports, started(exports, new_job()))
    configure(sandbox, file_5xx=1)
    results, outcome = collected(exports, job)
    assert outcome.reconciliation.reconciled and len(waits) == 1
    assert [c.get("fault") for c in downloads(sandbox)] == ["file_5xx", None]


def test_an_unreachable_result_link_ends_as_an_unavailable_vendor(exports, sandbox, waits):
    job, _ = poll_until_ended(exports, started(exports, new_job()))
    sandbox.stop()  # the link now points at a closed port
    with pytest.raises(VendorUnavailable, match="result download failed 6 times in a row"):
        exports.collect(job, MemoryResults())


@pytest.mark.parametrize("ranges", [True, False], ids=["ranges", "no-ranges"])
@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
def test_a_download_cut_again_and_again_goes_on_where_it_broke(exports, sandbox, waits, ranges, length):
    """Each cut brings bytes, so the budget is given back: seven cuts (more than six attempts) and the
    file arrives whole, each byte stored once; a server with ranges is asked for the rest only."""
    configure(sandbox, records=3000, file_content_length=length, file_ranges=ranges)
    job, _ = poll_until_ended(exports, started(exports, new_job()))
    whole = httpx.get(ExportRef.of(job).result_url.get_secret_value()).content
    configure(sandbox, file_cuts=7, file_cut_every_bytes=len(whole) // 10)

    results, outcome = collected(exports, job)

    assert results.named("result.json") == whole
    assert outcome.reconciliation.reconciled and outcome.result.size == len(whole) and len(waits) == 7
    asked = [c.get("range") for c in downloads(sandbox)][-8:]
    if ranges:
        assert asked[0] is None and all(r and r.startswith("bytes=") and r != "bytes=0-" for r in asked[1:])
        assert [c.get("http_status") for c in downloads(sandbox)][-7:] == [206] * 7
    else:
        assert [c.get("http_status") for c in downloads(sandbox)][-8:] == [200] * 8


def test_a_resumed_download_of_another_length_is_refused(exports, sandbox, waits):
    configure(sandbox, records=3000, file_content_length=True)
    job, _ = poll_until_ended(exports, started(exports, new_job()))
    configure(sandbox, file_cuts=1, file_cut_every_bytes=50_000, file_grows_after_cut=True)
    with pytest.raises(VendorProtocolError, match="changed while it was downloaded"):
        exports.collect(job, MemoryResults())


# --- webhooks -------------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


def hook_url(receiver: RecordingServer) -> str:
    return f"{receiver.base_url}/webhooks/pinpointe/job-1/token"


def test_the_webhook_notice_arrives_and_its_link_can_be_collected(exports, receiver):
    job = started(exports, new_job(), hook_url(receiver))
    (delivery,) = receiver.wait_for(1)
    assert delivery.path == "/webhooks/pinpointe/job-1/token"
    notice = parse_webhook(delivery.body)
    assert notice.jobid == job.vendor_ref["jobid"] and notice.status == "complete"

    # What the webhook receiver stores, collected without a poll in between.
    assert ExportRef.of(job).result_url is None
    collected = exports.collect(job.model_copy(update={"webhook_notice": notice}), MemoryResults())
    assert collected.result.size > 0


def test_a_duplicated_webhook_arrives_twice(exports, sandbox, receiver):
    configure(sandbox, duplicate_webhook=True)
    started(exports, new_job(), hook_url(receiver))
    first, second = receiver.wait_for(2)
    assert parse_webhook(first.body) == parse_webhook(second.body)


def test_a_dropped_webhook_leaves_polling_to_find_the_end(exports, sandbox, receiver):
    configure(sandbox, drop_webhook=True)
    job = started(exports, new_job(), hook_url(receiver))
    job, outcome = poll_until_ended(exports, job)
    time.sleep(0.1)
    assert outcome.state is VendorState.DONE and receiver.received() == []


# --- GetAutoresponderResults: synchronous, every page ---------------------------------------------------

AUTORESPONDERS = "pinpointe.autoresponder_results"


def autoresponder_job(**params) -> Job:
    return new_job(AUTORESPONDERS, params)


def json_lines(data: bytes) -> list[dict]:
    assert data == b"" or data.endswith(b"\n")
    return [json.loads(line) for line in data.decode().split("\n")[:-1]]


def run_autoresponder_job(reads: PinpointeAutoresponderResults, job: Job) -> tuple[list[dict], dict, bytes]:
    """Check then collect at once (a paged read has nothing to wait for), as the state machine does:
    the records, summary.json and the records file as stored."""
    outcome = reads.check(job)
    assert outcome.vendor_ref == AutoresponderResultsRef(requesttype="Autoresponders", requestmethod="GetAutoresponderResults")
    results = MemoryResults()
    collected = reads.collect(carrying(job, outcome.vendor_ref), results).result
    records_file, summary_file = collected.files
    assert collected.s3_uri == records_file.s3_uri and records_file.content_type == "application/x-ndjson"
    assert collected.sha256 == hashlib.sha256(results.files[collected.s3_uri]).hexdigest()
    stored = results.files[collected.s3_uri]
    return json_lines(stored), json.loads(results.files[summary_file.s3_uri]), stored


def autoresponder_calls(sandbox: PinpointeSandbox) -> list[dict]:
    return [c for c in sandbox.calls() if c["requestmethod"] == "GetAutoresponderResults"]


def test_autoresponder_results_across_several_pages_arrive_once_each_in_order(reads, sandbox):
    configure(sandbox, autoresponder_sends=2500)
    records, summary, _ = run_autoresponder_job(
        reads, autoresponder_job(autorespondername="Win-back", grouping="send", limit=1000)
    )
    assert [r["sendid"] for r in records] == [f"302-{n}" for n in range(1, 2501)]
    assert {r["autorespondername"] for r in records} == {"Win-back"}
    assert (summary["records"], summary["pages"], summary["page_limit"]) == (2500, 3, 1000)
    pages = [(c["next"], c["records"]) for c in autoresponder_calls(sandbox)]
    assert pages == [("0", 1), ("0", 1000), ("1000", 1000), ("2000", 500)]  # the name check, then 3 pages


def test_autoresponder_by_id_with_each_grouping(reads, sandbox):
    per_send, _, _ = run_autoresponder_job(reads, autoresponder_job(autoresponderid=301, grouping="send"))
    (aggregated,), summary, _ = run_autoresponder_job(reads, autoresponder_job(autoresponderid="301"))
    assert [r["sendid"] for r in per_send] == ["301-1", "301-2", "301-3"]
    assert aggregated["autoresponderid"] == "301" and aggregated["sends"] == "3"
    assert int(aggregated["emailopens"]) == sum(int(r["emailopens"]) for r in per_send)
    reconciliation = summary.pop("reconciliation")
    assert "no count" in summary.pop("note")
    assert summary == {
        "operation": AUTORESPONDERS,
        "autoresponderid": "301",
        "grouping": "autoresponder",
        "records": 1,
        "pages": 1,
        "page_limit": 1000,
        "file": "autoresponder_results.jsonl",
    }
    assert reconciliation["reconciled"] is None and reconciliation["shortfall"] == []  # no count to check against
    sent = [c["details"] for c in autoresponder_calls(sandbox)]
    assert {d["grouping"] for d in sent[:2]} == {"send"} and {d["grouping"] for d in sent[2:]} == {"autoresponder"}
    assert all(d["autoresponderid"] == "301" and "autorespondername" not in d for d in sent)


def test_all_autoresponders_are_read_without_a_check_call(reads, sandbox):
    configure(sandbox, autoresponders={str(n): f"Drip {n}" for n in range(1, 8)})
    records, summary, _ = run_autoresponder_job(reads, autoresponder_job(all=True, limit=3))
    assert [r["autorespondername"] for r in records] == [f"Drip {n}" for n in range(1, 8)]
    assert summary["pages"] == 3 and summary["all"] is True
    assert [c["details"] for c in autoresponder_calls(sandbox)][0] == {
        "grouping": "autoresponder",
        "pagination": {"limit": "3", "next": "0"},
    }


@pytest.mark.parametrize(
    ("params", "named"),
    [({"autorespondername": "Nope"}, "autorespondername 'Nope'"), ({"autoresponderid": "999"}, "autoresponderid '999'")],
)
def test_an_unknown_autoresponder_is_rejected_at_the_check_with_pinpointe_s_reason(reads, sandbox, params, named):
    with pytest.raises(VendorRejected, match=f"{named}: Autoresponder not found"):
        reads.check(autoresponder_job(**params))


@pytest.mark.parametrize(
    ("empty", "note"), [(True, None), ("No statistical information is available", "No statistical information is available")]
)
def test_no_autoresponder_results_is_an_empty_file_and_a_zero_count(reads, sandbox, empty, note):
    configure(sandbox, autoresponder_empty=empty)
    records, summary, stored = run_autoresponder_job(reads, autoresponder_job(autorespondername="Welcome series"))
    assert records == [] and stored == b""
    assert summary["records"] == 0 and summary.get("vendor_note") == note


def test_a_5xx_on_page_two_asks_for_page_two_again_and_goes_on(reads, sandbox, waits):
    configure(sandbox, autoresponder_sends=25, later_page_5xx=1)
    job = autoresponder_job(autoresponderid="303", grouping="send", limit=10)
    job = carrying(job, reads.check(job).vendor_ref)
    results = MemoryResults()
    stored = reads.collect(job, results).result
    sendids = [r["sendid"] for r in json_lines(results.files[stored.s3_uri])]
    assert sendids == [f"303-{n}" for n in range(1, 26)]
    faults = [(c["details"]["pagination"]["next"], c.get("fault")) for c in autoresponder_calls(sandbox)]
    # The check's page, then page one, page two refused and asked again, page three: never from the start.
    assert faults == [("0", None), ("0", None), ("10", "later_page_5xx"), ("10", None), ("20", None)]
    assert len(waits) == 1


def test_a_5xx_on_every_other_page_never_fails_the_read(reads, sandbox, waits):
    """More 503s than one request's budget, spread over the pages: each page read gives it back."""
    configure(sandbox, autoresponder_sends=95, later_page_5xx=9, fault_spacing=1)
    job = autoresponder_job(autoresponderid="303", grouping="send", limit=10)
    job = carrying(job, reads.check(job).vendor_ref)
    results = MemoryResults()
    stored = reads.collect(job, results).result
    sendids = [r["sendid"] for r in json_lines(results.files[stored.s3_uri])]
    assert sendids == [f"303-{n}" for n in range(1, 96)] and len(waits) == 9


def test_autoresponder_answers_wrapped_in_response_work_the_same(reads, sandbox):
    configure(sandbox, wrap_response=True)
    records, summary, _ = run_autoresponder_job(reads, autoresponder_job(autorespondername="Birthday", grouping="send"))
    assert len(records) == summary["records"] == 3


def test_sandbox_faults_reach_the_autoresponder_call_and_are_retried(reads, sandbox, waits):
    configure(sandbox, http_5xx=1, fault_methods=["GetAutoresponderResults"])
    assert reads.check(autoresponder_job(autoresponderid="301")).vendor_ref.requestmethod == "GetAutoresponderResults"
    assert len(waits) == 1


# --- doc-consistent shapes the adapter must read alike (issue 9: no silent shortfall) ---------------------


def starts(sandbox: PinpointeSandbox) -> list[dict]:
    return [c for c in sandbox.calls() if c["requestmethod"] in {"GetListSubscribersAsync", "GetTagSubscribersAsync"}]


def collected(exports: PinpointeExports, job: Job) -> tuple[MemoryResults, CollectOutcome]:
    results = MemoryResults()
    return results, exports.collect(job, results)


def test_a_job_id_under_jobid_with_a_capital_starts_once(exports, sandbox):
    configure(sandbox, start_jobid_key="Jobid")
    job = started(exports, new_job())
    (start,) = starts(sandbox)
    assert job.vendor_ref["jobid"] == start["jobid"]
    job, outcome = poll_until_ended(exports, job)
    assert outcome.state is VendorState.DONE and not collected(exports, job)[1].partial


@pytest.mark.parametrize(("answer", "why"), [("no_jobid", "carries no job id"), ("not_json", "not a JSON object")])
def test_an_unreadable_start_answer_is_an_unknown_outcome_with_a_redacted_excerpt(exports, sandbox, answer, why):
    configure(sandbox, start_answer=answer)
    with pytest.raises(VendorOutcomeUnknown, match=f"may have started an export.*{why}.*not sent again") as raised:
        exports.start(new_job(), HOOK)
    assert raised.value.code == "VENDOR_PROTOCOL" and raised.value.answer
    assert sandbox.account_secret()["usertoken"] not in raised.value.answer + str(raised.value)
    if answer == "not_json":
        assert "Cannot modify header information" in raised.value.answer and "usertoken=***" in raised.value.answer
    assert len(starts(sandbox)) == 1


def test_a_malformed_start_answer_is_an_unknown_outcome_but_a_503_is_retried(exports, sandbox):
    configure(sandbox, malformed=1)
    with pytest.raises(VendorOutcomeUnknown):
        exports.start(new_job(), HOOK)
    configure(sandbox, http_5xx=1)
    with pytest.raises(VendorTransientError) as raised:
        exports.start(new_job(), HOOK)
    assert not isinstance(raised.value, VendorOutcomeUnknown)


@pytest.mark.parametrize("shape", ["list", "keyed_by_id", "single"])
@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("lower", {}),
        ("upper", {}),
        ("title", {"complete": "Completed"}),
        ("lower", {"complete": "Done", "processing": "running"}),
        ("upper", {"complete": "finished"}),
        ("title", {"complete": "success"}),
    ],
)
def test_status_answers_in_every_shape_and_wording_finish_the_job(exports, sandbox, shape, case, words):
    configure(sandbox, status_shape=shape, status_word_case=case, status_words=words, wrap_response=shape == "single")
    job, outcome = poll_until_ended(exports, started(exports, new_job()))
    assert outcome.state is VendorState.DONE and outcome.unknown_status_answer is None
    assert result_link(job).endswith(f"/files/{job.vendor_ref['jobid']}.json")
    results, outcome = collected(exports, job)
    assert not outcome.partial and results.summary()["records"] == 25


def test_an_unknown_status_word_keeps_the_job_running_and_keeps_the_entry(exports, sandbox):
    configure(sandbox, job_seconds=0.6, status_words={"waiting": "mulling it over", "processing": "mulling it over"})
    job = started(exports, new_job())
    outcome = exports.poll(job)
    assert outcome.state is VendorState.RUNNING and outcome.raw_status == "mulling it over"
    assert "mulling it over" in outcome.unknown_status_answer and job.vendor_ref["jobid"] in outcome.unknown_status_answer
    _, ended = poll_until_ended(exports, job)
    assert ended.state is VendorState.DONE and ended.unknown_status_answer is None


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("shape", ["default", "keyed_by_id", "wrapped", "capitalised"])
def test_result_files_in_every_shape_are_stored_unchanged_and_reconciled(exports, sandbox, http, operation, shape):
    configure(sandbox, result_shape=shape, status_count=True)
    params, _ = OPERATIONS[operation]
    job, _ = poll_until_ended(exports, started(exports, new_job(operation, params)))
    assert job.vendor_ref["status_count"] == ExportRef.of(job).status_count == 25
    results, outcome = collected(exports, job)
    assert results.named("result.json") == http.get(result_link(job)).content  # byte for byte
    assert [f.name for f in outcome.result.files] == ["result.json", "summary.json"]
    summary = results.summary()
    assert (summary["records"], summary["vendor_count"]) == (25, 25)
    assert summary["records_shape"] == ("keyed_by_id" if shape == "keyed_by_id" else "list")
    reconciliation = summary["reconciliation"]
    assert reconciliation["reconciled"] is True and len(reconciliation["checks"]) == 2
    assert not outcome.partial and outcome.reconciliation.model_dump(mode="json") == reconciliation


def test_a_result_file_whose_count_claims_more_than_it_holds_is_partial_and_explained(exports, sandbox):
    configure(sandbox, result_count_offset=4, records=10)
    job, _ = poll_until_ended(exports, started(exports, new_job()))
    results, outcome = collected(exports, job)
    assert outcome.partial and outcome.reconciliation.reconciled is False
    assert outcome.reconciliation.shortfall == ["result.json holds 10 records but the file's own count says 14: 4 missing"]
    assert results.summary()["reconciliation"]["shortfall"] == outcome.reconciliation.shortfall


def test_a_result_file_that_is_a_bare_list_has_no_count_and_still_succeeds(exports, sandbox):
    configure(sandbox, result_shape="bare_list", records=7)
    job, _ = poll_until_ended(exports, started(exports, new_job()))
    results, outcome = collected(exports, job)
    assert not outcome.partial and outcome.reconciliation.reconciled is None
    assert (results.summary()["records"], results.summary()["vendor_count"]) == (7, None)


@pytest.mark.parametrize("shape", ["keyed_by_id", "single"])
def test_autoresponder_records_keyed_by_id_or_single_are_one_record_per_line(reads, sandbox, shape):
    configure(sandbox, autoresponder_sends=4, autoresponder_count="total")
    expected, _, _ = run_autoresponder_job(reads, autoresponder_job(all=True, grouping="send", limit=5))
    configure(sandbox, autoresponder_records_shape=shape, autoresponder_page_cap=1 if shape == "single" else None)
    records, summary, stored = run_autoresponder_job(reads, autoresponder_job(all=True, grouping="send", limit=5))
    assert records == expected and len(stored.splitlines()) == len(expected) == 12
    assert summary["reconciliation"]["reconciled"] is True and summary["reconciliation"]["vendor"] == {"total": 12}


@pytest.mark.parametrize("count", ["total", "page", "none"])
def test_autoresponder_pages_capped_below_the_limit_lose_nothing(reads, sandbox, count):
    configure(sandbox, autoresponder_sends=25, autoresponder_page_cap=7, autoresponder_count=count)
    records, summary, _ = run_autoresponder_job(reads, autoresponder_job(autoresponderid="302", grouping="send", limit=10))
    assert [r["sendid"] for r in records] == [f"302-{n}" for n in range(1, 26)]
    nexts = [c["details"]["pagination"]["next"] for c in autoresponder_calls(sandbox)][1:]  # after the check
    assert nexts == ["0", "7", "14", "21"]  # each page after the records actually sent
    assert summary["reconciliation"]["reconciled"] is (None if count == "none" else True)
    assert summary["reconciliation"]["shortfall"] == []


def test_a_next_counted_from_the_limit_not_the_records_sent_is_partial_and_explained(reads, sandbox):
    configure(sandbox, autoresponder_sends=25, autoresponder_page_cap=7, autoresponder_next_lies=True)
    job = autoresponder_job(autoresponderid="302", grouping="send", limit=10)
    job = carrying(job, reads.check(job).vendor_ref)
    results = MemoryResults()
    outcome = reads.collect(job, results)
    sendids = [r["sendid"] for r in json_lines(results.named("autoresponder_results.jsonl"))]
    assert sendids == [f"302-{n}" for n in range(1, 26)]  # read on from the records sent: nothing skipped
    assert outcome.partial
    (reason,) = outcome.reconciliation.shortfall
    assert "pagination.next said the next page starts at record 10, but it had sent 7 records" in reason
    assert results.summary()["reconciliation"]["reconciled"] is False
