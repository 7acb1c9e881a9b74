"""The vendor call log of a job: every HTTP exchange with a vendor during the job, and every webhook
the job received, as it is kept (redacted, bounded) and shown (GET /jobs/{job_id}/vendor-calls, the
`vendor_calls.jsonl` result file). Built by jobrelay.vendors.recording (calls out) and
jobrelay.services.webhooks (webhooks in); stored through the VendorCallLog port."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

VENDOR_CALLS_FILE = "vendor_calls.jsonl"
VENDOR_CALLS_CONTENT_TYPE = "application/x-ndjson"


class BodySummary(BaseModel):
    """A body as the log keeps it: never whole, always redacted."""

    size: int | None = Field(
        default=None, description="bytes (for a body not read to its end: the bytes read; none when not known)"
    )
    sha256: str | None = Field(default=None, description="of the whole body, when it was read to its end")
    content_type: str | None = None
    excerpt: str = Field(
        default="",
        description="the first characters (at most 1,000), every credential, token, signature and capability-URL token masked",
    )
    complete: bool = Field(default=True, description="false: the body was not read to its end (size counts what was)")


class VendorCall(BaseModel):
    """One exchange: a request we sent a vendor (`out`), or a webhook a vendor sent us (`in`)."""

    at: datetime = Field(description="when the request was sent (or the webhook arrived)")
    direction: Literal["out", "in"]
    step: str | None = Field(default=None, description="the job's step that made the call (start, stage, poll, ...)")
    method: str
    host: str | None = Field(default=None, description="the vendor's host (none for a webhook)")
    path: str = Field(description="the URL's path, capability tokens and known secrets masked")
    query: str | None = Field(default=None, description="the URL's query, secret values masked")
    status: int | None = Field(default=None, description="the HTTP status answered; none when no answer came")
    error: str | None = Field(
        default=None, description="what went wrong when no (whole) answer came: a timeout, a dropped connection"
    )
    latency_ms: float | None = Field(default=None, description="until the answer's status and headers arrived")
    duration_ms: float | None = Field(default=None, description="until the answer's body was read (or the exchange failed)")
    request_headers: dict[str, str] = Field(default_factory=dict, description="auth headers and secrets masked")
    response_headers: dict[str, str] = Field(default_factory=dict)
    request: BodySummary | None = None
    response: BodySummary | None = None

    def line(self) -> bytes:
        """The call as one JSON line of vendor_calls.jsonl."""
        return (self.model_dump_json() + "\n").encode()


@dataclass(frozen=True)
class VendorCallPage:
    """A page of a job's calls, oldest first; a cursor when more may follow."""

    calls: list[VendorCall]
    cursor: dict[str, Any] | None = None
