"""The local stack's front door invokes a function exactly once per HTTP request, as API Gateway
does: with the Lambda client the stack gives it (devstack.stack.moto_client), against a stand-in for
the Lambda service on a real socket that answers late, drops the connection, or answers at once."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from devstack.front_door import FrontDoor
from devstack.stack import moto_client
from devstack.template import Route

FUNCTION = "ApiFunction"
ROUTES = [Route("POST", "/jobs", FUNCTION, "api1")]
READ_TIMEOUT_SECONDS = 0.3  # the integration timeout here: short, so a slow function is cheap to test
INVOKE_PATH = f"/2015-03-31/functions/{FUNCTION}/invocations"


class LambdaService(ThreadingHTTPServer):
    """Lambda's Invoke API, as moto serves it, behaving as told: "slow" holds every invocation
    until the test ends, "drop" closes the connection without an answer, "answer" returns
    `result` as the function's at once. It keeps every invocation it was sent."""

    daemon_threads = True

    def __init__(self, behaviour: str, result: Any = None):
        super().__init__(("127.0.0.1", 0), _Invocations)
        self.behaviour = behaviour
        self.result = result
        self.invocations: list[dict[str, Any]] = []
        self.released = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def received(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.invocations.append(event)


class _Invocations(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LambdaService

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urlsplit(self.path).path != INVOKE_PATH:  # the front door names $LATEST in the query
            self.send_error(404)
            return
        self.server.received(json.loads(body))
        if self.server.behaviour == "drop":
            self.close_connection = True  # no answer at all: the connection closes
            return
        if self.server.behaviour == "slow":
            self.server.released.wait(timeout=10)  # far past the read timeout; freed when the test ends
        payload = json.dumps(self.server.result).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Amz-Executed-Version", "$LATEST")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the caller gave up waiting, as it should
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def front_door_before(service: LambdaService) -> Iterator[FrontDoor]:
    thread = threading.Thread(target=service.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    door = FrontDoor("127.0.0.1", 0)
    door.serve(ROUTES, moto_client("lambda", service.url, "us-east-1", read_timeout=READ_TIMEOUT_SECONDS), "123456789012")
    try:
        yield door
    finally:
        service.released.set()
        door.stop()
        service.shutdown()
        service.server_close()
        thread.join()


@pytest.fixture
def slow_function() -> Iterator[tuple[FrontDoor, LambdaService]]:
    service = LambdaService("slow")
    with front_door_before(service) as door:
        yield door, service


@pytest.fixture
def dropping_service() -> Iterator[tuple[FrontDoor, LambdaService]]:
    service = LambdaService("drop")
    with front_door_before(service) as door:
        yield door, service


@pytest.fixture
def answering_function() -> Iterator[tuple[FrontDoor, LambdaService]]:
    result = {"statusCode": 202, "headers": {"Location": "/jobs/job_1"}, "body": json.dumps({"job_id": "job_1"})}
    service = LambdaService("answer", result)
    with front_door_before(service) as door:
        yield door, service


def submit(door: FrontDoor) -> httpx.Response:
    body = {"operation": "pinpointe.newsletter_contact_data_summary", "params": {"stat": "4711"}}
    return httpx.post(f"{door.url}/jobs", json=body, headers={"Idempotency-Key": "k-1"}, timeout=10)


def test_a_function_slower_than_the_integration_timeout_is_invoked_once_and_answered_503(slow_function):
    door, service = slow_function

    response = submit(door)

    # The front door answered only once the client had given up, so every attempt it made is in.
    assert len(service.invocations) == 1
    assert service.invocations[0]["routeKey"] == "POST /jobs"
    assert service.invocations[0]["headers"]["idempotency-key"] == "k-1"
    assert response.status_code == 503
    answer = response.json()
    assert answer["message"] == "Service Unavailable"  # API Gateway's own body for an HTTP API's timeout
    assert answer["error"]["code"] == "INTEGRATION_TIMEOUT"
    assert answer["error"]["details"] == {"timeout_seconds": READ_TIMEOUT_SECONDS}
    assert "Idempotency-Key" in answer["error"]["message"]


def test_a_connection_dropped_during_the_invoke_is_not_sent_again_and_answered_500(dropping_service):
    door, service = dropping_service

    response = submit(door)

    assert len(service.invocations) == 1
    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


def test_a_function_that_answers_in_time_is_invoked_once_and_its_answer_passed_on(answering_function):
    door, service = answering_function

    response = submit(door)

    assert len(service.invocations) == 1
    assert (response.status_code, response.json()) == (202, {"job_id": "job_1"})
    assert response.headers["location"] == "/jobs/job_1"
