"""The result store on S3 (template.yaml's ResultsBucket).

Results live under results/<job_id>/<name>; other prefixes (webhooks/<job_id>/..., for the notices
vendors send us) are written with `put_object_at`. Every object carries its SHA-256 as user metadata
(x-amz-meta-sha256), so a file can be checked against the job item long after it was written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobrelay.domain.job import StoredFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part of a multipart upload but the last
RESULTS_PREFIX = "results/"
SHA256_METADATA = "sha256"

# CopyObject, which sets the metadata of a multipart result once its SHA-256 is known, stops at 5 GiB.
_COPY_OBJECT_LIMIT = 5 * 1024 * MiB


class S3ResultStore:
    """ResultStore over the S3 client. Streams are uploaded with memory bounded by `part_size`."""

    def __init__(self, bucket: str, client: S3Client, *, part_size: int = 8 * MiB, url_seconds: int = 3600):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part)")
        self._bucket = bucket
        self._client = client
        self._part_size = part_size
        self._url_seconds = url_seconds

    def put_stream(self, job_id: str, name: str, chunks: Iterable[bytes], content_type: str) -> StoredFile:
        key = result_key(job_id, name)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()  # never more than one part
        upload: _MultipartUpload | None = None
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                rest = memoryview(chunk)
                while rest:
                    room = self._part_size - len(buffer)
                    buffer += rest[:room]
                    rest = rest[room:]
                    if len(buffer) == self._part_size:
                        upload = upload or _MultipartUpload.start(self._client, self._bucket, key, content_type)
                        upload.add_part(buffer)
                        buffer.clear()
            if upload is None:  # it all fitted in one part: a plain PUT is cheaper
                return self._put(key, bytes(buffer), content_type)
            if buffer:
                upload.add_part(buffer)
            etag = upload.complete()
        except BaseException:
            # Whatever stopped the stream (the vendor, a timeout, a bug), leave no billed parts behind.
            if upload is not None:
                upload.abort()
            raise
        sha256 = digest.hexdigest()
        self._record_sha256(key, etag, size, sha256, content_type)
        return StoredFile(name=name, s3_uri=self._uri(key), size=size, sha256=sha256, content_type=content_type)

    def put_bytes(self, job_id: str, name: str, data: bytes, content_type: str) -> StoredFile:
        return self._put(result_key(job_id, name), data, content_type)

    def put_object_at(self, key: str, data: bytes, content_type: str) -> StoredFile:
        """Write `data` at any key of the bucket (webhook notices, for one); named after the key's
        last segment."""
        return self._put(key, data, content_type)

    def download_url(self, s3_uri: str) -> str:
        key = self._result_key_of(s3_uri)
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=self._url_seconds
        )

    def _put(self, key: str, data: bytes, content_type: str) -> StoredFile:
        sha256 = hashlib.sha256(data).hexdigest()
        self._client.put_object(
            Bucket=self._bucket, Key=key, Body=data, ContentType=content_type, Metadata={SHA256_METADATA: sha256}
        )
        name = key.rsplit("/", 1)[-1]
        return StoredFile(name=name, s3_uri=self._uri(key), size=len(data), sha256=sha256, content_type=content_type)

    def _record_sha256(self, key: str, etag: str, size: int, sha256: str, content_type: str) -> None:
        """Metadata is fixed when a multipart upload starts, before the hash is known: copy the
        object onto itself with it. Past CopyObject's limit the job item alone records the hash."""
        if size > _COPY_OBJECT_LIMIT:
            return
        self._client.copy_object(
            Bucket=self._bucket,
            Key=key,
            CopySource={"Bucket": self._bucket, "Key": key},
            CopySourceIfMatch=etag,  # the object we just wrote, not a later writer's
            MetadataDirective="REPLACE",
            Metadata={SHA256_METADATA: sha256},
            ContentType=content_type,
        )

    def _result_key_of(self, s3_uri: str) -> str:
        """The key of one of our results; anything else is refused rather than signed."""
        bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
        if not s3_uri.startswith("s3://") or bucket != self._bucket or not key.startswith(RESULTS_PREFIX):
            raise ValueError(f"not a result of this store: {s3_uri}")
        return key

    def _uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"


def result_key(job_id: str, name: str) -> str:
    if not job_id or not name:
        raise ValueError("a result needs a job id and a file name")
    return f"{RESULTS_PREFIX}{job_id}/{name}"


@dataclass
class _MultipartUpload:
    """One multipart upload, with CRC32 part checksums declared up front: S3 refuses parts whose
    checksum type differs from the upload's, and botocore now adds one to every part by default."""

    client: S3Client
    bucket: str
    key: str
    upload_id: str
    parts: list[CompletedPartTypeDef] = field(default_factory=list)

    @classmethod
    def start(cls, client: S3Client, bucket: str, key: str, content_type: str) -> _MultipartUpload:
        answer = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type, ChecksumAlgorithm="CRC32")
        return cls(client, bucket, key, answer["UploadId"])

    def add_part(self, data: bytearray) -> None:
        number = len(self.parts) + 1
        answer = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            # botocore sends any bytes-like body; the stubs name bytes only, and bytes(data) would copy the part.
            Body=data,  # type: ignore[arg-type]
            ChecksumAlgorithm="CRC32",
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer["ChecksumCRC32"]})

    def complete(self) -> str:
        answer = self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )
        return answer["ETag"]

    def abort(self) -> None:
        self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
