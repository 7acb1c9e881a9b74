"""Staging: a bulk import of 1,000,000 generated records through the MyPreferences sandbox.

Budget (docs/DESIGN.md): import throughput limited by the vendor, not by us. It runs the Stage steps'
real code (records streamed from S3 with ranged GETs, validated, cut into 25 MB stage requests,
checkpointed in DynamoDB after every batch) against a moto server and the sandbox, each in its own
process, and reports records/s, the time spent waiting on the vendor, and the peak RSS of the
staging process. Size: BENCH_IMPORT_RECORDS (default 1,000,000).
"""

import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta

import boto3

from bench.processes import moto_server, peak_rss_mib, sandbox_process
from devstack.template import load_yaml
from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.adapters.s3_records import S3RecordsSource
from jobrelay.adapters.s3_results import S3ResultStore
from jobrelay.adapters.s3_scratch import S3Scratch
from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.domain.status import JobStatus
from jobrelay.services.bulk_imports import ImportSteps
from jobrelay.vendors.mypreferences.adapter import mypreferences_imports

BUCKET, TABLE = "bench-imports", "bench-jobs"


def run() -> list[str]:
    records = int(os.environ.get("BENCH_IMPORT_RECORDS", "1000000"))
    with moto_server() as moto_url, sandbox_process("devstack.sandbox.mypreferences", "--process-seconds", "1") as (_, secret):
        s3 = boto3.client(
            "s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
        )
        dynamodb = boto3.client(
            "dynamodb", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
        )
        source_uri, size = _upload_records(s3, records)
        store = _job_store(dynamodb)
        vendor = _TimedVendor(mypreferences_imports(secret))
        steps = ImportSteps(store, S3ResultStore(BUCKET, s3), S3Scratch(BUCKET, s3), S3RecordsSource(s3, BUCKET))
        job = _new_job(store, source_uri)

        baseline_mib = peak_rss_mib()
        started = time.perf_counter()
        job = steps.open(job, vendor)
        while not steps.stage(_stored(store, job.job_id), vendor, lambda: float("inf")):
            pass
        seconds = time.perf_counter() - started
        state = _stored(store, job.job_id).import_state
        assert state is not None

    staged = state.checkpoint.staged_records
    return [
        f"file: {records:,} records, {size / 1e6:,.0f} MB of JSON Lines; {len(state.batch_sizes)} stage requests of at most 25 MB",
        f"staged {staged:,} records in {seconds:,.1f} s: {staged / seconds:,.0f} records/s, "
        f"of which {vendor.seconds:,.1f} s waiting on the vendor's stage/execute calls ({vendor.seconds / seconds:.0%})",
        f"peak RSS of the staging process: {peak_rss_mib():,.0f} MiB (before staging: {baseline_mib:,.0f} MiB)",
    ]


def _stored(store: DynamoJobStore, job_id: str) -> Job:
    job = store.get(job_id)
    if job is None:
        raise LookupError(f"job {job_id} is gone")
    return job


class _TimedVendor:
    """The real adapter, with the time spent in the vendor's stage and execute calls added up."""

    def __init__(self, adapter):
        self._adapter = adapter
        self.seconds = 0.0

    def __getattr__(self, name):
        return getattr(self._adapter, name)

    def stage(self, job, body, records):
        return self._timed(self._adapter.stage, job, body, records)

    def execute(self, job, **options):
        return self._timed(self._adapter.execute, job, **options)

    def _timed(self, call, *args, **options):
        started = time.perf_counter()
        try:
            return call(*args, **options)
        finally:
            self.seconds += time.perf_counter() - started


def _upload_records(s3, records: int) -> tuple[str, int]:
    s3.create_bucket(Bucket=BUCKET)
    with tempfile.TemporaryFile() as file:  # generated to disk, never to memory
        for n in range(records):
            file.write(
                json.dumps(
                    {
                        "CustomerName": {"FirstName": "Ada", "LastName": f"Lovelace{n}"},
                        "AlternateIds": [{"AlternateIdType": "CRM_ID", "AlternateId": f"C-{n}"}],
                        "Emails": [{"EmailAddress": f"ada{n}@example.org", "IsDefault": True}],
                    },
                    separators=(",", ":"),
                ).encode()
                + b"\n"
            )
        size = file.tell()
        file.seek(0)
        s3.upload_fileobj(file, BUCKET, "uploads/bench/records.jsonl")
    return f"s3://{BUCKET}/uploads/bench/records.jsonl", size


def _job_store(dynamodb) -> DynamoJobStore:
    table = load_yaml(__import__("pathlib").Path(__file__).resolve().parents[1] / "template.yaml")["Resources"]["JobsTable"][
        "Properties"
    ]
    dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
    )
    return DynamoJobStore(TABLE, dynamodb)


def _new_job(store: DynamoJobStore, source_uri: str) -> Job:
    now = datetime.now(UTC)
    job = Job(
        job_id="job_bench",
        operation="mypreferences.bulk_import",
        vendor="mypreferences",
        status=JobStatus.STARTING,
        deadline_at=now + timedelta(hours=6),
        params={"source": source_uri, "format": "jsonl", "name": "bench"},
    )
    store.create(job, TimelineEvent(event="submitted"))
    return job


if __name__ == "__main__":
    print("\n".join(run()))
