"""The HTTP API's bodies (docs/DESIGN.md, HTTP API): what clients send and what they get back.

Fields may be added, never renamed: clients, tests and the CLI rely on these names.
"""

import re
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    create_model,
    field_validator,
    model_validator,
)

from jobrelay.domain.job import JobError, Progress, ScheduleLink, TimelineEvent
from jobrelay.domain.reconciliation import Reconciliation
from jobrelay.domain.schedule import SCHEDULE_NAME_PATTERN, SCHEDULE_NAME_RULE, check_schedule_name
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_calls import VendorCall

MAX_JOB_TIMEOUT_SECONDS = 30 * 24 * 3600


def _check_callback_url(url: str) -> str:
    """Public https targets only, judged by what the host is however it is written (one rule for
    jobs and schedules: jobrelay.domain.callback_targets); plain http and loopback or private
    targets only where the stack allows local callbacks. A name is judged again by what it
    resolves to when the callback is sent."""
    # Imported with the first callback_url: these bodies are on the schedules function's cold start.
    from jobrelay.domain.callback_targets import parse_callback_url
    from jobrelay.settings import local_callbacks_allowed

    parse_callback_url(url, allow_local=local_callbacks_allowed())  # CallbackTargetRefused is a ValueError
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


# Checked by check_schedule_name, whose error names the rule in words; the pattern is in the schema
# for clients (and the fuzz test's generator), not enforced twice.
ScheduleName = Annotated[
    str,
    Field(
        description=f"{SCHEDULE_NAME_RULE}: one segment of the schedule's URL",
        examples=["nightly-contact-summary"],
        json_schema_extra={"pattern": SCHEDULE_NAME_PATTERN, "minLength": 1, "maxLength": 64},
    ),
    AfterValidator(check_schedule_name),
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


# The default of a patch field that cannot be null: None at run time, where it only marks the field
# as left out (model_fields_set says which were given). Typed Any, as the field's type has no None.
LEFT_OUT: Any = None


def _patch_schema(schema: dict[str, Any]) -> None:
    """A field left out is kept, so none has a default to document; and a patch changes something."""
    for field in schema.get("properties", {}).values():
        field.pop("default", None)
    schema["minProperties"] = 1


class ScheduleUpdate(BaseModel):
    """`PATCH /schedules/{name}`: the fields to change; the others are kept. The schedule that
    results is checked as `POST /schedules` checks a new one. `cron` or `rate` replaces the
    expression, whichever it was; `params` replaces the params whole. `description`,
    `callback_url` and `timeout_seconds` are removed by `null`; the other fields cannot be null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)

    # The limits repeat ScheduleRequest's for the OpenAPI document; the service validates the
    # merged schedule as a ScheduleRequest, so POST's rules are the ones that decide. The fields
    # that cannot be null are typed without None (`default=None` only marks them left out), so
    # an error names the field alone.
    enabled: bool = Field(default=LEFT_OUT, description="false pauses it, true resumes it")
    cron: str = Field(default=LEFT_OUT, min_length=1, max_length=256, description="as for POST /schedules")
    rate: str = Field(default=LEFT_OUT, min_length=1, max_length=64, description="as for POST /schedules")
    timezone: str = Field(default=LEFT_OUT, min_length=1, max_length=64)
    operation: str = Field(default=LEFT_OUT, min_length=1, max_length=100)
    params: dict[str, Any] = Field(default=LEFT_OUT, description="replaces the params whole")
    account: str = Field(default=LEFT_OUT, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    callback_url: CallbackUrl | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=MAX_JOB_TIMEOUT_SECONDS)
    description: str | None = Field(default=None, max_length=512)

    @field_validator("enabled", "cron", "rate", "timezone", "operation", "params", "account", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null (leave the field out to keep it)")
        return value

    @model_validator(mode="after")
    def _a_change_and_one_expression(self):
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        if {"cron", "rate"} <= self.model_fields_set:
            raise ValueError("give at most one of 'cron' and 'rate'")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, with their values (None for a field to remove)."""
        return self.model_dump(exclude_unset=True)


# A schedule's times are shown in its own time zone, with its offset (`2026-11-23T02:30:00+00:00`
# for Dublin in winter, where pydantic would write `Z`), as the {{now}} placeholder writes them.
ZonedTime = Annotated[datetime, PlainSerializer(lambda moment: moment.isoformat(), return_type=str, when_used="json")]


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
    defined_in: Literal["template.yaml"] | None = Field(
        default=None,
        description="`template.yaml` for a schedule the stack's template defines: read-only here (it can be read and "
        "run now; change or delete it in the template, then deploy); null for one made through this API",
    )
    last_runs: list[ScheduleRunView] | None = Field(
        default=None, description="the newest runs first (GET /schedules/{name} only)"
    )
    next_run_at: list[ZonedTime] | None = Field(
        default=None,
        description="the next times it fires (up to 5), in its time zone; [] when it is disabled or never fires "
        "again; null when jobrelay cannot read its expression (a schedule made outside jobrelay). For a rate, "
        "counted from the schedule's last change",
    )


class ScheduleList(BaseModel):
    schedules: list[ScheduleView]


class UploadRequest(BaseModel):
    """`POST /uploads`: the name of the records file you are about to upload."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255, examples=["preferences-2026-11-22.jsonl"])


class UploadTicket(BaseModel):
    """Where to PUT the file (send exactly `headers` with it), and how to name it in a job."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "s3_uri": "s3://jobrelay-results/uploads/2026/11/22/Qx7p2hW0aLk3/preferences-2026-11-22.jsonl",
                    "upload_url": "https://jobrelay-results.s3.amazonaws.com/uploads/2026/11/22/Qx7p2hW0aLk3/"
                    "preferences-2026-11-22.jsonl?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=...",
                    "headers": {"Content-Type": "application/x-ndjson"},
                    "expires_at": "2026-11-22T11:00:00Z",
                }
            ]
        }
    )

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


_JOB_EXAMPLE: dict[str, Any] = {
    "job_id": "job_01jd3q6w7v8x9y0z1a2b3c4d5e",
    "operation": "pinpointe.newsletter_contact_data_summary",
    "account": "default",
    "status": "SUCCEEDED",
    "created_at": "2026-11-22T10:00:00Z",
    "updated_at": "2026-11-22T10:04:12Z",
    "deadline_at": "2026-11-22T22:00:00Z",
    "progress": {
        "percent": 100,
        "counts": {},
        "records": {"written": 48},
        "note": "result stored and reconciled with the vendor's counts",
        "phase": "finished",
    },
    "vendor_ref": {"jobid": "123456789", "requestmethod": "GetNewsletterContactDataSummaryAsync"},
    "callback_url": None,
    "schedule": None,
    "result": {
        "s3_uri": "s3://jobrelay-results/results/job_01jd3q6w7v8x9y0z1a2b3c4d5e/result.json",
        "size": 48213,
        "sha256": "9f2c0a8e4b7d4c1f8a3e6b5d2c1f0e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e",
        "download_url": "https://jobrelay-results.s3.amazonaws.com/results/job_01jd3q6w7v8x9y0z1a2b3c4d5e/result.json?...",
        "files": [],
    },
    "reconciliation": {
        "ours": {"written": 48},
        "vendor": {"count": 48},
        "checks": [
            {"check": "records in result.json vs the file's count", "ours": 48, "vendor": 48, "agree": True, "note": None}
        ],
        "reconciled": True,
        "shortfall": [],
    },
    "error": None,
    "timeline": [{"at": "2026-11-22T10:00:00Z", "event": "submitted", "detail": {}}],
}


class JobView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_JOB_EXAMPLE]})

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
    model_config = ConfigDict(json_schema_extra={"examples": [{"jobs": [_JOB_EXAMPLE], "next": "eyJjIjp7fSwiZiI6W119"}]})

    jobs: list[JobView]
    next: str | None = Field(default=None, description="pass as ?next= for the following page")


_VENDOR_CALL_EXAMPLE: dict[str, Any] = {
    "at": "2025-03-01T09:00:01.250000Z",
    "direction": "out",
    "step": "start",
    "method": "POST",
    "host": "acme.mypinpointe.com",
    "path": "/apijson.php",
    "query": None,
    "status": 200,
    "error": None,
    "latency_ms": 182.4,
    "duration_ms": 183.0,
    "request_headers": {"content-type": "application/json"},
    "response_headers": {"content-type": "application/json"},
    "request": {
        "size": 212,
        "sha256": "9f2c...",
        "content_type": "application/json",
        "excerpt": '{"username": "acme", "usertoken": "***", "requesttype": "Lists", "requestmethod": "GetListSubscribersAsync"}',
        "complete": True,
    },
    "response": {
        "size": 64,
        "sha256": "41d8...",
        "content_type": "application/json",
        "excerpt": '{"status": "SUCCESS", "data": {"jobid": "8812"}}',
        "complete": True,
    },
}


class VendorCallList(BaseModel):
    """A page of a job's vendor call log, oldest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"calls": [_VENDOR_CALL_EXAMPLE], "next": None}]})

    calls: list[VendorCall]
    next: str | None = Field(default=None, description="pass as ?next= for the following page")


class OperationView(BaseModel):
    name: str
    vendor: str
    description: str
    params_schema: dict[str, Any]


class OperationList(BaseModel):
    operations: list[OperationView]


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, for programs: INVALID_REQUEST, INVALID_JSON, NOT_FOUND, CONFLICT, ...")
    message: str = Field(description="for people")
    details: Any = Field(
        default=None,
        description="for a 422, a list of {field, message}, one per problem; otherwise whatever helps (allowed values, ...)",
    )


class ErrorBody(BaseModel):
    """Every error the API answers, whatever its status."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "INVALID_REQUEST",
                        "message": "params are not valid for pinpointe.newsletter_contact_data_summary",
                        "details": [{"field": "params.stat", "message": "Field required"}],
                    }
                }
            ]
        }
    )

    error: ErrorDetail


def submission_variants() -> Any:
    """`POST /jobs` bodies as the OpenAPI document describes them: one schema per operation of the
    catalogue (jobrelay.operations), told apart by `operation`, each with its own params schema.

    Built from the catalogue, so an operation added there is documented with no edit here. Only the
    document uses it: requests are still read by JobSubmission (the same JSON is accepted as ever,
    and the job service checks the params, naming each field in its 422)."""
    from jobrelay.operations import OPERATIONS

    shared = {name: (field.annotation, field) for name, field in JobSubmission.model_fields.items()}
    variants = []
    for op in OPERATIONS.values():
        params_required = any(field.is_required() for field in op.params_model.model_fields.values())
        # Field definitions typed Any: create_model takes them as keyword arguments beside its own
        # (__config__, __doc__), and a Literal built at run time is no type mypy can name.
        fields: dict[str, Any] = {
            "operation": (Literal[op.name], Field(description="the operation (GET /operations lists them)")),
            "params": (op.params_model, Field() if params_required else Field(default_factory=dict)),
            **{name: spec for name, spec in shared.items() if name not in ("operation", "params")},
        }
        variants.append(
            create_model(
                "Submit" + "".join(part.capitalize() for part in re.split(r"[._]", op.name)),
                __config__=ConfigDict(extra="forbid", title=f"{op.name} job"),
                __doc__=op.description,
                **fields,
            )
        )
    return Annotated[Union[tuple(variants)], Field(discriminator="operation")]  # noqa: UP007 (built at runtime)
