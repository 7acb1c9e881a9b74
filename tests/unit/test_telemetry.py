"""What the services record (jobrelay.telemetry, with a MemorySink for the EMF adapter), how a vendor
call is named and classed, the job context the steps bind, and the light X-Ray subsegments."""

import json
import socket
from datetime import timedelta

import httpx
import pytest

from jobrelay import telemetry, tracing
from jobrelay.domain.errors import JobNotFound
from jobrelay.services.steps import StepInput
from jobrelay.telemetry import MemorySink, Metrics, call_name, status_class
from jobrelay.vendors import call_metrics
from jobrelay.vendors.call_metrics import MeteredTransport
from tests.unit.conftest import DONE


@pytest.fixture
def sink(world) -> MemorySink:
    sink = MemorySink()
    metrics = Metrics(sink)
    for service in (world.jobs, world.steps, world.sweeper, world.webhooks):
        service._metrics = metrics
    yield sink
    telemetry.reset()


def run(world, step, job_id, **extra):
    return world.steps.run(StepInput(step=step, job_id=job_id, **extra))


def dims(sink: MemorySink, name: str) -> list[dict[str, str]]:
    return [r.dimensions for r in sink.named(name)]


def test_a_job_s_life_is_counted_by_operation_and_status(world, sink):
    job_id = world.submit()
    run(world, "start", job_id)
    world.clock.advance(90)
    world.vendor.polls = [DONE]
    run(world, "poll", job_id)
    world.clock.advance(10)
    run(world, "collect", job_id)

    operation = {"operation": "pinpointe.list_subscribers"}
    assert dims(sink, "JobsSubmitted") == [operation]
    assert dims(sink, "JobsFinished") == [operation | {"status": "SUCCEEDED"}]
    assert sink.named("JobsFinished")[0].dimension_sets[1] == {"status": "SUCCEEDED"}  # the roll-up
    (duration,) = sink.named("JobDuration")
    assert (duration.unit, duration.value) == ("Seconds", 100)
    (waited,) = sink.named("VendorWait")
    assert waited.value == pytest.approx(90, abs=1)
    assert not sink.named("JobErrors")


def test_a_failed_job_counts_its_error_code_and_a_retried_fail_counts_once(world, sink):
    job_id = world.submit()
    run(world, "start", job_id)
    error = {"Error": "VendorRejected", "Cause": json.dumps({"errorMessage": "no such autoresponder"})}
    run(world, "fail", job_id, error=error)
    run(world, "fail", job_id, error=error)

    assert dims(sink, "JobsFinished") == [{"operation": "pinpointe.list_subscribers", "status": "FAILED"}]
    assert dims(sink, "JobErrors") == [{"code": "VENDOR_REJECTED"}]


def test_cancel_the_sweeper_and_callbacks_are_counted(world, sink):
    cancelled = world.submit()
    world.jobs.cancel(cancelled)
    stuck = world.submit()
    world.clock.advance(timedelta(hours=2).total_seconds())
    world.sweeper.sweep()
    run(world, "callback_failed", stuck, error={"Error": "CallbackDeliveryError"})

    assert [d["status"] for d in dims(sink, "JobsFinished")] == ["CANCELLED", "TIMED_OUT"]
    assert dims(sink, "SweeperSettled") == [{"code": "DEADLINE_EXCEEDED"}]
    assert dims(sink, "Callbacks") == [{"outcome": "given_up"}]


def test_a_callback_after_a_cancel_is_counted_too(world, sink, monkeypatch):
    # No state machine retries it: delivered, or given up at once (here nothing listens on the port).
    monkeypatch.setenv("ALLOW_LOCAL_CALLBACKS", "true")  # as the local stack, for a callback to this machine
    monkeypatch.setattr(world.settings, "allow_local_callbacks", True)
    job_id = world.submit(callback_url="http://127.0.0.1:9/jobrelay-callback")
    world.jobs.cancel(job_id)

    assert dims(sink, "Callbacks") == [{"outcome": "given_up"}]
    assert [e.event for e in world.store.timeline(job_id)][-1] == "callback_failed"


def test_webhooks_are_counted_by_outcome_and_an_unknown_vendor_is_other(world, sink):
    world.webhooks._metrics = Metrics(sink, vendors={"pinpointe"})
    with pytest.raises(JobNotFound):
        world.webhooks.receive("made-up-vendor", "job_nope", "t" * 43, b"{}")
    job_id = world.submit()
    with pytest.raises(JobNotFound):  # a wrong token
        world.webhooks.receive("pinpointe", job_id, "t" * 43, b"{}")

    assert dims(sink, "Webhooks") == [{"vendor": "other", "outcome": "refused"}, {"vendor": "pinpointe", "outcome": "refused"}]


def test_a_queued_job_reports_the_queue_depth(world, sink):
    world.vendor.max_concurrent_jobs = 1
    first, second = world.submit(), world.submit()
    run(world, "start", first)
    out = run(world, "start", second)

    assert out.next == "wait_slot"
    assert [(r.dimensions, r.value) for r in sink.named("QueueDepth")] == [({"vendor": "pinpointe"}, 1)]


def test_a_step_binds_its_job_for_logs_metrics_and_traces(world, sink):
    seen = []
    telemetry.on_bind(seen.append)
    telemetry.set_correlation_id("req-1")
    job_id = world.submit()
    telemetry.reset()
    run(world, "start", job_id)

    assert telemetry.current_job().job_id == job_id and telemetry.correlation_id() == "req-1"
    assert seen[-1] == {
        "job_id": job_id,
        "operation": "pinpointe.list_subscribers",
        "vendor": "pinpointe",
        "correlation_id": "req-1",
    }
    telemetry._listeners.remove(seen.append)


@pytest.mark.parametrize(
    ("status", "klass"),
    [(200, "2xx"), (204, "2xx"), (302, "3xx"), (404, "4xx"), (429, "throttled"), (503, "5xx"), (None, "no_answer")],
)
def test_status_classes(status, klass):
    assert status_class(status) == klass


@pytest.mark.parametrize(
    ("method", "path", "rpc", "name"),
    [
        ("POST", "/apijson.php", "GetListSubscribersAsync", "GetListSubscribersAsync"),
        ("post", "/contactLists/12/import/77/run", None, "POST /contactLists/{}/import/{}/run"),
        ("GET", "/Profiles/Async/client-a1/Import/123456/Exceptions", None, "GET /Profiles/Async/{}/Import/{}/Exceptions"),
        ("GET", "/exports/" + "x" * 64, None, "GET /exports/{}"),
        ("POST", "/apijson.php", "not a name!", "POST /apijson.php"),
    ],
)
def test_a_vendor_call_s_name_holds_no_id_or_token(method, path, rpc, name):
    assert call_name(method, path, rpc) == name


def test_the_meter_counts_answers_and_calls_that_got_none(world, monkeypatch):
    sink = MemorySink()
    job_id = world.submit()
    telemetry.bind_job(world.store.get(job_id))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/slow":
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(503 if request.url.path == "/down" else 200)

    monkeypatch.setattr(call_metrics, "_counted_into", Metrics(sink))  # as wiring's count_into does, undone after
    client = httpx.Client(transport=MeteredTransport(httpx.MockTransport(answer)))
    client.post("https://api.example.test/apijson.php", json={"requestmethod": "AsyncJobStatus", "usertoken": "s3cret"})
    client.get("https://api.example.test/down")
    with pytest.raises(httpx.ReadTimeout):
        client.get("https://api.example.test/slow")
    telemetry.reset()
    client.get("https://api.example.test/outside-a-job")

    assert [(d["vendor"], d["call"], d["status_class"]) for d in dims(sink, "VendorCalls")] == [
        ("pinpointe", "AsyncJobStatus", "2xx"),
        ("pinpointe", "GET /down", "5xx"),
        ("pinpointe", "GET /slow", "no_answer"),
    ]
    assert all(r.unit == "Milliseconds" and r.value >= 0 for r in sink.named("VendorCallLatency"))


def test_traces_are_subsegments_sent_to_the_daemon_only_when_sampled(monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(2)
        monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{daemon.getsockname()[1]}")
        monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
        monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0")
        with tracing.subsegment("## step poll", job_id="job_1") as skipped:
            assert skipped is None
        monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
        with tracing.subsegment("## step poll", job_id="job_1", step="poll") as segment:
            tracing.remote_call("pinpointe AsyncJobStatus", "POST", "https://api.example.test/apijson.php", 503, 1.0, 1.5)

        documents = [json.loads(daemon.recv(65536).split(b"\n", 1)[1]) for _ in range(2)]
    call, step = documents
    assert step["id"] == segment.id and step["parent_id"] == "53995c3f42cd8ad8" and step["type"] == "subsegment"
    assert step["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert step["annotations"] == {"job_id": "job_1", "step": "poll"}
    assert call["parent_id"] == segment.id and call["namespace"] == "remote" and call["fault"] is True
    assert call["http"] == {
        "request": {"method": "POST", "url": "https://api.example.test/apijson.php"},
        "response": {"status": 503},
    }
