"""The HTTP API's bodies (DESIGN.md, HTTP API): what clients send and what they get back.

Fields may be added, never renamed: clients, tests and the CLI rely on these names.
"""

import ipaddress
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from jobrelay.domain.job import JobError, Progress, ScheduleLink, TimelineEvent
from jobrelay.domain.reconciliation import Reconciliation
from jobrelay.domain.status import JobStatus

MAX_JOB_TIMEOUT_SECONDS = 30 * 24 * 3600


def _check_callback_url(url: str) -> str:
    """Only https, except to a loopback host (the local stack). Link-local addresses (the cloud
    metadata service lives there) are refused outright: the callback runs inside our network."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError("callback_url must be an absolute https URL")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    if address is not None and address.is_link_local:
        raise ValueError("callback_url may not point at a link-local address")
    if parts.scheme == "http" and not loopback:
        raise ValueError("callback_url must use https (plain http is accepted only for localhost)")
    return url


CallbackUrl = Annotated[str, Field(max_length=2048), AfterValidator(_check_callback_url)]


class JobSubmission(BaseModel):
    """`POST /jobs`: which operation, its params (see `GET /operations` for each schema)."""

    model_config = ConfigDict(extra="forbid")

    operation: str = Field(min_length=1, max_length=100, examples=["pinpointe.newsletter_contact_data_summary"])
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"stat": "4711"}])
    account: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="vendor account to use")
    callback_url: CallbackUrl | None = Field(
        default=None, description="POSTed a signed job summary (Standard Webhooks) when the job ends"
    )
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=MAX_JOB_TIMEOUT_SECONDS, description="overall deadline; default from configuration"
    )


ScheduleName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="letters, digits, '.', '_' and '-' (EventBridge Scheduler's rule)",
        examples=["nightly-contact-summary"],
    ),
]


class ScheduleRequest(JobSubmission):
    """`POST /schedules`: a job (as `POST /jobs` takes it) submitted at every time of `cron` or
    `rate`, read in `timezone`. String params may hold date placeholders (`{{yesterday}}`, ...),
    resolved at each run's scheduled time in `timezone`."""

    name: ScheduleName
    # No `examples` here on purpose: a fuzzer that sends the documented examples would create a
    # schedule that fires for real in the local stack it is testing.
    cron: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="EventBridge cron: minutes hours day-of-month month day-of-week year, one of the two days '?'; "
        "e.g. '30 2 * * ? *' (02:30 every day)",
    )
    rate: str | None = Field(default=None, min_length=1, max_length=64, description="e.g. '1 day', '15 minutes'")
    timezone: str = Field(default="UTC", min_length=1, max_length=64, examples=["Europe/Dublin"])
    description: str | None = Field(default=None, max_length=512)
    enabled: bool = True

    @model_validator(mode="after")
    def _cron_or_rate(self):
        if (self.cron is None) == (self.rate is None):
            raise ValueError("give exactly one of 'cron' and 'rate'")
        return self

    def job(self) -> JobSubmission:
        return JobSubmission.model_validate(self.model_dump(include=set(JobSubmission.model_fields)))


class ScheduleRunView(BaseModel):
    scheduled_time: datetime
    fired_at: datetime
    job_id: str | None = Field(description="the job submitted for this run; null when none could be")
    status: JobStatus | None = Field(description="the job's status now; null when there is no job (any more)")
    error: JobError | None = Field(default=None, description="why no job was submitted")


class ScheduleView(BaseModel):
    name: str
    cron: str | None = None
    rate: str | None = None
    expression: str = Field(description="as EventBridge Scheduler holds it: cron(...) or rate(...)")
    timezone: str
    enabled: bool
    description: str | None = None
    operation: str
    params: dict[str, Any] = Field(description="as given, placeholders unresolved")
    account: str
    callback_url: str | None = None
    timeout_seconds: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_runs: list[ScheduleRunView] | None = Field(
        default=None, description="the newest runs first (GET /schedules/{name} only)"
    )


class ScheduleList(BaseModel):
    schedules: list[ScheduleView]


class UploadRequest(BaseModel):
    """`POST /uploads`: the name of the records file you are about to upload."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255, examples=["preferences-2026-11-22.jsonl"])


class UploadTicket(BaseModel):
    """Where to PUT the file (send exactly `headers` with it), and how to name it in a job."""

    s3_uri: str
    upload_url: str
    headers: dict[str, str]
    expires_at: datetime


class FileView(BaseModel):
    name: str
    s3_uri: str
    size: int
    sha256: str
    download_url: str


class ResultView(BaseModel):
    s3_uri: str
    size: int
    sha256: str
    download_url: str
    files: list[FileView] = Field(default_factory=list)


class JobView(BaseModel):
    job_id: str
    operation: str
    account: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    deadline_at: datetime
    progress: Progress
    vendor_ref: dict[str, Any]
    callback_url: str | None = None
    schedule: ScheduleLink | None = Field(default=None, description="the schedule (and run) that submitted the job")
    result: ResultView | None = None
    reconciliation: Reconciliation | None = Field(
        default=None,
        description="the result checked against the vendor's own counts (once collected): SUCCEEDED only when "
        "every check agrees and nothing is missing; otherwise PARTIAL, with `shortfall` saying what and why",
    )
    error: JobError | None = None
    timeline: list[TimelineEvent] | None = None


class JobList(BaseModel):
    jobs: list[JobView]
    next: str | None = Field(default=None, description="pass as ?next= for the following page")


class OperationView(BaseModel):
    name: str
    vendor: str
    description: str
    params_schema: dict[str, Any]


class OperationList(BaseModel):
    operations: list[OperationView]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail
