"""S3ResultStore under moto: streamed multipart uploads with bounded memory, their hash and size,
cleanup when a stream breaks, and presigned links."""

import hashlib
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

from jobrelay.adapters import s3_results
from jobrelay.adapters.s3_results import MIN_PART_SIZE, MiB, S3ResultStore
from jobrelay.ports import ResultStore
from tests.fakes import InMemoryResultStore
from tests.integration.aws_env import mocked_bucket, wired

BUCKET = "jobrelay-results"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with mocked_bucket(BUCKET) as client:
        yield client


@pytest.fixture(scope="module")
def reader(s3: Any) -> Any:
    """A client to read objects back. moto serves a multipart object's composite CRC32 without
    S3's "-<parts>" suffix, so botocore would check it as a whole-object CRC and fail: this client
    checks response checksums only where S3 requires it. Our own SHA-256 is checked instead."""
    return boto3.client("s3", config=Config(response_checksum_validation="when_required"))


@pytest.fixture
def recorder(s3: Any) -> "Recorder":
    return Recorder(s3)


@pytest.fixture
def store(recorder: "Recorder") -> S3ResultStore:
    return S3ResultStore(BUCKET, recorder, part_size=MIN_PART_SIZE, url_seconds=600)


class Recorder:
    """The S3 client, noting each call and the size of what it carried."""

    def __init__(self, client: Any):
        self._client = client
        self.calls: list[tuple[str, int | None]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**params: Any) -> Any:
            body = params.get("Body")
            self.calls.append((name, None if body is None else len(body)))
            return method(**params)

        return call

    def called(self, name: str) -> list[int | None]:
        return [size for called, size in self.calls if called == name]


def odd_chunks(total: int, seed: int = 7) -> list[bytes]:
    """Random bytes cut at random sizes, from a few bytes to more than a part."""
    rng = random.Random(seed)
    chunks, left = [], total
    while left:
        size = min(left, rng.choice([1, 1000, 65_537, 3 * MiB + 11, 7 * MiB + 3]))
        chunks.append(rng.randbytes(size))
        left -= size
    return chunks


def stored_object(reader: Any, s3_uri: str) -> dict[str, Any]:
    bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
    return reader.get_object(Bucket=bucket, Key=key)


def open_uploads(s3: Any) -> list[dict[str, Any]]:
    return s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def test_a_stream_of_odd_chunks_goes_up_in_full_parts_with_its_hash(
    store: S3ResultStore, s3: Any, reader: Any, recorder: Recorder
) -> None:
    chunks = odd_chunks(20 * MiB + 12_345)
    data = b"".join(chunks)

    stored = store.put_stream("job-1", "subscribers.csv", iter(chunks), "text/csv")

    assert (stored.name, stored.s3_uri) == ("subscribers.csv", f"s3://{BUCKET}/results/job-1/subscribers.csv")
    assert (stored.size, stored.sha256, stored.content_type) == (len(data), hashlib.sha256(data).hexdigest(), "text/csv")
    # memory stays bounded: every part but the last is exactly one part_size, whatever the chunks
    assert recorder.called("upload_part") == [MIN_PART_SIZE] * 4 + [12_345]
    obj = stored_object(reader, stored.s3_uri)
    assert obj["Body"].read() == data
    assert (obj["Metadata"], obj["ContentType"]) == ({"sha256": stored.sha256}, "text/csv")
    assert open_uploads(s3) == []


def test_a_stream_of_whole_parts_sends_no_empty_last_part(store: S3ResultStore, reader: Any, recorder: Recorder) -> None:
    data = random.Random(1).randbytes(2 * MIN_PART_SIZE)

    stored = store.put_stream("job-1", "two-parts.bin", iter([data]), "application/octet-stream")

    assert recorder.called("upload_part") == [MIN_PART_SIZE, MIN_PART_SIZE]
    assert stored_object(reader, stored.s3_uri)["Body"].read() == data


@pytest.mark.parametrize("chunks", [[b'{"a": 1}', b"\n", b'{"b": 2}\n'], []], ids=["small", "empty"])
def test_a_stream_smaller_than_a_part_is_one_plain_put(
    store: S3ResultStore, reader: Any, recorder: Recorder, chunks: list[bytes]
) -> None:
    data = b"".join(chunks)

    stored = store.put_stream("job-2", "result.jsonl", iter(chunks), "application/x-ndjson")

    assert [name for name, _ in recorder.calls] == ["put_object"]
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    obj = stored_object(reader, stored.s3_uri)
    assert (obj["Body"].read(), obj["Metadata"]) == (data, {"sha256": stored.sha256})


def test_a_broken_stream_leaves_no_object_and_no_open_upload(store: S3ResultStore, s3: Any) -> None:
    def breaks_midway() -> Iterator[bytes]:
        yield from odd_chunks(12 * MiB)
        raise ConnectionError("vendor hung up")

    with pytest.raises(ConnectionError, match="vendor hung up"):
        store.put_stream("job-3", "result.csv", breaks_midway(), "text/csv")

    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="results/job-3/")["KeyCount"] == 0
    assert open_uploads(s3) == []


def test_past_the_copy_limit_the_hash_is_not_put_in_metadata(
    store: S3ResultStore, reader: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_results, "_COPY_OBJECT_LIMIT", MIN_PART_SIZE)

    stored = store.put_stream("job-4", "big.bin", iter(odd_chunks(MIN_PART_SIZE + 1)), "application/octet-stream")

    assert stored_object(reader, stored.s3_uri)["Metadata"] == {}
    assert stored.size == MIN_PART_SIZE + 1


def test_bytes_and_other_prefixes(store: S3ResultStore, reader: Any) -> None:
    failed = store.put_bytes("job-5", "failed_records.jsonl", b'{"row": 3}\n', "application/x-ndjson")
    notice = store.put_object_at("webhooks/job-5/2025-03-01T09:00:00Z.json", b"{}", "application/json")

    assert failed.s3_uri == f"s3://{BUCKET}/results/job-5/failed_records.jsonl"
    assert notice.name == "2025-03-01T09:00:00Z.json"
    assert notice.s3_uri == f"s3://{BUCKET}/webhooks/job-5/2025-03-01T09:00:00Z.json"
    assert stored_object(reader, notice.s3_uri)["Metadata"] == {"sha256": hashlib.sha256(b"{}").hexdigest()}


def test_a_download_link_is_a_sigv4_presigned_get_that_fetches_the_file(s3: Any) -> None:
    with wired({"JOBS_TABLE": "t", "RESULTS_BUCKET": BUCKET, "EVENT_BUS_NAME": "e", "DOWNLOAD_URL_SECONDS": "900"}) as wiring:
        store = wiring.result_store()
    stored = store.put_bytes("job-6", "result.json", b'{"count": 2}', "application/json")

    url = store.download_url(stored.s3_uri)

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert (parts.scheme, parts.path) == ("https", "/results/job-6/result.json")
    assert BUCKET in parts.netloc
    assert (query["X-Amz-Algorithm"], query["X-Amz-Expires"]) == (["AWS4-HMAC-SHA256"], ["900"])
    # moto serves the GET (it does not check signatures: the shape above is what proves SigV4)
    response = requests.get(url, timeout=5)
    assert (response.status_code, response.content) == (200, b'{"count": 2}')


def test_the_part_size_cannot_be_below_s3s_minimum(s3: Any) -> None:
    with pytest.raises(ValueError):
        S3ResultStore(BUCKET, s3, part_size=MIN_PART_SIZE - 1)


# --- what the fake must share ------------------------------------------------------------------


@pytest.fixture(params=["s3", "memory"])
def any_store(request: pytest.FixtureRequest) -> ResultStore:
    if request.param == "memory":
        return InMemoryResultStore(bucket=BUCKET)
    return S3ResultStore(BUCKET, request.getfixturevalue("s3"))


def test_both_stores_describe_a_stream_alike(any_store: ResultStore) -> None:
    stored = any_store.put_stream("job-7", "out.csv", iter([b"a,b\n", b"1,2\n"]), "text/csv")

    assert stored.model_dump() == {
        "name": "out.csv",
        "s3_uri": f"s3://{BUCKET}/results/job-7/out.csv",
        "size": 8,
        "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest(),
        "content_type": "text/csv",
    }
    assert any_store.download_url(stored.s3_uri).startswith("https://")


@pytest.mark.parametrize(
    "s3_uri",
    [
        "s3://someone-elses-bucket/results/job-1/result.json",
        f"s3://{BUCKET}/webhooks/job-1/notice.json",
        f"https://{BUCKET}.s3.amazonaws.com/results/job-1/result.json",
        f"{BUCKET}/results/job-1/result.json",
    ],
)
def test_both_stores_refuse_to_sign_anything_but_their_results(any_store: ResultStore, s3_uri: str) -> None:
    with pytest.raises(ValueError):
        any_store.download_url(s3_uri)
