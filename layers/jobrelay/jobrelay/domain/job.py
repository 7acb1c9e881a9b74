"""The job: what is stored, and what the API shows of it.

`Job` is the whole stored record. Fields that must never leave the backend (the webhook token's hash,
the Step Functions task token) are marked `exclude=True`, so no dump meant for users can carry them;
the DynamoDB adapter stores them explicitly.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobrelay.domain.bulk_import import ImportState
from jobrelay.domain.reconciliation import Reconciliation
from jobrelay.domain.status import JobStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


# Where a job stands, in the order a job goes through them (services/progress.py sets each).
Phase = Literal["queued", "starting", "staging", "waiting", "collecting", "finished"]
# What ends a wait: a free slot of the account's concurrency limit, the vendor's completion webhook
# (polled as a fallback), or our own polling with backoff.
WaitingOn = Literal["slot", "webhook", "polling"]


class Progress(BaseModel):
    """Fields may be added, never renamed (api_models: clients rely on these names)."""

    percent: int | None = Field(default=None, ge=0, le=100)
    counts: dict[str, int] = Field(default_factory=dict, description="the vendor's own counts, as it last reported them")
    records: dict[str, int] = Field(
        default_factory=dict, description="our own counts: records read, refused (never sent), sent, written, failed"
    )
    note: str | None = Field(default=None, description="where the job stands, in words")
    phase: Phase | None = Field(
        default=None, description="queued, starting, staging (imports), waiting (for the vendor), collecting, finished"
    )
    waiting_since: datetime | None = Field(
        default=None, description="while queued or waiting: when the wait began (for a slot; since the vendor got the job)"
    )
    waiting_on: WaitingOn | None = Field(
        default=None, description="what ends the wait: a free slot, the vendor's webhook (polled as a fallback), polling"
    )
    vendor_status: str | None = Field(default=None, description="the vendor's last status word, as it said it")
    elapsed_seconds: int | None = Field(
        default=None, description="seconds since waiting_since, computed when the job is read (never stored)"
    )


class StoredFile(BaseModel):
    """A file we wrote to S3, with what a user needs to trust it."""

    name: str
    s3_uri: str
    size: int
    sha256: str
    content_type: str = "application/json"


class JobResult(BaseModel):
    s3_uri: str
    size: int
    sha256: str
    files: list[StoredFile] = Field(default_factory=list)


class JobError(BaseModel):
    code: str
    message: str


class TimelineEvent(BaseModel):
    at: datetime = Field(default_factory=utcnow)
    event: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ScheduleLink(BaseModel):
    """The schedule that submitted a job, and which of its runs (the scheduled time) it is."""

    name: str
    scheduled_time: datetime


class WebhookNotice(BaseModel):
    """What a vendor's completion webhook said, as far as its reader (the vendor manifest's
    webhook_reader) could tell; every field may be missing. Only a hint: the next poll cross-checks it."""

    jobid: str | None = None
    status: str | None = None
    result_url: str | None = None  # a vendor's capability link: the notice is backend-only
    raw_s3_uri: str | None = None  # where the payload as received is kept


class Job(BaseModel):
    model_config = ConfigDict(use_enum_values=False)

    @model_validator(mode="before")
    @classmethod
    def _items_of_earlier_versions(cls, data: Any) -> Any:
        """A job stored before the typed fields keeps going after a deploy: an import's `checkpoint`
        is its import state (dropping it would stage the records again), `last_status` in its vendor
        reference its vendor status, and the credentials in that reference its vendor secrets."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "checkpoint" in data:
            legacy = data.pop("checkpoint")
            data.setdefault("import_state", legacy)
        vendor_ref = data.get("vendor_ref")
        if isinstance(vendor_ref, dict):
            if "last_status" in vendor_ref:
                data.setdefault("vendor_status", vendor_ref["last_status"])
            # What the API used to hide by name (a result link, an import's access token) is a secret.
            moved = {k: v for k, v in vendor_ref.items() if k.endswith(("_url", "_token"))}
            data["vendor_ref"] = {k: v for k, v in vendor_ref.items() if k != "last_status" and k not in moved}
            if moved:
                data["vendor_secrets"] = {**moved, **(data.get("vendor_secrets") or {})}
        return data

    job_id: str
    operation: str
    vendor: str
    account: str = "default"
    status: JobStatus = JobStatus.SUBMITTED
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    deadline_at: datetime
    params: dict[str, Any] = Field(default_factory=dict)
    callback_url: str | None = None
    schedule: ScheduleLink | None = None  # set when a schedule submitted the job
    progress: Progress = Field(default_factory=Progress)
    # The vendor adapter's reference to the job's work there (jobrelay.domain.vendor_ref.VendorRef),
    # without its secret fields, which are in `vendor_secrets`.
    vendor_ref: dict[str, Any] = Field(default_factory=dict)
    # When the vendor's side began (the async start, the import's run), and its last status word.
    vendor_started_at: datetime | None = None
    vendor_status: str | None = None
    result: JobResult | None = None
    # The result checked against the vendor's counts (set by Collect): SUCCEEDED only when complete.
    reconciliation: Reconciliation | None = None
    error: JobError | None = None
    execution_arn: str | None = None
    # When the call that creates the job's work at the vendor (an async start, an import's opening)
    # was sent. A Start that finds it set with nothing created cannot know whether the vendor got
    # it, and never sends it again (VendorOutcomeUnknown).
    start_sent_at: datetime | None = Field(default=None, exclude=True)
    # Backend-only: never shown, never logged.
    vendor_secrets: dict[str, Any] = Field(default_factory=dict, exclude=True)
    webhook_token_sha256: str | None = Field(default=None, exclude=True)
    task_token: str | None = Field(default=None, exclude=True)
    # The vendor's last webhook: when it came and what it said (result link, status, where the raw
    # payload is in S3). A webhook newer than `last_polled_at` wakes the next wait at once.
    webhook_received_at: datetime | None = Field(default=None, exclude=True)
    webhook_notice: WebhookNotice | None = Field(default=None, exclude=True)
    last_polled_at: datetime | None = Field(default=None, exclude=True)
    polls: int = Field(default=0, exclude=True)
    # The id of the request that submitted the job (the API's request id, the schedule run's
    # invocation): every step logs it, so one search finds a job's whole story. Backend-only.
    correlation_id: str | None = Field(default=None, exclude=True)
    # Bulk imports: where staging stands, so a retried or restarted step resumes after the last batch
    # the vendor acknowledged.
    import_state: ImportState | None = Field(default=None, exclude=True)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def webhook_pending(self) -> bool:
        """A webhook came after the last poll (or before any): it has not been acted on yet."""
        if self.webhook_received_at is None:
            return False
        return self.last_polled_at is None or self.webhook_received_at > self.last_polled_at


class JobPatch(BaseModel):
    """Fields to change together with (or without) a status transition. Only fields explicitly set
    are written, so `JobPatch(progress=...)` leaves every other attribute alone."""

    progress: Progress | None = None
    vendor_ref: dict[str, Any] | None = None
    vendor_secrets: dict[str, Any] | None = None
    vendor_started_at: datetime | None = None
    vendor_status: str | None = None
    result: JobResult | None = None
    reconciliation: Reconciliation | None = None
    error: JobError | None = None
    execution_arn: str | None = None
    start_sent_at: datetime | None = None
    webhook_token_sha256: str | None = None
    task_token: str | None = None
    webhook_received_at: datetime | None = None
    webhook_notice: WebhookNotice | None = None
    last_polled_at: datetime | None = None
    polls: int | None = None
    import_state: ImportState | None = None

    def fields(self) -> dict[str, Any]:
        """The explicitly set fields, as plain JSON-ready values (backend-only fields included)."""
        return {name: _plain(getattr(self, name)) for name in self.model_fields_set}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Transition:
    """What a transition attempt did: `changed` is False when the guard failed (a lost race or an
    already terminal job); `job` is then the item as the winner left it."""

    job: Job
    changed: bool


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    cursor: dict[str, Any] | None  # the store's own position; the API makes it an opaque token
