"""Job ids: opaque, URL-safe, and sortable by creation time (handy in S3 listings and logs).

Python 3.13 has no uuid7 yet; this is the same idea (48-bit millisecond time + 80 random bits) in
Crockford base32, lower-case, 26 characters, prefixed so a job id is recognisable.
"""

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_job_id(now_ms: int | None = None) -> str:
    value = ((now_ms if now_ms is not None else time.time_ns() // 1_000_000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "job_" + "".join(reversed(chars))
