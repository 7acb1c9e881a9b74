"""Presigned PUTs for users' records files (the input of bulk imports), under uploads/ in the
results bucket: users send the file straight to S3, never through the API (its body limit is 256 KiB)."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UPLOAD_PREFIX = "uploads/"


class S3Uploads:
    def __init__(self, bucket: str, client: "S3Client", *, url_seconds: int = 3600):
        self._bucket = bucket
        self._client = client
        self._url_seconds = url_seconds

    def presign_put(self, path: str, content_type: str, now: datetime) -> tuple[str, str, datetime]:
        """(s3_uri, url, expires_at) for one PUT of `path` under uploads/, with that Content-Type."""
        key = UPLOAD_PREFIX + path
        url = self._client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self._bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=self._url_seconds,
        )
        return f"s3://{self._bucket}/{key}", url, now + timedelta(seconds=self._url_seconds)
