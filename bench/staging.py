"""Staging: bulk imports of generated records through a vendor's sandbox, each staged in a process of
its own and measured there.

Budgets (docs/DESIGN.md): import throughput limited by the vendor, not by us; and the staging process's
memory flat whatever the file's size, under 256 MiB RSS (a quarter of the steps function's 1,024 MiB).
For each case a moto server and the vendor's sandbox run in processes of their own; this process
generates the records file on disk, uploads it and stores the job; then bench/staging_step.py runs
the Stage steps' real code (the import opened, records streamed from S3 with ranged GETs, validated,
cut into the vendor's stage requests, checkpointed in DynamoDB, the import run) in a fresh process
measured on its own (bench.processes.run_measured), so its peak RSS is what a steps process needs,
not the file's generation or upload. Reported: records/s, the share of the time with a stage request
out at the vendor (which answers at once), the peak RSS, and the RSS before staging and as each stage
request left (flat from the first request to the last when nothing accumulates).

What the peak should be: the process before staging, plus a stage body for each request out at once
and the one being cut (stage_concurrency + 1; MyPreferences sends one at a time, so two 25 MB bodies),
plus what parsing, validating and sending take on the way. A file of one batch (100k MyPreferences
records, 20 MB) never holds two bodies, so its peak is lower than any bigger file's; from two batches
on, it should not grow with the file.

The cases: sizes x formats x vendors, each run `runs` times.

    python -m bench "staging an import"     1,000,000 records, JSON Lines, MyPreferences (make bench runs it too)
    python -m bench.staging --sizes 100k,1M,10M --formats jsonl,csv --vendors mypreferences,which50 --runs 2
    python -m bench.staging --concurrency 8 --latency 25   the account's stage_concurrency (25 MB
                                            bodies go 3 at once at most) and a vendor slow enough
                                            that every body the window allows is held at once
    python -m bench.staging --tracemalloc   the Python heap's peak too (tracemalloc; staging runs about 3x slower)

`python -m bench` and make bench read the same choices from the environment: BENCH_IMPORT_SIZES (or
BENCH_IMPORT_RECORDS, one size), BENCH_IMPORT_FORMATS, BENCH_IMPORT_VENDORS, BENCH_IMPORT_RUNS,
BENCH_IMPORT_CONCURRENCY, BENCH_IMPORT_LATENCY, BENCH_IMPORT_TRACEMALLOC=1. The records: MyPreferences profiles (a name, an
alternate id, an email: about 205 bytes a JSON line, 60 a CSV row) cut into 25 MB stage requests; Which50 contacts (email,
names, country: about 95 and 45 bytes) cut into batches of 10,000, four out at once. 10M records make
a file of up to 2 GB (in /tmp and in moto) and take 6 to 10 minutes a case on a 2-core machine.
"""

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import boto3
import httpx

from bench.processes import moto_server, run_measured, sandbox_process
from devstack.template import load_yaml
from jobrelay.adapters.dynamodb_jobs import DynamoJobStore
from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.domain.status import JobStatus

BUCKET, TABLE, JOB_ID = "bench-imports", "bench-jobs", "job_bench"
BUDGET_MIB = 256
DEFAULT_SIZES, DEFAULT_FORMATS, DEFAULT_VENDORS = "1M", "jsonl", "mypreferences"
_BLOCK = 10_000  # records generated per write


@dataclass(frozen=True)
class VendorCase:
    """How a vendor's import is benchmarked: its sandbox, its operation and params, its records."""

    sandbox: str
    stage_call: str  # the sandbox's name for stage requests (its fault_methods)
    operation: str
    params: dict[str, Any]
    csv_header: str
    jsonl_line: Callable[[int], str]
    csv_row: Callable[[int], str]


VENDORS = {
    "mypreferences": VendorCase(
        sandbox="devstack.sandbox.mypreferences",
        stage_call="stage",
        operation="mypreferences.bulk_import",
        params={"name": "bench"},
        csv_header="CustomerName.FirstName,CustomerName.LastName,AlternateIds.0.AlternateIdType,"
        "AlternateIds.0.AlternateId,Emails.0.EmailAddress,Emails.0.IsDefault",
        # What json.dumps(..., separators=(",", ":")) writes for the record, written faster.
        jsonl_line=lambda n: (
            f'{{"CustomerName":{{"FirstName":"Ada","LastName":"Lovelace{n}"}},'
            f'"AlternateIds":[{{"AlternateIdType":"CRM_ID","AlternateId":"C-{n}"}}],'
            f'"Emails":[{{"EmailAddress":"ada{n}@example.org","IsDefault":true}}]}}'
        ),
        csv_row=lambda n: f"Ada,Lovelace{n},CRM_ID,C-{n},ada{n}@example.org,true",
    ),
    "which50": VendorCase(
        sandbox="devstack.sandbox.which50",
        stage_call="batch",
        operation="which50.contact_import",
        # List 12 of the sandbox's seed lists has these fields.
        params={"contact_list_id": 12, "field_names": ["Email", "FirstName", "LastName", "Country"]},
        csv_header="Email,FirstName,LastName,Country",
        jsonl_line=lambda n: f'{{"Email":"ada{n}@example.org","FirstName":"Ada","LastName":"Lovelace{n}","Country":"IE"}}',
        csv_row=lambda n: f"ada{n}@example.org,Ada,Lovelace{n},IE",
    ),
}


def run() -> list[str]:
    """The cases the environment asks for (make bench: the default one)."""
    sizes = os.environ.get("BENCH_IMPORT_SIZES") or os.environ.get("BENCH_IMPORT_RECORDS") or DEFAULT_SIZES
    return list(
        run_cases(
            parse_sizes(sizes),
            _names(os.environ.get("BENCH_IMPORT_FORMATS", DEFAULT_FORMATS)),
            _names(os.environ.get("BENCH_IMPORT_VENDORS", DEFAULT_VENDORS)),
            runs=int(os.environ.get("BENCH_IMPORT_RUNS", "1")),
            concurrency=int(os.environ["BENCH_IMPORT_CONCURRENCY"]) if os.environ.get("BENCH_IMPORT_CONCURRENCY") else None,
            latency=float(os.environ.get("BENCH_IMPORT_LATENCY", "0")),
            traced=os.environ.get("BENCH_IMPORT_TRACEMALLOC", "") not in ("", "0"),
        )
    )


def run_cases(
    sizes: list[int],
    formats: list[str],
    vendors: list[str],
    *,
    runs: int = 1,
    concurrency: int | None = None,
    latency: float = 0,
    traced: bool = False,
) -> Iterator[str]:
    """The figures of every case, in words, as each case ends."""
    for name in vendors:
        if name not in VENDORS:
            raise SystemExit(f"no staging benchmark for the vendor {name!r}: {', '.join(VENDORS)}")
    for fmt in formats:
        if fmt not in ("jsonl", "csv"):
            raise SystemExit(f"no records format {fmt!r}: jsonl or csv")
    for name in vendors:
        for fmt in formats:
            for records in sizes:
                for attempt in range(1, runs + 1):
                    case = f"{name}, {fmt}, {records:,} records" + (f", run {attempt}" if runs > 1 else "")
                    for n, line in enumerate(stage_case(name, fmt, records, traced, concurrency, latency)):
                        yield f"{case}: {line}" if n == 0 else f"  {line}"


def stage_case(
    vendor: str, fmt: str, records: int, traced: bool = False, concurrency: int | None = None, latency: float = 0
) -> list[str]:
    """One case, staged in a process of its own; its figures, in words. `concurrency`: the account's
    stage_concurrency (else the vendor's default); `latency`: seconds the sandbox takes to answer a
    stage request (with more than one out at once, every body the window allows is then held)."""
    setup = VENDORS[vendor]
    with moto_server() as moto_url, sandbox_process(setup.sandbox, "--process-seconds", "1") as (sandbox_url, secret):
        if latency:
            slow = {"slow_seconds": latency, "fault_methods": [setup.stage_call]}
            httpx.post(f"{sandbox_url}/_sandbox/config", json=slow).raise_for_status()
        aws = {
            "endpoint_url": moto_url,
            "region_name": "us-east-1",
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench",
        }
        source_uri, size = _upload_records(boto3.client("s3", **aws), records, setup, fmt)  # type: ignore[call-overload]
        params = {"source": source_uri, "format": fmt, **setup.params}
        stored_import_job(_job_store(boto3.client("dynamodb", **aws)), setup.operation, JOB_ID, params)  # type: ignore[call-overload]
        case = {
            "moto_url": moto_url,
            "bucket": BUCKET,
            "table": TABLE,
            "job_id": JOB_ID,
            "vendor": vendor,
            "secret": secret if concurrency is None else {**secret, "stage_concurrency": concurrency},
            "tracemalloc": traced,
        }
        measured = run_measured([sys.executable, "-m", "bench.staging_step", json.dumps(case)])
    if measured.exit_code != 0:
        raise RuntimeError(f"staging failed ({measured.exit_code}):\n{measured.stderr[-4000:]}")
    figures = json.loads(measured.stdout.strip().splitlines()[-1])
    staged, seconds, waiting = figures["staged"], figures["seconds"], figures["vendor_seconds"]
    at_sends = figures["rss_at_sends_mib"]
    verdict = "within" if measured.peak_rss_mib <= BUDGET_MIB else "OVER"
    lines = [
        f"{size / 1e6:,.0f} MB of {'JSON Lines' if fmt == 'jsonl' else 'CSV'}, {figures['batches']:,} stage requests; "
        f"staged {staged:,} in {seconds:,.1f} s: {staged / seconds:,.0f} records/s, "
        f"a stage request out at the vendor {waiting / seconds:.0%} of that time",
        f"peak RSS {measured.peak_rss_mib:,.0f} MiB ({verdict} the {BUDGET_MIB} MiB budget); "
        f"before staging {figures['rss_before_mib']:,.0f} MiB; as the requests left "
        f"{min(at_sends):,.0f}-{max(at_sends):,.0f} MiB (first {at_sends[0]:,.0f}, last {at_sends[-1]:,.0f})",
    ]
    if staged != records:
        lines.append(f"MISMATCH: {records:,} records generated, {staged:,} staged ({figures['invalid']:,} refused)")
    if "traced_peak_mib" in figures:
        lines.append(f"Python heap peak (tracemalloc): {figures['traced_peak_mib']:,.0f} MiB (times slowed by tracing)")
    return lines


def _upload_records(s3, records: int, setup: VendorCase | None = None, fmt: str = "jsonl") -> tuple[str, int]:
    """The records file's s3:// URI and size (MyPreferences' JSON Lines unless told; bench/staging_latency.py
    uploads its files with it too)."""
    setup = setup or VENDORS["mypreferences"]
    s3.create_bucket(Bucket=BUCKET)
    key = f"uploads/bench/records.{fmt}"
    with tempfile.TemporaryFile() as file:  # generated to disk, never to memory
        _write_records(file, setup, fmt, records)
        size = file.tell()
        file.seek(0)
        s3.upload_fileobj(file, BUCKET, key)
    return f"s3://{BUCKET}/{key}", size


def _write_records(file: IO[bytes], setup: VendorCase, fmt: str, records: int) -> None:
    line = setup.jsonl_line if fmt == "jsonl" else setup.csv_row
    if fmt == "csv":
        file.write(setup.csv_header.encode() + b"\n")
    for start in range(0, records, _BLOCK):
        block: Iterable[int] = range(start, min(start + _BLOCK, records))
        file.write("".join(line(n) + "\n" for n in block).encode())


def _stored(store: DynamoJobStore, job_id: str) -> Job:
    """The job as stored (bench/staging_latency.py reads it after every Stage step)."""
    job = store.get(job_id)
    if job is None:
        raise LookupError(f"job {job_id} is gone")
    return job


def _job_store(dynamodb) -> DynamoJobStore:
    table = load_yaml(Path(__file__).resolve().parents[1] / "template.yaml")["Resources"]["JobsTable"]["Properties"]
    dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
    )
    return DynamoJobStore(TABLE, dynamodb)


def stored_import_job(store: DynamoJobStore, operation: str, job_id: str, params: dict[str, Any]) -> Job:
    """An import job as the API stores it, ready for its Stage steps (bench/staging_latency.py's too)."""
    job = Job(
        job_id=job_id,
        operation=operation,
        vendor=operation.split(".")[0],
        status=JobStatus.STARTING,
        deadline_at=datetime.now(UTC) + timedelta(hours=6),
        params=params,
    )
    store.create(job, TimelineEvent(event="submitted"))
    return job


def parse_sizes(text: str) -> list[int]:
    """ "100k,1M,10M" (or plain numbers) as record counts."""
    sizes = []
    for word in _names(text):
        scale = {"k": 1_000, "m": 1_000_000}.get(word[-1].lower(), 1)
        number = word[:-1] if scale > 1 else word
        sizes.append(int(float(number.replace("_", "").replace(",", "")) * scale))
    return sizes


def _names(text: str) -> list[str]:
    return [word.strip() for word in text.split(",") if word.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Stage generated bulk imports and measure the staging process.")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="records per file, e.g. 100k,1M,10M (default %(default)s)")
    parser.add_argument("--formats", default=DEFAULT_FORMATS, help="jsonl, csv or both (default %(default)s)")
    parser.add_argument("--vendors", default=DEFAULT_VENDORS, help="mypreferences, which50 or both (default %(default)s)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each case (default %(default)s)")
    parser.add_argument("--concurrency", type=int, help="the account's stage_concurrency (default: the vendor's)")
    parser.add_argument("--latency", type=float, default=0, help="seconds the sandbox takes per stage request")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the Python heap's peak (slower)")
    args = parser.parse_args(argv)
    for line in run_cases(
        parse_sizes(args.sizes),
        _names(args.formats),
        _names(args.vendors),
        runs=args.runs,
        concurrency=args.concurrency,
        latency=args.latency,
        traced=args.tracemalloc,
    ):
        print(line, flush=True)


if __name__ == "__main__":
    main()
