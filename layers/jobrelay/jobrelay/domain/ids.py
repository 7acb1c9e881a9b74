"""Job ids: opaque, URL-safe, and sortable by creation time (handy in S3 listings and logs).

Python 3.13 has no uuid7 yet; this is the same idea (48-bit millisecond time + 80 random bits) in
Crockford base32, lower-case, 26 characters, prefixed so a job id is recognisable.

What a job id may look like where one comes in (a path of the API or of a webhook) is wider than
what we make, and defined once here: JOB_ID_PATTERN and JOB_ID_MAX_LENGTH (the API's path
parameter), `plausible_job_id` (the services, which look nothing else up).
"""

import hashlib
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

JOB_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
JOB_ID_MAX_LENGTH = 64
_JOB_ID = re.compile(r"[A-Za-z0-9_-]+")


def plausible_job_id(value: str) -> bool:
    """Whether `value` could be a job id at all (anything else is not looked up)."""
    return len(value) <= JOB_ID_MAX_LENGTH and _JOB_ID.fullmatch(value) is not None


def new_job_id(now_ms: int | None = None) -> str:
    return _encode(now_ms if now_ms is not None else time.time_ns() // 1_000_000, secrets.randbits(80))


def scheduled_job_id(schedule: str, scheduled_time: datetime) -> str:
    """The id of the job a schedule submits for its run at `scheduled_time`: the same for every
    delivery of that run (EventBridge Scheduler delivers at least once and retries), so a second
    delivery finds the first one's job instead of creating another. The 80 "random" bits are a hash
    of (schedule, scheduled time); the time part is the scheduled time, so ids still sort by time."""
    moment = scheduled_time.astimezone(UTC)
    digest = hashlib.sha256(f"{schedule}\n{moment.isoformat()}".encode()).digest()
    ms = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return _encode(ms, int.from_bytes(digest[:10]))


def _encode(ms: int, random_bits: int) -> str:
    value = (ms << 80) | random_bits
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "job_" + "".join(reversed(chars))
