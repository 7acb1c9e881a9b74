"""Downloading a result with the CLI: `jobrelay download` must hold memory flat whatever the file's size
(budget: a 1 GiB result under 200 MiB RSS, as for collecting it).

The result is made as the streaming benchmark makes it (bench/stream_memory.py: the Collect step's real
path, from the Pinpointe sandbox into S3 on a moto server). The CLI then runs as a user runs it, the
console script in a process of its own: `jobrelay --api-url <api> download <job> --out <folder>`. Its
API is a stand-in that answers `GET /jobs/{id}` with the job as the API shows it (services/views.py's
job_view, with S3ResultStore's presigned download URLs on moto), so what is measured is the CLI's
own work: read the job, stream each result file from S3 to disk, hash it, check size and SHA-256,
fsync, rename. Its peak RSS is its own (bench/processes.run_measured), and the file it wrote is
hashed again here. Size: BENCH_RESULT_MIB (default 1024).
"""

import hashlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.processes import REPO, run_measured
from bench.stream_memory import BUDGET_MIB, MiB, collected_result, result_bytes
from jobrelay.services.views import job_view


def run() -> list[str]:
    with collected_result(result_bytes()) as collected, tempfile.TemporaryDirectory(prefix="bench-download-") as folder:
        job = job_view(collected.job, collected.store).model_dump(mode="json")
        result = job["result"]
        with stand_in_api(job) as api_url:
            command = [*jobrelay_command(), "--api-url", api_url]
            reading = run_measured([*command, "get", job["job_id"], "--output", "json"], env=cli_environment())
            _check(reading.exit_code == 0, f"jobrelay get failed:\n{reading.stderr}")
            measured = run_measured(
                [*command, "download", job["job_id"], "--out", folder, "--output", "json"], env=cli_environment()
            )
        _check(measured.exit_code == 0, f"jobrelay download failed ({measured.exit_code}):\n{measured.stderr}")
        written = {Path(entry["path"]).name: file_digest(Path(entry["path"])) for entry in json.loads(measured.stdout)["files"]}
        expected = {file["name"]: (file["size"], file["sha256"]) for file in result["files"]}
        _check(written == expected, f"the files downloaded are not the result's: {written} != {expected}")
        size, sha256 = written["result.json"]
        total = sum(size for size, _ in written.values())

    verdict = "within" if measured.peak_rss_mib <= BUDGET_MIB else "OVER"
    return [
        f"downloaded: result.json, {size / MiB:,.0f} MiB, sha256 {sha256[:16]}…, and summary.json, each checked by the CLI "
        "and again here",
        f"throughput: {total / MiB / measured.seconds:,.1f} MiB/s ({measured.seconds:,.1f} s for the whole command: "
        "start-up, GET /jobs/{id}, the downloads from S3 (moto), hashing, fsync)",
        f"peak RSS of the CLI process: {measured.peak_rss_mib:,.0f} MiB (a `jobrelay get` of the same job: "
        f"{reading.peak_rss_mib:,.0f} MiB); {verdict} the {BUDGET_MIB} MiB budget",
    ]


def jobrelay_command() -> list[str]:
    """The console script beside this interpreter (make installs it), else the package run as a module."""
    script = Path(sys.executable).with_name("jobrelay")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobrelay_cli"]


def cli_environment() -> dict[str, str]:
    """This environment, the CLI importable from cli/ (for `-m`), and no proxy between it and 127.0.0.1."""
    environment = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "cli"), environment.get("PYTHONPATH")]))
    return environment


@contextmanager
def stand_in_api(job: dict[str, Any]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering `GET /jobs/<the job's id>` with the job (else the API's 404)."""
    body = json.dumps(job).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == f"/jobs/{job['job_id']}"
            answer = body if found else json.dumps({"error": {"code": "NOT_FOUND", "message": "no such route"}}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as file:
        while chunk := file.read(MiB):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


if __name__ == "__main__":
    print("\n".join(run()))
