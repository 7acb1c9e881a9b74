"""An Idempotency-Key's claim: the one job that a key names, per account, for 24 hours.

The job store writes a claim in the same all-or-nothing write as the job it names (JobStore.create),
so a key never names a job that does not exist, and two requests with the same key never both
create one: whichever write lands first is the first request, whatever crashed or timed out since.
"""

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

# How long a key names its job: the same key and body within it return that job.
IDEMPOTENCY_WINDOW = timedelta(hours=24)

# How long the first request can still be working on its job: the API function's Timeout (30 s in
# template.yaml, API Gateway's integration timeout too) bounds every request. Within it, a job whose
# execution has not started is in flight (a second request is told to come back, 409); past it,
# the first request is gone (a crash, a timeout) and the next one with the key starts the job.
IN_FLIGHT_LIMIT = timedelta(seconds=30)


class IdempotentRequest(BaseModel):
    """A request made with an Idempotency-Key: its account, its key, and the fingerprint of what it asked."""

    model_config = ConfigDict(frozen=True)

    account: str
    key: str
    fingerprint: str  # SHA-256 of the request (canonical JSON): the same key with another body is refused

    @classmethod
    def of(cls, account: str, key: str, request: Mapping[str, Any]) -> "IdempotentRequest":
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return cls(account=account, key=key, fingerprint=hashlib.sha256(canonical.encode()).hexdigest())

    def claim(self, job_id: str, now: datetime) -> "IdempotencyClaim":
        # Whole seconds: the time DynamoDB's TTL reads, so a claim reads back as it was written.
        return IdempotencyClaim(**self.model_dump(), job_id=job_id, expires_at=(now + IDEMPOTENCY_WINDOW).replace(microsecond=0))

    def asks_the_same_as(self, other: "IdempotentRequest") -> bool:
        return self.fingerprint == other.fingerprint


class IdempotencyClaim(IdempotentRequest):
    """A key's claim on its job, until `expires_at`; an expired claim is as good as none."""

    job_id: str
    expires_at: AwareDatetime

    def is_live(self, now: datetime) -> bool:
        return now < self.expires_at


def claim_key(account: str, key: str) -> str:
    """One fixed-size name per (account, key) for a store to keep the claim under: a key is any
    text of up to 255 characters (a `#` in it cannot run into the account)."""
    return hashlib.sha256(json.dumps([account, key]).encode()).hexdigest()
