"""The vendor call log's recorder: an httpx transport that every vendor request passes through (the
shared client's, jobrelay.vendors.http), below redirects and auth flows, so each request as it goes on
the wire is seen once, the OAuth token request and its retries included.

Inside a job's recording (jobrelay.services.vendor_calls) each exchange becomes a VendorCall when its
answer's body has been read (or the exchange failed): method, host, path and query (secrets masked),
status, latency, redacted headers, and each body as a summary: size, SHA-256 and a bounded, redacted
excerpt. A body up to WHOLE_BODY_BYTES is excerpted whole (JSON masked key by key); a larger one (a
result file, a stage batch) only from its first HEAD_BYTES, and a streamed answer is hashed and counted
as it passes, never held: the download streams on at the same constant memory.
"""

import hashlib
import logging
import time
from collections.abc import Iterator

import httpx

from jobrelay.domain.vendor_calls import BodySummary, VendorCall
from jobrelay.services.vendor_calls import Recording, current, keep
from jobrelay.vendors.redaction import excerpt, excerpt_of_head, redact_headers, redact_path, redact_query

log = logging.getLogger(__name__)

WHOLE_BODY_BYTES = 64 * 1024
HEAD_BYTES = 4 * 1024


class RecordingTransport(httpx.BaseTransport):
    """Sends through `inner`; files every exchange made inside a recording in the job's log."""

    def __init__(self, inner: httpx.BaseTransport):
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        into = current()
        if into is None:
            return self._inner.handle_request(request)
        try:
            exchange = _Exchange(into, request)
        except Exception as exc:  # the log is an aid: the request goes out unlogged
            log.warning("a vendor call of job %s is not logged (%s)", into.job_id, type(exc).__name__)
            return self._inner.handle_request(request)
        try:
            response = self._inner.handle_request(request)
        except Exception as exc:
            exchange.failed(exc)
            raise
        exchange.answered(response)
        if response.is_stream_consumed:  # an answer made whole already (a mock transport's)
            exchange.body_read(_summary(response.content, response.headers.get("content-type")), None)
        elif isinstance(response.stream, httpx.SyncByteStream):  # always, from a sync transport
            response.stream = _RecordedBody(response.stream, exchange)
        return response

    def close(self) -> None:
        self._inner.close()


class _Exchange:
    def __init__(self, into: Recording, request: httpx.Request):
        self._into = into
        self._started = time.monotonic()
        url = request.url
        self.call = VendorCall(
            at=into.now(),
            direction="out",
            method=request.method,
            host=url.host or None,
            path=redact_path(url.path),
            query=redact_query(url.query.decode("ascii", errors="replace")) or None,
            request_headers=redact_headers(request.headers.multi_items()),
            request=_request_body(request),
        )
        self._kept = False

    def _elapsed_ms(self) -> float:
        return round((time.monotonic() - self._started) * 1000, 1)

    def failed(self, exc: Exception) -> None:
        self.call.error = type(exc).__name__
        self.call.duration_ms = self._elapsed_ms()
        self._keep()

    def answered(self, response: httpx.Response) -> None:
        self.call.status = response.status_code
        self.call.latency_ms = self._elapsed_ms()
        self.call.response_headers = redact_headers(response.headers.multi_items())

    def body_read(self, summary: BodySummary, error: Exception | None) -> None:
        self.call.response = summary
        self.call.duration_ms = self._elapsed_ms()
        if error is not None:
            self.call.error = type(error).__name__
        self._keep()

    def _keep(self) -> None:
        if not self._kept:
            self._kept = True
            keep(self.call, self._into)


class _RecordedBody(httpx.SyncByteStream):
    """The answer's body as the client reads it, counted, hashed and its head kept on the way."""

    def __init__(self, inner: httpx.SyncByteStream, exchange: _Exchange):
        self._inner = inner
        self._exchange = exchange
        self._digest = hashlib.sha256()
        self._size = 0
        self._head = bytearray()
        self._ended = False
        self._error: Exception | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._inner:
                self._digest.update(chunk)
                self._size += len(chunk)
                if len(self._head) <= WHOLE_BODY_BYTES:
                    self._head += chunk[: WHOLE_BODY_BYTES + 1 - len(self._head)]
                yield chunk
        except Exception as exc:
            self._error = exc
            raise
        self._ended = True

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._file()

    def _file(self) -> None:
        try:
            headers = self._exchange.call.response_headers
            whole = self._ended and self._size <= WHOLE_BODY_BYTES
            head = bytes(self._head) if whole else bytes(self._head[:HEAD_BYTES])
            summary = BodySummary(
                size=self._size,
                sha256=self._digest.hexdigest() if self._ended else None,
                content_type=headers.get("content-type"),
                excerpt=excerpt(head) if whole else excerpt_of_head(head, self._size if self._ended else None),
                complete=self._ended,
            )
        except Exception as exc:  # the log is an aid: the answer is read on, unlogged
            log.warning("a vendor answer's body was not summarised (%s)", type(exc).__name__)
            return
        self._exchange.body_read(summary, self._error)


def _request_body(request: httpx.Request) -> BodySummary | None:
    content_type = request.headers.get("content-type")
    try:
        content = request.content
    except httpx.RequestNotRead:  # a streamed upload: not read here (it would be consumed)
        return BodySummary(size=None, content_type=content_type, excerpt="", complete=False)
    if not content:
        return None
    return _summary(content, content_type)


def _summary(content: bytes, content_type: str | None) -> BodySummary:
    whole = len(content) <= WHOLE_BODY_BYTES
    return BodySummary(
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content_type=content_type,
        excerpt=excerpt(content) if whole else excerpt_of_head(content[:HEAD_BYTES], len(content)),
    )
