"""End-to-end: the local stack (python -m devstack --profile test) in a subprocess, driven over
HTTP like a user would, with the vendor sandbox's faults switched per test.

A subprocess, not a thread: other suites run moto in-process (mock_aws), which resets moto's global
backends; the stack must not share them.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import httpx
import pytest

from devstack.__main__ import free_port_arguments

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {"SUCCEEDED", "PARTIAL", "FAILED", "TIMED_OUT", "CANCELLED"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[dict]:
    workdir = tmp_path_factory.mktemp("devstack")
    ready_file, log_path = workdir / "ready.json", workdir / "devstack.log"
    command = [
        sys.executable,
        "-m",
        "devstack",
        "--profile",
        "test",
        *free_port_arguments(),
        "--ready-file",
        str(ready_file),
        "--metrics-file",  # not the developer's (make run's) file
        str(workdir / "metrics.emf.jsonl"),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not ready_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the local stack did not start:\n{log_path.read_text()[-5000:]}")
            time.sleep(0.1)
        time.sleep(0.05)  # the file is written whole, but give the writer a moment to close it
        info = json.loads(ready_file.read_text())
        info["log"] = log_path
        yield info
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def api(stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack["api_url"], timeout=20) as client:
        yield client


class Sandbox:
    def __init__(self, base_url: str):
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def reset(self) -> None:
        self.http.post("/_sandbox/reset").raise_for_status()

    def configure(self, **config) -> None:
        self.http.post("/_sandbox/config", json=config).raise_for_status()

    def calls(self) -> list[dict]:
        return self.http.get("/_sandbox/calls").json()

    def webhooks(self, at_least: int = 0, timeout: float = 10) -> list[dict]:
        """The webhooks the sandbox delivered, each with its outcome. The sandbox records a delivery
        only once our answer is back, which can be after the job it announced has finished: pass
        `at_least` to wait for that many records."""
        deadline = time.monotonic() + timeout
        while len(hooks := self.http.get("/_sandbox/webhooks").json()) < at_least and time.monotonic() < deadline:
            time.sleep(0.05)
        return hooks


@pytest.fixture
def sandbox(stack) -> Iterator[Sandbox]:
    box = Sandbox(stack["sandbox_url"])
    box.reset()
    yield box
    box.reset()


def _control(base_url: str) -> Iterator[httpx.Client]:
    """A sandbox's control routes, reset before and after the test."""
    box = httpx.Client(base_url=base_url, timeout=10)
    box.post("/_sandbox/reset").raise_for_status()
    yield box
    box.post("/_sandbox/reset").raise_for_status()


@pytest.fixture
def which50(stack) -> Iterator[httpx.Client]:
    yield from _control(stack["which50_url"])


@pytest.fixture
def mypreferences(stack) -> Iterator[httpx.Client]:
    yield from _control(stack["mypreferences_url"])


@pytest.fixture(scope="session")
def aws(stack):
    def client(service: str):
        return boto3.client(
            service,
            endpoint_url=stack["moto_url"],
            region_name=stack["region"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    return client


def submit(api: httpx.Client, operation: str, params: dict, **extra) -> dict:
    response = api.post("/jobs", json={"operation": operation, "params": params, **extra})
    assert response.status_code == 202, response.text
    return response.json()


def wait_for(api: httpx.Client, job_id: str, statuses=TERMINAL, timeout: float = 45) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {job['status']} after {timeout}s: {json.dumps(job, indent=1)}")
        time.sleep(0.1)


def events(job: dict) -> list[str]:
    return [entry["event"] for entry in job["timeline"]]


def upload(api: httpx.Client, lines: list[str], name: str = "records.jsonl") -> str:
    """A records file uploaded as users do it: POST /uploads, then a PUT to the presigned URL."""
    ticket = api.post("/uploads", json={"filename": name}).json()
    httpx.put(ticket["upload_url"], content=("\n".join(lines) + "\n").encode(), headers=ticket["headers"]).raise_for_status()
    return ticket["s3_uri"]


def result_file(job: dict, name: str) -> bytes:
    """One of a finished job's result files, fetched through its download URL."""
    (file,) = [f for f in job["result"]["files"] if f["name"] == name]
    return httpx.get(file["download_url"]).content


class CallbackReceiver:
    """A submitter's endpoint: records every POST; answers with the status codes queued in `answers`."""

    def __init__(self):
        self.received: list[dict] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.answers.pop(0) if receiver.answers else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jobrelay-callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    yield receiver
    receiver.close()
