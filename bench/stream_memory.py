"""Streaming a result: peak memory must not grow with the file (budget: a 1 GiB result under 200 MiB RSS).

It runs the Collect step's real path: the Pinpointe adapter downloads the sandbox's generated result
over HTTP and S3ResultStore uploads it to a moto server in multipart parts, hashing on the way. The
sandbox and moto run in processes of their own, so this process's peak RSS is the step's own.
Size: BENCH_RESULT_MIB (default 1024).
"""

import os
import time
from datetime import UTC, datetime, timedelta

import boto3

from bench.processes import moto_server, peak_rss_mib, sandbox_process
from jobrelay.adapters.s3_results import S3ResultStore
from jobrelay.domain.job import Job
from jobrelay.domain.vendor_outcomes import VendorState
from jobrelay.domain.vendor_ref import VendorRef
from jobrelay.vendors.pinpointe.adapter import pinpointe_exports

MiB = 1024 * 1024
BUDGET_MIB = 200
UNUSED_WEBHOOK = "http://127.0.0.1:9/nobody-listens"  # the sandbox's delivery fails quietly


def run() -> list[str]:
    target_bytes = int(os.environ.get("BENCH_RESULT_MIB", "1024")) * MiB
    with moto_server() as moto_url, sandbox_process("devstack.sandbox.pinpointe") as (sandbox_url, secret):
        s3 = boto3.client(
            "s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
        )
        s3.create_bucket(Bucket="bench-results")
        store = S3ResultStore("bench-results", s3)
        vendor = pinpointe_exports(secret, not_found_grace_seconds=60)

        per_record = _collect(vendor, store, sandbox_url, records=2000).size / 2000
        records = int(target_bytes / per_record)
        baseline_mib = peak_rss_mib()
        started = time.perf_counter()
        result = _collect(vendor, store, sandbox_url, records=records)
        seconds = time.perf_counter() - started
        peak_mib = peak_rss_mib()

    verdict = "within" if peak_mib <= BUDGET_MIB else "OVER"
    return [
        f"result: {result.size / MiB:,.0f} MiB ({records:,} records), sha256 {result.sha256[:16]}…",
        f"throughput: {result.size / MiB / seconds:,.1f} MiB/s ({seconds:,.1f} s, download + multipart upload + hashing)",
        f"peak RSS of the collecting process: {peak_mib:,.0f} MiB (before the big result: {baseline_mib:,.0f} MiB); "
        f"{verdict} the {BUDGET_MIB} MiB budget",
    ]


def _collect(vendor, store, sandbox_url: str, records: int):
    """Start a sandbox export of `records` records, wait for it, collect it into S3."""
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
            return vendor.collect(job, store).result
        time.sleep(0.1)
    raise RuntimeError("the sandbox job did not finish")


def _carrying(job: Job, ref: VendorRef) -> Job:
    """The job storing the adapter's reference as the steps do: public fields and secret ones apart."""
    return job.model_copy(update={"vendor_ref": ref.shown(), "vendor_secrets": ref.secrets()})


if __name__ == "__main__":
    print("\n".join(run()))
