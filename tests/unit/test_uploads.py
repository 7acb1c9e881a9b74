from datetime import UTC, datetime

import pytest

from jobrelay.adapters.s3_uploads import S3Uploads
from jobrelay.api.models import UploadRequest
from jobrelay.services.uploads import UploadService


class RecordingS3:
    def __init__(self):
        self.presigned = []

    def generate_presigned_url(self, operation, Params, ExpiresIn):
        self.presigned.append((operation, Params, ExpiresIn))
        return f"https://bucket.s3.example.test/{Params['Key']}?sig"


NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("filename", "stored_as", "content_type"),
    [
        ("preferences.jsonl", "preferences.jsonl", "application/x-ndjson"),
        ("C:\\exports\\Nov 22 (final).CSV", "Nov-22-final-.CSV", "text/csv"),
        ("../../etc/passwd", "passwd", "application/octet-stream"),
        ("...", "records", "application/octet-stream"),
    ],
)
def test_a_ticket_names_a_fresh_key_under_uploads_with_a_safe_name(filename, stored_as, content_type):
    s3 = RecordingS3()
    ticket = UploadService(S3Uploads("bucket", s3), now=lambda: NOW).create(UploadRequest(filename=filename))

    key = ticket.s3_uri.removeprefix("s3://bucket/")
    assert key.startswith("uploads/2026/11/22/") and key.endswith("/" + stored_as)
    assert ticket.headers == {"Content-Type": content_type}
    assert s3.presigned == [("put_object", {"Bucket": "bucket", "Key": key, "ContentType": content_type}, 3600)]
    assert ticket.expires_at.isoformat() == "2026-11-22T11:00:00+00:00"


def test_two_uploads_of_the_same_file_never_share_a_key():
    service = UploadService(S3Uploads("bucket", RecordingS3()), now=lambda: NOW)
    first, second = (service.create(UploadRequest(filename="a.csv")) for _ in range(2))
    assert first.s3_uri != second.s3_uri
