"""Streaming a result: peak memory must not grow with the file (budget: a 1 GiB result under 200 MiB RSS).

It runs the Collect step's real path: the Pinpointe adapter downloads the sandbox's generated result
over HTTP and S3ResultStore uploads it to a moto server in multipart parts, hashing on the way. The
sandbox and moto run in processes of their own, so this process's peak RSS is the step's own.
Size: BENCH_RESULT_MIB (default 1024).
"""

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3

from bench.processes import moto_server, peak_rss_mib, sandbox_process
from jobrelay.adapters.s3_results import S3ResultStore
from jobrelay.domain.job import Job, JobResult
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_outcomes import VendorState
from jobrelay.domain.vendor_ref import VendorRef
from jobrelay.vendors.pinpointe.adapter import pinpointe_exports

MiB = 1024 * 1024
BUDGET_MIB = 200
UNUSED_WEBHOOK = "http://127.0.0.1:9/nobody-listens"  # the sandbox's delivery fails quietly


def result_bytes() -> int:
    """The big result's size: BENCH_RESULT_MIB (default 1024) MiB, give or take a record."""
    return int(os.environ.get("BENCH_RESULT_MIB", "1024")) * MiB


@dataclass
class Collected:
    """A big result collected into S3 on moto through the Collect step's real path (moto still up)."""

    store: S3ResultStore  # the bucket it is in; presigns download URLs as the API does
    job: Job  # SUCCEEDED, with the result (result.json and summary.json)
    records: int
    seconds: float  # the collect's own time
    baseline_mib: float  # this process's peak RSS before the big result
    peak_mib: float  # and after it


@contextmanager
def collected_result(target_bytes: int) -> Iterator[Collected]:
    """Collects a result of about `target_bytes` from the Pinpointe sandbox into S3 (moto), each in
    a process of its own; both stay up until the block ends (other benchmarks download it)."""
    with moto_server() as moto_url, sandbox_process("devstack.sandbox.pinpointe") as (sandbox_url, secret):
        s3 = boto3.client(
            "s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
        )
        s3.create_bucket(Bucket="bench-results")
        store = S3ResultStore("bench-results", s3)
        vendor = pinpointe_exports(secret, not_found_grace_seconds=60)

        per_record = _result(_collect(vendor, store, sandbox_url, records=2000)).size / 2000
        records = int(target_bytes / per_record)
        baseline_mib = peak_rss_mib()
        started = time.perf_counter()
        job = _collect(vendor, store, sandbox_url, records=records)
        seconds = time.perf_counter() - started
        yield Collected(store, job, records, seconds, baseline_mib, peak_rss_mib())


def run() -> list[str]:
    with collected_result(result_bytes()) as collected:
        pass
    result, seconds, peak_mib = _result(collected.job), collected.seconds, collected.peak_mib
    verdict = "within" if peak_mib <= BUDGET_MIB else "OVER"
    return [
        f"result: {result.size / MiB:,.0f} MiB ({collected.records:,} records), sha256 {result.sha256[:16]}…",
        f"throughput: {result.size / MiB / seconds:,.1f} MiB/s ({seconds:,.1f} s, download + multipart upload + hashing)",
        f"peak RSS of the collecting process: {peak_mib:,.0f} MiB (before the big result: {collected.baseline_mib:,.0f} MiB); "
        f"{verdict} the {BUDGET_MIB} MiB budget",
    ]


def _result(job: Job) -> JobResult:
    assert job.result is not None  # _collect's jobs have theirs
    return job.result


def _collect(vendor, store, sandbox_url: str, records: int) -> Job:
    """Start a sandbox export of `records` records, wait for it, collect it into S3: the job, SUCCEEDED with its result."""
    import httpx

    httpx.post(f"{sandbox_url}/_sandbox/config", json={"records": records, "job_seconds": 0}).raise_for_status()
    now = datetime.now(UTC)
    job = Job(
        job_id=f"bench-{records}",
        operation="pinpointe.list_subscribers",
        vendor="pinpointe",
        deadline_at=now + timedelta(hours=1),
        params={"list": ["1"]},
    )
    job = _carrying(job, vendor.start(job, UNUSED_WEBHOOK).vendor_ref)
    for _ in range(100):
        outcome = vendor.poll(job)
        if outcome.state is VendorState.DONE:
            if outcome.vendor_ref is not None:
                job = _carrying(job, outcome.vendor_ref)  # the result link AsyncJobStatus gave
            result = vendor.collect(job, store).result
            return job.model_copy(update={"status": JobStatus.SUCCEEDED, "result": result})
        time.sleep(0.1)
    raise RuntimeError("the sandbox job did not finish")


def _carrying(job: Job, ref: VendorRef) -> Job:
    """The job storing the adapter's reference as the steps do: public fields and secret ones apart."""
    return job.model_copy(update={"vendor_ref": ref.shown(), "vendor_secrets": ref.secrets()})


if __name__ == "__main__":
    print("\n".join(run()))
