"""A small threaded HTTP server for the vendor simulators (Pinpointe first, MyPreferences and Which50
next), and a recording server for the other end of their webhooks.

A simulator subclasses SandboxServer: it declares its config model (a subclass of FaultConfig) and
implements `handle(request) -> Response`. The base gives it, over real sockets on 127.0.0.1:

- control routes: GET/POST /_sandbox/config (POST merges JSON into the config), POST /_sandbox/reset
  (config back to its start values, call log cleared, pending timers cancelled), GET /_sandbox/calls;
  any other /_sandbox/ path goes to the simulator's `control(request)`;
- a call log: every answer from `handle` is recorded with its time, HTTP status and `Response.note`;
- the faults every vendor can show, each firing for the next N calls (optionally only for the
  operations named in `fault_methods`): 503s, hangs, bodies that are not JSON (`call_fault`), as a
  burst or as a steady trickle (`fault_burst` in a row, then `fault_spacing` calls that go through);
- timers (`later`) that reset and stop cancel, and bodies streamed from any iterable of bytes.
"""

import ipaddress
import json
import logging
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
CONTROL_PREFIX = "/_sandbox/"


def iso_utc(timestamp: float, *, milliseconds: bool = False) -> str:
    """A UTC time as vendors write it ("2025-08-13T16:32:00Z"); logs ask for milliseconds."""
    text = datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds" if milliseconds else "seconds")
    return text.removesuffix("+00:00") + "Z"


class FaultConfig(BaseModel):
    """The faults every simulator supports. Counts are consumed one per matching call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    http_5xx: int = Field(default=0, ge=0, description="the next N calls answer 503")
    timeouts: int = Field(default=0, ge=0, description="the next N calls hang before answering")
    timeout_hang_seconds: float = Field(default=5.0, ge=0)
    malformed: int = Field(default=0, ge=0, description="the next N calls answer 200 with a non-JSON body")
    lost_answers: int = Field(
        default=0, ge=0, description="the next N calls are carried out, then the connection closes unanswered"
    )
    fault_methods: list[str] | None = Field(default=None, description="limit the faults to these operations")
    # A steady trickle rather than a burst: fault_burst faults in a row, then fault_spacing calls that
    # go through, and again, while the count lasts (http_5xx=10, fault_spacing=1: every other call).
    fault_burst: int = Field(default=1, ge=1, description="counted faults in a row before a spacing")
    fault_spacing: int = Field(default=0, ge=0, description="matching calls that go through between bursts")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body)


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    content_type: str = "application/json"
    # For an iterable body: sent as Content-Length when known, else the body goes out chunked.
    content_length: int | None = None
    # What the call log records about this answer besides its time and HTTP status.
    note: dict[str, Any] = field(default_factory=dict)
    # The work was done, but the client never hears: the connection closes without an answer.
    lost: bool = False
    # Headers besides Content-Type and the length (Content-Range, ETag).
    headers: dict[str, str] = field(default_factory=dict)
    # The connection closes after this many bytes of the body (a download cut short).
    cut_after: int | None = None

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> "Response":
        return cls(status=status, body=json.dumps(payload).encode())

    def noted(self, **note: Any) -> "Response":
        return replace(self, note={**self.note, **{k: v for k, v in note.items() if v is not None}})


class AspNetRefusal(Exception):
    """An answer other than 200 with ASP.NET Web API's default body, {"Message": ...}: how the
    vendors built on it (MyPreferences, Which50) refuse a request."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def answer(self) -> "Response":
        return Response.json({"Message": self.message}, self.status)


@dataclass(frozen=True)
class Fault:
    name: str
    response: Response | None  # None: the call goes on normally (after a hang)


class SandboxServer[C: FaultConfig](ABC):
    """Base of the simulators; see the module docstring."""

    config_model: ClassVar[type[FaultConfig]] = FaultConfig

    def __init__(self, host: str = LOOPBACK, port: int = 0, **config: Any):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"a sandbox binds to the loopback interface only, not {host}")
        self._address = (host, port)
        self._initial_config: C = self.config_model(**config)  # type: ignore[assignment]
        self._config: C = self._initial_config
        self.lock = threading.RLock()
        self._calls: list[dict[str, Any]] = []
        self._trickle: dict[str, tuple[int, int]] = {}  # counter -> (faults left in this burst, calls to let through)
        self._timers: list[threading.Timer] = []
        self._stopping = threading.Event()
        self._httpd: _Server | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Self:
        self._stopping.clear()
        self._httpd = _Server(self._address, self)
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, name=type(self).__name__, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends hangs and keeps timers that already fired from acting
        self._cancel_timers()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_open_connections()  # a stopped vendor does not go on serving keep-alives
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not running")
        host, port = self._httpd.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # --- config, call log, timers -------------------------------------------------------------------

    @property
    def config(self) -> C:
        return self._config

    def configure(self, changes: Mapping[str, Any]) -> C:
        """Merge `changes` into the config; raises ValidationError for unknown keys or bad values."""
        with self.lock:
            merged = {**self._config.model_dump(), **changes}
            self._config = self.config_model.model_validate(merged)  # type: ignore[assignment]
            self._trickle.clear()
            return self._config

    def reset(self) -> None:
        with self.lock:
            self._cancel_timers()
            self._config = self._initial_config
            self._calls.clear()
            self._trickle.clear()
            self.on_reset()

    def on_reset(self) -> None:  # noqa: B027 (a hook: simulators without state of their own need not override it)
        """Clear the simulator's own state (jobs, deliveries); called under `lock`."""

    def calls(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self._calls)

    def later(self, seconds: float, action: Callable[[], None]) -> None:
        """Run `action` in a daemon thread after `seconds`, unless reset or stop comes first."""
        timer = threading.Timer(max(seconds, 0.0), self._run_unless_stopping, args=(action,))
        timer.daemon = True
        with self.lock:
            self._timers.append(timer)
        timer.start()

    def pause(self, seconds: float) -> None:
        """Sleep, cut short by stop()."""
        self._stopping.wait(seconds)

    def _run_unless_stopping(self, action: Callable[[], None]) -> None:
        if not self.stopping:
            action()

    def _cancel_timers(self) -> None:
        with self.lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()

    # --- faults ------------------------------------------------------------------------------------

    def faults_apply_to(self, operation: str | None) -> bool:
        methods = self._config.fault_methods
        return methods is None or operation in methods

    def take(self, counter: str, operation: str | None) -> bool:
        """Consume one of the counted fault `counter` for a call of `operation`; False when none is left,
        the fault is limited to other operations, or this call falls in a spacing (fault_spacing)."""
        with self.lock:
            remaining = getattr(self._config, counter)
            if remaining <= 0 or not self.faults_apply_to(operation):
                return False
            burst, passing = self._trickle.get(counter, (self._config.fault_burst, 0))
            if passing:
                self._trickle[counter] = (burst, passing - 1)
                return False
            burst -= 1
            self._trickle[counter] = (burst, 0) if burst else (self._config.fault_burst, self._config.fault_spacing)
            self._config = self._config.model_copy(update={counter: remaining - 1})
            return True

    def call_fault(self, operation: str | None) -> Fault | None:
        """The common fault this call suffers, if any (at most one per call)."""
        if self.take("http_5xx", operation):
            return Fault("http_5xx", Response(503, b"Service Unavailable", "text/plain"))
        if self.take("timeouts", operation):
            self.pause(self._config.timeout_hang_seconds)
            return Fault("timeouts", None)
        if self.take("malformed", operation):
            return Fault("malformed", Response(200, b"<html><body>Fatal error: Allowed memory size", "text/html"))
        return None

    # --- requests ----------------------------------------------------------------------------------

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """The vendor's own API: every request outside /_sandbox/."""

    def control(self, request: Request) -> Response | None:
        """The simulator's own /_sandbox/ routes; None when there is no such route."""
        return None

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            answer = self._base_control(request) or self.control(request)
            return answer or Response.json({"error": "no such route"}, 404)
        response = self.handle(request)
        if self.take("lost_answers", response.note.get("kind") or response.note.get("requestmethod")):
            response = replace(response.noted(fault="lost_answers"), lost=True)
        with self.lock:
            at = iso_utc(time.time(), milliseconds=True)
            self._calls.append({"at": at, **response.note, "http_status": response.status})
        return response

    def _base_control(self, request: Request) -> Response | None:
        route = (request.method, request.path.removeprefix(CONTROL_PREFIX))
        if route == ("GET", "config"):
            return Response.json(self.config.model_dump())
        if route == ("POST", "config"):
            return self._configure_from(request)
        if route == ("POST", "reset"):
            self.reset()
            return Response.json(self.config.model_dump())
        if route == ("GET", "calls"):
            return Response.json(self.calls())
        return None

    def _configure_from(self, request: Request) -> Response:
        try:
            changes = request.json()
            if not isinstance(changes, dict):
                raise ValueError("the config must be a JSON object")
            return Response.json(self.configure(changes).model_dump())
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)]
            return Response.json({"error": "invalid config", "problems": problems}, 400)
        except ValueError as exc:
            return Response.json({"error": str(exc)}, 400)


class _Server(ThreadingHTTPServer):
    """The listening socket, plus the connections it accepted so that stop() can close them."""

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer):
        super().__init__(address, _Handler)
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_lock:
            for connection in self._open:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by the client


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked bodies
    disable_nagle_algorithm = True  # headers and body are separate writes: do not let the body wait
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        try:
            response = self.server.sandbox.dispatch(self._request())
        except Exception:
            log.exception("sandbox failed on %s %s", self.command, self.path)
            response = Response.json({"error": "the sandbox itself failed; see its log"}, 500)
        if response.lost:
            self.close_connection = True
            return
        try:
            self._write(response)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout fault, a cut download)

    def _request(self) -> Request:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        return Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=dict(self.headers.items()),
            body=self.rfile.read(length) if length else b"",
        )

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.cut_after is not None:
            self._write_cut(response, response.cut_after)
            return
        if isinstance(response.body, bytes):
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        elif response.content_length is not None:
            self.send_header("Content-Length", str(response.content_length))
            self.end_headers()
            for chunk in response.body:
                self.wfile.write(chunk)
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in response.body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")

    def _write_cut(self, response: Response, cut_after: int) -> None:
        """The headers as for the whole body, then `cut_after` bytes of it, then the connection closes."""
        chunked = isinstance(response.body, bytes) is False and response.content_length is None
        body = [response.body] if isinstance(response.body, bytes) else response.body
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            length = len(response.body) if isinstance(response.body, bytes) else response.content_length
            self.send_header("Content-Length", str(length))
        self.end_headers()
        left = cut_after
        for chunk in body:
            piece = chunk[:left]
            if piece:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            left -= len(piece)
            if left <= 0:
                break
        self.wfile.flush()
        self.close_connection = True


@dataclass
class Received:
    at: float
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class RecordingServer(SandboxServer[FaultConfig]):
    """The other end of a webhook or callback: records every request and answers `status` (200 by
    default). Its faults (503s, hangs) apply as to any sandbox."""

    def __init__(self, host: str = LOOPBACK, port: int = 0, *, status: int = 200):
        super().__init__(host, port)
        self.status = status
        self._received: list[Received] = []

    def handle(self, request: Request) -> Response:
        fault = self.call_fault(request.path)
        with self.lock:
            self._received.append(Received(time.time(), request.method, request.path, request.headers, request.body))
        if fault is not None and fault.response is not None:
            return fault.response.noted(path=request.path, fault=fault.name)
        return Response.json({"ok": True}, self.status).noted(path=request.path)

    def on_reset(self) -> None:
        self._received.clear()

    def received(self) -> list[Received]:
        with self.lock:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The requests received once there are at least `count` of them (or at `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.received()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.received()


def serve_until_interrupted(sandbox: "SandboxServer", *lines: str) -> None:
    """Run a started sandbox in the foreground (python -m devstack.sandbox.<vendor>): print `lines`
    (where it is, how to reach it) and serve until Ctrl-C."""
    for line in lines:
        print(line, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
