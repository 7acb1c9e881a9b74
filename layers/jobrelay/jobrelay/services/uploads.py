"""`POST /uploads`: where to PUT a new records file, and the s3_uri to name it by in a job."""

import re
import secrets
from collections.abc import Callable
from datetime import datetime

from jobrelay.api.models import UploadRequest, UploadTicket
from jobrelay.domain.job import utcnow
from jobrelay.ports import Uploads

CONTENT_TYPES = {
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
    ".json": "application/x-ndjson",
    ".csv": "text/csv",
}


class UploadService:
    def __init__(self, uploads: Uploads, now: Callable[[], datetime] = utcnow):
        self._uploads = uploads
        self._now = now

    def create(self, request: UploadRequest) -> UploadTicket:
        now = self._now()
        name = _safe_name(request.filename)
        # A random folder per upload: names never collide and a URI cannot be guessed from another.
        path = f"{now:%Y/%m/%d}/{secrets.token_urlsafe(12)}/{name}"
        content_type = CONTENT_TYPES.get(_suffix(name), "application/octet-stream")
        s3_uri, url, expires_at = self._uploads.presign_put(path, content_type, now)
        return UploadTicket(s3_uri=s3_uri, upload_url=url, headers={"Content-Type": content_type}, expires_at=expires_at)


def _safe_name(filename: str) -> str:
    """The file's own name, kept readable but reduced to characters safe in an S3 key and a URL."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip(".-")
    return cleaned[:120] or "records"


def _suffix(name: str) -> str:
    return name[name.rfind(".") :].lower() if "." in name else ""
