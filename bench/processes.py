"""The processes a benchmark measures against: a moto server and a vendor sandbox, each in its own
process so that the benchmark's peak RSS is its own work's; and a command run as a process of its
own, measured on its own (run_measured)."""

import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@dataclass
class Measured:
    exit_code: int
    seconds: float  # wall-clock, start-up included
    peak_rss_mib: float  # the process's own peak RSS (not its children's)
    stdout: str
    stderr: str


def run_measured(command: Sequence[str], env: dict[str, str] | None = None) -> Measured:
    """Runs `command` to its end, measured on its own: its peak RSS as the kernel reports it when it
    is reaped (wait4), so nothing else this benchmark started counts. Its output goes to temporary
    files, never through a pipe that would need reading while it runs.

    A process's peak RSS starts at its parent's when it is forked (Linux carries the parent's high-water
    mark over the exec), so a command started from this process, grown by the work before it, would
    report this process's peak. It is started from a small launcher instead: a fresh interpreter
    (about 10 MiB) that runs it and reports its figure."""
    with tempfile.TemporaryDirectory() as folder:
        figure = Path(folder) / "peak_rss_kib"
        out_path, err_path = Path(folder) / "stdout", Path(folder) / "stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            started = time.perf_counter()
            launched = subprocess.run(
                [sys.executable, "-c", _LAUNCHER, str(figure), *command], cwd=REPO, env=env, stdout=out, stderr=err
            )
            seconds = time.perf_counter() - started
        return Measured(
            exit_code=launched.returncode,
            seconds=seconds,
            peak_rss_mib=int(figure.read_text()) / 1024,  # Linux reports KiB
            stdout=out_path.read_text("utf-8", "replace"),
            stderr=err_path.read_text("utf-8", "replace"),
        )


# argv: the file for the figure, then the command. Its exit code is the command's.
_LAUNCHER = """
import os, subprocess, sys
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], "w") as figure:
    figure.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@contextmanager
def moto_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def sandbox_process(module: str, *arguments: str) -> Iterator[tuple[str, dict]]:
    """A sandbox started with `python -m module --port 0`: (its base URL, its first account secret),
    read from the two lines it prints first."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *arguments], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None  # stdout=PIPE
    try:
        base_url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        secret = json.loads(process.stdout.readline().split(":", 1)[1])
        yield base_url, secret
    finally:
        process.terminate()
        process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")
