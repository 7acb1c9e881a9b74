"""Staging at the vendor's speed: wall time against a vendor that takes seconds per stage request.

Budget (docs/DESIGN.md): staging wall time within 1.25x of requests x latency / concurrency. Each
vendor's sandbox (its own process) holds every stage request for BENCH_STAGE_LATENCY seconds (default
2) before answering; the Stage steps' real code (S3 on a moto server, DynamoDB checkpoints) stages
BENCH_STAGE_REQUESTS requests (default 32) with the account's `stage_concurrency` set to 1, 2, 4 and
8 in turn (BENCH_STAGE_CONCURRENCIES="4,8" picks some). Which50 batches of 1,000 contacts take us a few milliseconds to cut, so the vendor sets the
pace; MyPreferences requests are at least 1 MB (about 4,900 records, a sixth of a second of our
work each), so with 8 out at once our own cutting shows. Timed from the first stage request to the run.
"""

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import httpx

from bench.processes import moto_server, sandbox_process
from bench.staging import BUCKET, _job_store, _stored, _upload_records, stored_import_job
from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.adapters.s3_records import S3RecordsSource
from jobrelay.adapters.s3_results import S3ResultStore
from jobrelay.adapters.s3_scratch import S3Scratch
from jobrelay.domain.job import Job
from jobrelay.ports import VendorImports
from jobrelay.services.bulk_imports import ImportSteps
from jobrelay.vendors.mypreferences.adapter import mypreferences_imports
from jobrelay.vendors.which50.adapter import which50_imports

CONCURRENCIES = (1, 2, 4, 8)
BUDGET = 1.25
MYPREFERENCES_RECORDS_PER_REQUEST = 4_900  # about 1 MB of stage body: our requests are at least 1 MB
WHICH50_CONTACTS_PER_BATCH = 1_000


@dataclass(frozen=True)
class Vendor:
    name: str
    sandbox: str
    stage_call: str  # the sandbox's name for stage requests (its fault_methods)
    adapter: Callable[[dict[str, Any]], VendorImports]
    operation: str
    upload: Callable[[Any, int], str]  # (s3, requests) -> the records file's s3 URI
    params: Callable[[int], dict[str, Any]]  # requests -> the job's params besides its source


def run() -> list[str]:
    latency = float(os.environ.get("BENCH_STAGE_LATENCY", "2"))
    requests = int(os.environ.get("BENCH_STAGE_REQUESTS", "32"))
    lines = []
    for vendor in VENDORS:
        lines.append(f"{vendor.name}: {requests} stage requests, the vendor answering each after {latency:g} s")
        with _world(vendor, latency) as (s3, store, secret):
            source = vendor.upload(s3, requests)
            for concurrency in _concurrencies():
                adapter = vendor.adapter({**secret, "stage_concurrency": concurrency})
                job_id, params = f"job_{vendor.name.lower()}_{concurrency}", {"source": source, **vendor.params(requests)}
                job = stored_import_job(store, vendor.operation, job_id, params)
                seconds, sent = _staged(s3, store, adapter, job)
                lines.append("   " + _verdict(concurrency, seconds, sent, latency))
    return lines


@contextmanager
def _world(vendor: Vendor, latency: float) -> Iterator[tuple[Any, DynamoJobStore, dict[str, Any]]]:
    with moto_server() as moto_url, sandbox_process(vendor.sandbox, "--process-seconds", "0") as (sandbox, secret):
        s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
        dynamodb = boto3.client(
            "dynamodb", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b"
        )
        s3.create_bucket(Bucket=BUCKET)
        config = {"slow_seconds": latency, "fault_methods": [vendor.stage_call]}
        httpx.post(f"{sandbox}/_sandbox/config", json=config).raise_for_status()
        yield s3, _job_store(dynamodb), secret


def _staged(s3: Any, store: DynamoJobStore, vendor: VendorImports, job: Job) -> tuple[float, int]:
    """Open the import, then time its Stage steps until it runs: (seconds, stage requests)."""
    steps = ImportSteps(store, S3ResultStore(BUCKET, s3), S3Scratch(BUCKET, s3), S3RecordsSource(s3, BUCKET))
    job = steps.open(job, vendor)
    started = time.perf_counter()
    while not steps.stage(_stored(store, job.job_id), vendor, lambda: float("inf")):
        pass
    state = _stored(store, job.job_id).import_state
    assert state is not None
    return time.perf_counter() - started, len(state.batch_sizes)


def _concurrencies() -> list[int]:
    """BENCH_STAGE_CONCURRENCIES="8" runs one of them (default: 1, 2, 4 and 8)."""
    chosen = os.environ.get("BENCH_STAGE_CONCURRENCIES")
    return [int(n) for n in chosen.split(",")] if chosen else list(CONCURRENCIES)


def _verdict(concurrency: int, seconds: float, sent: int, latency: float) -> str:
    ideal = sent * latency / concurrency
    rounds = math.ceil(sent / concurrency) * latency  # what whole rounds of requests take
    verdict = "within" if seconds <= BUDGET * rounds else "OVER"
    return (
        f"concurrency {concurrency}: {seconds:5.1f} s for {sent} requests; requests x latency / concurrency = "
        f"{ideal:4.1f} s ({seconds / ideal:.2f}x: {verdict} {BUDGET}x)"
    )


def _mypreferences_records(s3: Any, requests: int) -> str:
    return _upload_records(s3, requests * MYPREFERENCES_RECORDS_PER_REQUEST)[0]


def _which50_contacts(s3: Any, requests: int) -> str:
    lines = (
        f'{{"Email":"c{n}@bench.example.org","FirstName":"Contact {n}"}}\n' for n in range(requests * WHICH50_CONTACTS_PER_BATCH)
    )
    s3.put_object(Bucket=BUCKET, Key="uploads/bench/contacts.jsonl", Body="".join(lines).encode())
    return f"s3://{BUCKET}/uploads/bench/contacts.jsonl"


VENDORS = (
    Vendor(
        "Which50",
        "devstack.sandbox.which50",
        "batch",
        which50_imports,
        "which50.contact_import",
        _which50_contacts,
        lambda requests: {
            "format": "jsonl",
            "contact_list_id": 12,
            "field_names": ["Email", "FirstName"],
            "batch_size": WHICH50_CONTACTS_PER_BATCH,
        },
    ),
    Vendor(
        "MyPreferences",
        "devstack.sandbox.mypreferences",
        "stage",
        mypreferences_imports,
        "mypreferences.bulk_import",
        _mypreferences_records,
        # 1 MB requests, the smallest we send: the records above fill `requests` of them.
        lambda requests: {"format": "jsonl", "name": "bench", "batch_bytes": 1_000_000},
    ),
)


if __name__ == "__main__":
    print("\n".join(run()))
