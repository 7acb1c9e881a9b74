"""The staging benchmark's measured process: what a Stage step does in the steps function, and nothing
else. bench/staging.py prepares a case (moto, the vendor's sandbox, the records file uploaded, the job
stored) and starts this module with bench.processes.run_measured, so the peak RSS it reports is a
steps process's own: the library imported, the clients built, the import opened and every record
staged, without the generating and uploading of the file that the benchmark's own process did.

    python -m bench.staging_step '<the case as JSON>'   # prints its figures as one JSON object

The case: moto_url, bucket, table, job_id, vendor ("mypreferences" or "which50"), secret (the
sandbox's account secret), tracemalloc (true: also trace the Python heap, which slows staging down
about threefold; its figures are then the heap's, not the speed's).
"""

import json
import sys
import threading
import time
import tracemalloc
from typing import Any

MiB = 1024 * 1024


def main(argv: list[str]) -> None:
    case = json.loads(argv[0])
    if case.get("tracemalloc"):
        tracemalloc.start()
    print(json.dumps(stage_once(case)))


def stage_once(case: dict[str, Any]) -> dict[str, Any]:
    # Imported here, after main() may have started tracemalloc, so that the traced heap is the whole
    # Python heap, the modules' own included, as the RSS figures are the whole process.
    import boto3

    from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
    from jobrelay.adapters.s3_records import S3RecordsSource
    from jobrelay.adapters.s3_results import S3ResultStore
    from jobrelay.adapters.s3_scratch import S3Scratch
    from jobrelay.services.bulk_imports import ImportSteps

    aws = {"endpoint_url": case["moto_url"], "region_name": "us-east-1"}
    keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    s3 = boto3.client("s3", **aws, **keys)  # type: ignore[call-overload]
    store = DynamoJobStore(case["table"], boto3.client("dynamodb", **aws, **keys))  # type: ignore[call-overload]
    bucket = case["bucket"]
    steps = ImportSteps(store, S3ResultStore(bucket, s3), S3Scratch(bucket, s3), S3RecordsSource(s3, bucket))
    vendor = TimedVendor(_adapter(case["vendor"], case["secret"]))
    job_id = case["job_id"]

    def stored():
        job = store.get(job_id)
        if job is None:
            raise LookupError(f"job {job_id} is gone")
        return job

    rss_before = current_rss_mib()
    if tracemalloc.is_tracing():
        tracemalloc.reset_peak()
    started = time.perf_counter()
    steps.open(stored(), vendor)
    while not steps.stage(stored(), vendor, lambda: float("inf")):
        pass
    seconds = time.perf_counter() - started
    state = stored().import_state
    assert state is not None and state.checkpoint.finished, "staging ended before the end of the records"
    figures = {
        "staged": state.checkpoint.staged_records,
        "invalid": state.checkpoint.invalid_records,
        "batches": len(state.batch_sizes),
        "seconds": seconds,
        "vendor_seconds": vendor.waiting_seconds,
        "rss_before_mib": rss_before,
        "rss_at_sends_mib": vendor.rss_at_sends,
    }
    if tracemalloc.is_tracing():
        figures["traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / MiB
    return figures


def _adapter(vendor: str, secret: dict[str, Any]) -> Any:
    if vendor == "mypreferences":
        from jobrelay.vendors.mypreferences.adapter import mypreferences_imports

        return mypreferences_imports(secret)
    if vendor == "which50":
        from jobrelay.vendors.which50.adapter import which50_imports

        return which50_imports(secret)
    raise ValueError(f"no staging benchmark for the vendor {vendor!r}")


class TimedVendor:
    """The real adapter, with the time during which at least one stage or execute call was out added
    up (wall-clock, so stage calls out at once count once), and the process's RSS noted as each
    stage request leaves."""

    def __init__(self, adapter: Any):
        self._adapter = adapter
        self._lock = threading.Lock()
        self._out = 0
        self._since = 0.0
        self.waiting_seconds = 0.0
        self.rss_at_sends: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)

    def stage(self, job, body, records):
        self.rss_at_sends.append(current_rss_mib())
        return self._timed(self._adapter.stage, job, body, records)

    def execute(self, job, **options):
        return self._timed(self._adapter.execute, job, **options)

    def _timed(self, call, *args, **options):
        with self._lock:
            if self._out == 0:
                self._since = time.perf_counter()
            self._out += 1
        try:
            return call(*args, **options)
        finally:
            with self._lock:
                self._out -= 1
                if self._out == 0:
                    self.waiting_seconds += time.perf_counter() - self._since


def current_rss_mib() -> float:
    """This process's resident set now (Linux), where getrusage gives only its high-water mark."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmRSS in /proc/self/status")


if __name__ == "__main__":
    main(sys.argv[1:])
