"""Every HTTP exchange with a vendor, measured: a `VendorCalls` count and a `VendorCallLatency` (by
vendor, call and status class, jobrelay.telemetry) and an X-Ray subsegment (jobrelay.tracing).

The shared vendor client (jobrelay.vendors.http.shared_http_client) sends through this transport,
around the call log's recorder; jobrelay.wiring says which Metrics it counts into (`count_into`), once
per container. A transport sees what event hooks cannot: a call that got no answer
(a timeout, a dropped connection), counted with status class `no_answer`. The vendor is the bound
job's (jobrelay.telemetry.bind_job); a call outside any job is not counted.

Latency is the time to the answer's headers (a streamed result download's body is read later).
"""

import json
import time

import httpx

from jobrelay import telemetry, tracing

# Where vendor calls are counted: set by jobrelay.wiring, None (nothing counted) until then and in tests
# that do not ask for it. Module state because the vendor client is one per container too.
_counted_into: telemetry.Metrics | None = None


def count_into(metrics: telemetry.Metrics | None) -> None:
    """Count every vendor call from now on into `metrics` (None: stop counting)."""
    global _counted_into
    _counted_into = metrics


class MeteredTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport):
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started_at, started = time.time(), time.perf_counter()
        status: int | None = None
        try:
            response = self._inner.handle_request(request)
            status = response.status_code
            return response
        finally:
            self._record(request, status, started_at, started)

    def _record(self, request: httpx.Request, status: int | None, started_at: float, started: float) -> None:
        job, metrics = telemetry.current_job(), _counted_into
        if job is None or metrics is None:
            return
        milliseconds = (time.perf_counter() - started) * 1000
        call = telemetry.call_name(request.method, request.url.path, _rpc_method(request))
        metrics.vendor_call(job.vendor, call, status, milliseconds)
        path = call.split(" ", 1)[1] if " " in call else request.url.path  # the redacted path when there is one
        url = f"{request.url.scheme}://{request.url.host}{path if path.startswith('/') else ''}"
        tracing.remote_call(f"{job.vendor} {call}", request.method, url, status, started_at, started_at + milliseconds / 1000)

    def close(self) -> None:
        self._inner.close()


def _rpc_method(request: httpx.Request) -> str | None:
    """The call an RPC-style JSON body names (Pinpointe's `requestmethod`), for small bodies only."""
    try:
        content = request.content
    except httpx.RequestNotRead:
        return None
    if not content or len(content) > 65536 or not content.lstrip().startswith(b"{"):
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    method = body.get("requestmethod") if isinstance(body, dict) else None
    return method if isinstance(method, str) else None
