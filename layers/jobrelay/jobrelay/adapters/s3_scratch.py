"""A job's working files (import line maps, failure parts) under imports/<job_id>/ in the results
bucket: small, written once per batch, read back when the job is collected."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SCRATCH_PREFIX = "imports/"


class S3Scratch:
    def __init__(self, bucket: str, client: "S3Client"):
        self._bucket = bucket
        self._client = client

    def put(self, job_id: str, name: str, data: bytes) -> None:
        self._client.put_object(Bucket=self._bucket, Key=self._key(job_id, name), Body=data)

    def get(self, job_id: str, name: str) -> bytes:
        try:
            return self._client.get_object(Bucket=self._bucket, Key=self._key(job_id, name))["Body"].read()
        except self._client.exceptions.NoSuchKey:
            raise KeyError(name) from None

    @staticmethod
    def _key(job_id: str, name: str) -> str:
        return f"{SCRATCH_PREFIX}{job_id}/{name}"
