"""The API over httpx: the base URL, SigV4 where the API is not on this machine, retries, and the
API's error answers turned into ApiError.

Retries (RETRY_DELAYS_SECONDS, exponential) follow one rule: a request is sent again only when
sending it twice cannot do anything twice.

- A connection that could not be opened never carried the request: retried for every call.
- A 5xx, a 429 or a connection lost after sending: retried only for calls that are safe to repeat
  (retry_safe below): reads, deletes, presigned PUTs of a whole file, `POST /jobs` with an
  Idempotency-Key (the API returns the first job for the same key and body), a cancel (the API
  answers 200 to cancelling a cancelled job, so a repeat after a lost answer does no harm), a
  pause or resume (PATCH sets `enabled` to a value, whatever it was), and a new upload ticket
  (only a presigned URL: asking twice leaves nothing behind). `POST /jobs` without a key,
  creating a schedule and running one now are never sent again blindly: each may have started work.
- A 409 IDEMPOTENCY_IN_PROGRESS (another request with the same Idempotency-Key is still creating its
  job) is retried like a 5xx: the next answer is that job.

An answer's Retry-After is waited for (at most RETRY_AFTER_MAX_SECONDS) when it is longer than the
next delay.
"""

import json
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx

from jobrelay_cli.errors import ApiError, CliError
from jobrelay_cli.signing import Signer

RETRY_DELAYS_SECONDS = (0.5, 1.0, 2.0)  # after the first attempt: four attempts in all
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_MAX_SECONDS = 30.0
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = "jobrelay-cli/0.1"
CHUNK_BYTES = 1024 * 1024  # streamed uploads and downloads


def retry_safe(method: str, path: str, headers: Mapping[str, str]) -> bool:
    """Whether sending this API request twice does nothing twice (see the module's docstring)."""
    method = method.upper()
    if method in ("GET", "HEAD", "PUT", "DELETE", "PATCH"):
        return True
    if method == "POST" and path == "/jobs":
        return bool(httpx.Headers(headers).get("idempotency-key"))
    if method == "POST":
        return path == "/uploads" or (path.startswith("/jobs/") and path.endswith("/cancel"))
    return False


def segment(value: str) -> str:
    """A value (a job id, a schedule's name) as one path segment: `/` and the like cannot change the route."""
    return quote(value, safe="")


def query_string(params: Mapping[str, Any]) -> str:
    """`?a=1&b=x%20y`, every value encoded as SigV4 canonicalises it (RFC 3986: a space is %20, never
    `+`), so the query signed is the query API Gateway checks. Params that are None are left out."""
    given = [(key, str(value)) for key, value in params.items() if value is not None]
    return "?" + urlencode(given, quote_via=quote, safe="-_.~") if given else ""


def redact_url(url: str) -> str:
    """A URL fit to print: a presigned URL's query (its credential scope, session token and
    signature) is left out. The API's own queries (filters, `next`) are kept."""
    parts = urlsplit(url)
    if any(name.lower().startswith("x-amz-") or name.lower() == "signature" for name, _ in parse_qsl(parts.query)):
        return urlunsplit(parts._replace(query="(presigned query hidden)"))
    return url


class ApiClient:
    def __init__(self, api_url: str, signer: Signer | None = None, debug: Callable[[str], None] | None = None):
        self.api_url = api_url
        self._signer = signer
        self._debug = debug
        self._http = httpx.Client(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT})

    def close(self) -> None:
        self._http.close()

    # --- the API's routes ------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One API request; its JSON answer (None for a 204). An error answer raises ApiError."""
        url = self.api_url + path + query_string(params or {})
        content = None if body is None else _json_bytes(body)
        request_headers = {**(headers or {}), **({"Content-Type": "application/json"} if content is not None else {})}

        def build() -> httpx.Request:
            request = self._http.build_request(method, url, content=content, headers=request_headers)
            if self._signer is not None:
                self._signer.sign(request)
            return request

        response = self._send(build, retry_safe=retry_safe(method, path, request_headers))
        if response.status_code >= 400:
            raise api_error(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CliError(f"the API answered HTTP {response.status_code} with a body that is not JSON") from None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    # --- presigned S3 URLs: never signed by us, they carry their own signature ---------------------

    @contextmanager
    def download(self, url: str) -> Iterator[httpx.Response]:
        """A streamed GET of a presigned URL, its status checked; read it with iter_bytes/iter_lines."""
        response = self._send(lambda: self._http.build_request("GET", url), retry_safe=True, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                raise storage_error(response, "download")
            yield response
        finally:
            response.close()

    def upload(self, url: str, headers: Mapping[str, str], path: Path, on_progress: Callable[[int], None]) -> None:
        """PUT the file at `path` to a presigned URL with exactly `headers`, streamed from disk with its
        Content-Length (S3 refuses a chunked PUT). A retry reads the file again from its start.
        `on_progress` is told the bytes read so far."""
        size = path.stat().st_size
        opened: list[IO[bytes]] = []

        def build() -> httpx.Request:
            opened.append(path.open("rb"))
            return self._http.build_request(
                "PUT",
                url,
                content=_CountingReader(opened[-1], on_progress),
                headers={**headers, "Content-Length": str(size)},
                timeout=httpx.Timeout(60.0),
            )

        try:
            response = self._send(build, retry_safe=True)
        finally:
            for file in opened:
                file.close()
        if response.status_code >= 300:
            raise storage_error(response, "upload")

    # --- sending, with retries ---------------------------------------------------------------------

    def _send(self, build: Callable[[], httpx.Request], *, retry_safe: bool, stream: bool = False) -> httpx.Response:
        for delay in (*RETRY_DELAYS_SECONDS, None):
            request = build()
            shown = f"{request.method} {redact_url(str(request.url))}"
            self._say(f"> {shown}" + (" (SigV4-signed)" if "authorization" in request.headers else ""))
            started = time.monotonic()
            try:
                response = self._http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure, sent = _network_failure(exc), False  # never sent: repeating it cannot do anything twice
                self._say(f"< {failure}")
            except httpx.UnsupportedProtocol as exc:
                raise CliError(f"cannot send {shown}: {exc}") from None
            except httpx.TransportError as exc:
                failure, sent = _network_failure(exc), True
                self._say(f"< {failure} after {_millis(started)} ms")
            else:
                self._say(f"< {response.status_code} {response.reason_phrase} in {_millis(started)} ms")
                if not (retry_safe and _worth_retrying(response, stream) and delay is not None):
                    return response  # a final answer, or the last retry's: reported as it is
                delay = max(delay, _retry_after(response))
                response.close()
                failure, sent = f"HTTP {response.status_code}", True
            if delay is None or (sent and not retry_safe):
                raise _network_error(request, failure, sent=sent, retry_safe=retry_safe)
            self._say(f"  retrying in {delay:g} s after {failure}")
            time.sleep(delay)
        raise AssertionError("the last attempt returns or raises")

    def _say(self, line: str) -> None:
        if self._debug is not None:
            self._debug(line)


def _worth_retrying(response: httpx.Response, stream: bool) -> bool:
    """A transient failure, or a 409 saying the same Idempotency-Key's first request is still under way
    (a streamed answer is S3's, whose body is not read here)."""
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code != 409 or stream:
        return False
    error = api_error(response)
    return isinstance(error, ApiError) and error.code == "IDEMPOTENCY_IN_PROGRESS"


def _retry_after(response: httpx.Response) -> float:
    """The answer's Retry-After in seconds (0 without one, or in its date form: the delays then apply)."""
    try:
        seconds = float(response.headers.get("retry-after", "0"))
    except ValueError:
        return 0.0
    return min(seconds, RETRY_AFTER_MAX_SECONDS) if math.isfinite(seconds) and seconds > 0 else 0.0


def api_error(response: httpx.Response) -> CliError:
    """The API's `{"error": {code, message, details}}`; anything else (a gateway's own answer, such as
    API Gateway's `{"message": "Forbidden"}` for a refused signature) is reported as it came."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and "message" in error:
        return ApiError(response.status_code, str(error.get("code") or "ERROR"), str(error["message"]), error.get("details"))
    message = payload.get("message") if isinstance(payload, dict) else None
    text = str(message) if message else (response.text.strip()[:300] or response.reason_phrase)
    return ApiError(response.status_code, "HTTP_ERROR", text)


def storage_error(response: httpx.Response, what: str) -> CliError:
    """S3's XML error answer, by its Code and Message (the rest echoes the request's signature)."""
    code = re.search(r"<Code>(.*?)</Code>", response.text)
    message = re.search(r"<Message>(.*?)</Message>", response.text)
    said = ": ".join(match.group(1) for match in (code, message) if match) or response.reason_phrase
    return CliError(f"the {what} was refused: HTTP {response.status_code} {said}")


class _CountingReader:
    """A binary file that reports how far httpx has read it (for a progress bar). `fileno` lets
    httpx find the file's size for Content-Length."""

    def __init__(self, file: IO[bytes], on_progress: Callable[[int], None]):
        self._file = file
        self._on_progress = on_progress
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._read += len(chunk)
        self._on_progress(self._read)
        return chunk

    def fileno(self) -> int:
        return self._file.fileno()

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK_BYTES):
            yield chunk


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _network_failure(exc: httpx.TransportError) -> str:
    reason = str(exc).strip()
    reason = re.sub(r"^\[Errno -?\d+\]\s*", "", reason)  # "[Errno 111] Connection refused" -> "Connection refused"
    return reason.lower() if reason else type(exc).__name__


def _network_error(request: httpx.Request, failure: str, *, sent: bool, retry_safe: bool) -> CliError:
    where = f"{request.url.scheme}://{request.url.netloc.decode()}"
    call = f"{request.method} {request.url.path}"
    if not sent:
        return CliError(f"cannot reach {where}: {failure} ({call})")
    if retry_safe:
        return CliError(f"no answer from {where}: {failure} ({call})")
    return CliError(
        f"no answer from {where}: {failure} ({call}); it may have been received, so it was not sent again: "
        "check (jobrelay list) before sending it again"
    )


def _millis(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
