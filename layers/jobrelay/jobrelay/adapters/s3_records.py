"""Records files for bulk imports, read from S3 (template.yaml's ResultsBucket). (The report of the
records that did not make it is written by services/bulk_imports.py, among the job's results.)

Users upload records files under incoming/ or uploads/ of our bucket. A job's params name the file
by its s3:// URI, so the URI is the user's input: anything outside those prefixes is refused, which
keeps an import from reading our results, webhook notices or another bucket.

A file is read with ranged GETs from any byte offset, so a retried step resumes where its checkpoint
says, and as a stream of chunks, so memory does not grow with the file. Pass the ETag the import
started with (`if_match`) and a file replaced in the meantime is refused rather than read from an
offset that now falls anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from jobrelay.domain.errors import RecordsFileChanged

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef, GetObjectRequestTypeDef, HeadObjectOutputTypeDef

MiB = 1024 * 1024
INCOMING_PREFIXES = ("incoming/", "uploads/")

_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})  # HEAD answers with a bare status
_CHANGED = frozenset({"PreconditionFailed", "412"})
_PAST_THE_END = "InvalidRange"


class S3RecordsSource:
    """Records files in `bucket`, under `prefixes` only."""

    def __init__(self, client: S3Client, bucket: str, *, prefixes: tuple[str, ...] = INCOMING_PREFIXES):
        self._client = client
        self._bucket = bucket
        self._prefixes = prefixes

    def head(self, s3_uri: str) -> int:
        """The file's size in bytes."""
        return self._head(s3_uri)["ContentLength"]

    def etag(self, s3_uri: str) -> str:
        """The file's current version, for `if_match`."""
        return self._head(s3_uri)["ETag"]

    def first_bytes(self, s3_uri: str, n: int, *, if_match: str | None = None) -> bytes:
        """Up to `n` bytes from the start of the file (fewer when it is smaller), to sniff it."""
        if n < 1:
            raise ValueError("ask for at least one byte")
        try:
            answer = self._get(s3_uri, f"bytes=0-{n - 1}", if_match)
        except _PastTheEnd:  # only an empty file has no byte 0
            return b""
        with closing(answer["Body"]) as body:
            return body.read()

    def open(self, s3_uri: str, start_offset: int = 0, chunk_size: int = MiB, *, if_match: str | None = None) -> Iterator[bytes]:
        """The file's bytes from `start_offset` to its end, in chunks of at most `chunk_size`. The
        GET is made now, so a missing or refused file fails here rather than at the first chunk."""
        if start_offset < 0:
            raise ValueError(f"an offset cannot be negative: {start_offset}")
        # S3 refuses any range of an empty file, "bytes=0-" included: from the start, ask for it all.
        byte_range = f"bytes={start_offset}-" if start_offset else None
        try:
            answer = self._get(s3_uri, byte_range, if_match)
        except _PastTheEnd:
            size = self.head(s3_uri)
            if start_offset == size:  # a checkpoint at the very end: nothing is left to read
                return iter(())
            raise ValueError(f"offset {start_offset} is past the end of {s3_uri} ({size} bytes)") from None
        return _chunks(answer["Body"], chunk_size)

    def _head(self, s3_uri: str) -> HeadObjectOutputTypeDef:
        key = self._key_of(s3_uri)
        with _readable_errors(s3_uri):
            return self._client.head_object(Bucket=self._bucket, Key=key)

    def _get(self, s3_uri: str, byte_range: str | None, if_match: str | None) -> GetObjectOutputTypeDef:
        params: GetObjectRequestTypeDef = {"Bucket": self._bucket, "Key": self._key_of(s3_uri)}
        if byte_range:
            params["Range"] = byte_range
        if if_match:
            params["IfMatch"] = if_match
        with _readable_errors(s3_uri):
            return self._client.get_object(**params)

    def _key_of(self, s3_uri: str) -> str:
        """The key of a records file of ours; anything else is refused rather than read."""
        bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
        where = " or ".join(f"s3://{self._bucket}/{prefix}" for prefix in self._prefixes)
        if not s3_uri.startswith("s3://") or bucket != self._bucket or not key.startswith(self._prefixes):
            raise ValueError(f"records files are read only from {where}, not from {s3_uri!r}")
        # S3 keys are literal: "uploads/../results/x" is no parent folder, but it would only confuse.
        if any(part in ("", ".", "..") for part in key.split("/")):
            raise ValueError(f"not a file's URI (empty, '.' or '..' in its path): {s3_uri!r}")
        return key


class _PastTheEnd(Exception):
    """S3 answered 416: the range starts at or after the end of the file."""


@contextmanager
def _readable_errors(s3_uri: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _NOT_FOUND:
            raise FileNotFoundError(f"no records file at {s3_uri}") from None
        if code in _CHANGED:
            raise RecordsFileChanged(f"{s3_uri} was replaced since the import started reading it") from None
        if code == _PAST_THE_END:
            raise _PastTheEnd from None
        raise


def _chunks(body: StreamingBody, chunk_size: int) -> Iterator[bytes]:
    # Closed however reading ends (a step stopping early included), so the connection is reused.
    with closing(body):
        yield from body.iter_chunks(chunk_size)
