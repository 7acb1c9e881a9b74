"""S3RecordsSource under moto: a 30 MB records file streamed with ranged reads from any offset in
bounded memory, the URIs it refuses, and a replaced file."""

import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from jobrelay.adapters.s3_records import RecordsFileChanged, S3RecordsSource
from jobrelay.adapters.s3_results import MiB
from jobrelay.bulk_import.batches import cut_batches, validate_records
from jobrelay.bulk_import.records import SourceRecord, read_header, read_records
from jobrelay.domain.bulk_import import Batch, BatchFormat, BatchLimits, RecordFailure
from tests.integration.aws_env import mocked_bucket

BUCKET = "jobrelay-results"
BIG = f"s3://{BUCKET}/uploads/big.jsonl"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with mocked_bucket(BUCKET) as client:
        yield client


@pytest.fixture(scope="module")
def source(s3: Any) -> S3RecordsSource:
    return S3RecordsSource(s3, BUCKET)


def put(s3: Any, s3_uri: str, data: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=s3_uri.removeprefix(f"s3://{BUCKET}/"), Body=data)


def profile_line(number: int) -> bytes:
    """A MyPreferences-like profile of 100 bytes to 4 KB, with multi-byte characters in it."""
    profile = {
        "ProfileId": f"p-{number:07d}",
        "CustomerName": {"FirstName": "Zoë", "LastName": "Ångström"},
        "Emails": [{"EmailAddress": f"contact{number}@example.org"}],
        "Note": "€" * (number % 1300),
    }
    return json.dumps(profile, ensure_ascii=False).encode() + b"\n"


@pytest.fixture(scope="module")
def big_file(s3: Any) -> bytes:
    lines, size = [], 0
    while size < 30 * MiB:
        lines.append(profile_line(len(lines) + 1))
        size += len(lines[-1])
    data = b"".join(lines)
    put(s3, BIG, data)
    return data


@pytest.fixture(scope="module")
def big_records(source: S3RecordsSource, big_file: bytes) -> list[SourceRecord]:
    return list(read_records(source.open(BIG), "jsonl"))


# --- streaming ---------------------------------------------------------------------------------


def test_a_30_mb_file_is_read_validated_and_cut_in_a_few_mb(source: S3RecordsSource, big_file: bytes) -> None:
    chunks = source.open(BIG, chunk_size=MiB)
    # moto holds the whole object in memory once it answers the GET (S3 streams it): trace only
    # what reading keeps, from the first chunk on.
    tracemalloc.start()
    try:
        staged = batches = failed = 0
        records = validate_records(read_records(chunks, "jsonl"), lambda data: data)
        for item in cut_batches(
            records, BatchLimits(max_bytes=256 * 1024), BatchFormat.json_array(lambda r: json.dumps(r).encode())
        ):
            if isinstance(item, Batch):
                staged, batches = staged + item.count, batches + 1
            failed += isinstance(item, RecordFailure)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (staged, failed) == (big_file.count(b"\n"), 0) and batches > 100
    assert peak < 6 * MiB, f"peak {peak / MiB:.1f} MiB while reading {len(big_file) / MiB:.0f} MiB"


def test_ranged_reads_from_any_record_give_the_records_after_it(
    source: S3RecordsSource, big_records: list[SourceRecord], big_file: bytes
) -> None:
    assert len(big_records) == big_file.count(b"\n")
    for position in (0, 1, len(big_records) // 3, 2 * len(big_records) // 3, len(big_records) - 2):
        after = big_records[position]
        chunks = source.open(BIG, start_offset=after.end_offset, chunk_size=256 * 1024 + 7)

        rest = read_records(chunks, "jsonl", start_offset=after.end_offset, start_line=after.next_line)

        assert list(rest) == big_records[position + 1 :], f"from the record on line {after.line}"


def test_at_the_end_of_the_file_nothing_is_left_and_past_it_is_refused(source: S3RecordsSource, big_file: bytes) -> None:
    assert source.head(BIG) == len(big_file)
    assert list(source.open(BIG, start_offset=len(big_file))) == []
    with pytest.raises(ValueError, match=f"offset {len(big_file) + 1} is past the end"):
        source.open(BIG, start_offset=len(big_file) + 1)


def test_a_csv_file_resumes_in_the_middle_with_its_header(s3: Any, source: S3RecordsSource) -> None:
    uri = f"s3://{BUCKET}/incoming/contacts.csv"
    put(s3, uri, b'Email,CustomerName.FirstName,Note\r\na@x,Ada,"two\r\nlines"\r\nb@x,Bob,\r\nc@x,,x\r\n')
    everything = list(read_records(source.open(uri, chunk_size=5), "csv"))

    header = read_header(source.open(uri))
    first = everything[0]
    chunks = source.open(uri, start_offset=first.end_offset)
    rest = read_records(chunks, "csv", start_offset=first.end_offset, start_line=first.next_line, header=header)

    assert [(record.line, record.data["Email"]) for record in everything] == [(2, "a@x"), (4, "b@x"), (5, "c@x")]
    assert list(rest) == everything[1:]


def test_first_bytes_for_sniffing(s3: Any, source: S3RecordsSource, big_file: bytes) -> None:
    empty = f"s3://{BUCKET}/uploads/empty.jsonl"
    put(s3, empty, b"")

    assert source.first_bytes(BIG, 1000) == big_file[:1000]
    assert source.first_bytes(empty, 1000) == b""
    assert list(source.open(empty)) == []
    with pytest.raises(ValueError):
        source.first_bytes(BIG, 0)


def test_a_replaced_file_is_refused_to_a_reader_that_pinned_its_version(s3: Any, source: S3RecordsSource) -> None:
    uri = f"s3://{BUCKET}/uploads/replaced.jsonl"
    put(s3, uri, b'{"a": 1}\n{"a": 2}\n')
    version = source.etag(uri)
    assert b"".join(source.open(uri, start_offset=9, if_match=version)) == b'{"a": 2}\n'

    put(s3, uri, b'{"b": 1}\n')

    for reading in (
        lambda: source.open(uri, start_offset=9, if_match=version),
        lambda: source.first_bytes(uri, 10, if_match=version),
    ):
        with pytest.raises(RecordsFileChanged, match="was replaced"):
            reading()


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "s3_uri",
    [
        "s3://someone-elses-bucket/uploads/records.jsonl",
        f"s3://{BUCKET}/results/job-1/result.json",
        f"s3://{BUCKET}/webhooks/job-1/notice.json",
        f"s3://{BUCKET}/uploadsx/records.jsonl",
        f"s3://{BUCKET}/incoming",
        f"s3://{BUCKET}/uploads/",
        f"s3://{BUCKET}/uploads/../results/job-1/result.json",
        f"s3://{BUCKET}/uploads//records.jsonl",
        f"https://{BUCKET}.s3.amazonaws.com/uploads/records.jsonl",
        f"{BUCKET}/uploads/records.jsonl",
    ],
)
def test_only_files_under_the_upload_prefixes_of_our_bucket_are_read(source: S3RecordsSource, s3_uri: str) -> None:
    for reading in (lambda: source.open(s3_uri), lambda: source.head(s3_uri), lambda: source.first_bytes(s3_uri, 10)):
        with pytest.raises(ValueError, match=r"records files are read only from|not a file's URI") as refused:
            reading()
        assert s3_uri in str(refused.value)


def test_a_missing_file_is_named_in_the_error(source: S3RecordsSource) -> None:
    missing = f"s3://{BUCKET}/incoming/nothing-here.csv"

    for reading in (
        lambda: source.open(missing),
        lambda: source.head(missing),
        lambda: source.etag(missing),
        lambda: source.first_bytes(missing, 10),
    ):
        with pytest.raises(FileNotFoundError, match=f"no records file at {missing}"):
            reading()
