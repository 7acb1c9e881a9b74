"""What the CLI's unit tests share: a tiny HTTP server on 127.0.0.1 standing in for the API (real
sockets; it answers what each test scripts and records every request), and the CLI run in-process
with Typer's CliRunner.

The server also serves as a plain HTTP forward proxy: a request whose target is an absolute URL
(`GET http://api.jobrelay.test/jobs`, as a client sends it through HTTP_PROXY) is answered like any
other, its Host kept. That lets the signing tests give the CLI a URL that is not loopback, so it
signs, while every byte still goes to this machine.
"""

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from typer.testing import CliRunner, Result

from jobrelay.operations import OPERATIONS
from jobrelay_cli.main import app


@dataclass
class Recorded:
    method: str
    target: str  # as on the request line: a path, or an absolute URL through the proxy
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # JSON-able, bytes, or an iterable of byte chunks (streamed)
    headers: dict[str, str] = field(default_factory=dict)


Script = Answer | Callable[[Recorded], Answer] | dict[str, Any] | list[Any]


class FakeApi:
    """Routes are (method, path) -> answers given in turn, the last one repeated."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[tuple[str, str], list[Script]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path: str, *answers: Script) -> None:
        self._routes[(method, path)] = list(answers)

    def sent(self, method: str, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and (path is None or r.path == path)]

    def start(self) -> "FakeApi":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, request: Recorded) -> Answer:
        with self._lock:
            self.requests.append(request)
            answers = self._routes.get((request.method, request.path))
            if not answers:
                return Answer(404, {"error": {"code": "NOT_FOUND", "message": "no such route", "details": None}})
            script = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(script, Answer):
            return script
        if callable(script):
            return script(request)
        return Answer(200, script)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Recorded(
            method=self.command,
            target=self.path,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        answer = self.server.fake.answer(request)  # type: ignore[attr-defined]
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if isinstance(answer.body, bytes) or answer.body is None:
            payload = answer.body or b""
            if answer.body is not None and "Content-Type" not in answer.headers:
                self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        elif isinstance(answer.body, (dict, list)):
            payload = json.dumps(answer.body).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        else:  # chunks, streamed as they are made: the size must be given in the answer's headers
            self.end_headers()
            for chunk in answer.body:
                self.wfile.write(chunk)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def catalogue() -> dict[str, Any]:
    """GET /operations as the API answers it, from the real catalogue."""
    return {
        "operations": [
            {"name": op.name, "vendor": op.vendor, "description": op.description, "params_schema": op.params_schema()}
            for op in OPERATIONS.values()
        ]
    }


def job(job_id: str = "job_01test", status: str = "SUBMITTED", **fields: Any) -> dict[str, Any]:
    """A job as GET /jobs/{id} gives it (README.md, A job)."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    progress = {"percent": None, "counts": {}, "records": {}, "note": None, "phase": None, **fields.pop("progress", {})}
    return {
        "job_id": job_id,
        "operation": "pinpointe.list_subscribers",
        "account": "default",
        "status": status,
        "created_at": now,
        "updated_at": now,
        "deadline_at": now,
        "progress": progress,
        "vendor_ref": {},
        "callback_url": None,
        "schedule": None,
        "result": None,
        "reconciliation": None,
        "error": None,
        "timeline": [{"at": now, "event": "submitted", "detail": {}}],
        **fields,
    }


def result_file(name: str, content: bytes, download_url: str) -> dict[str, Any]:
    return {
        "name": name,
        "s3_uri": f"s3://bucket/results/job_01test/{name}",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "download_url": download_url,
    }


def result_of(*files: dict[str, Any]) -> dict[str, Any]:
    main = files[0]
    return {key: main[key] for key in ("s3_uri", "size", "sha256", "download_url")} | {"files": list(files)}


def api_error(status: int, code: str, message: str, details: Any = None) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message, "details": details}})


def run_cli(*args: str) -> Result:
    """`jobrelay ARGS...` in-process; stdout and stderr apart. The environment is the test's (cli_env)."""
    return CliRunner().invoke(app, list(args))


def chunks(size: int, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """`size` bytes of a repeating pattern, made a chunk at a time (never whole)."""
    pattern = bytes(range(256)) * (chunk_size // 256)
    sent = 0
    while sent < size:
        piece = pattern[: min(chunk_size, size - sent)]
        sent += len(piece)
        yield piece


def sha256_of(pieces: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece)
    return digest.hexdigest()
