"""The job API's routes (docs/DESIGN.md, HTTP API): parse the request, call the job service, shape the answer.

Powertools' resolver with validation and OpenAPI is the heaviest import of the system, so the API
function's handler (functions/api/app.py) loads this module on its first request, not at import.
"""

import logging
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader
from pydantic import AfterValidator, BeforeValidator

from jobrelay import wiring
from jobrelay.api.errors import answer_errors_as_json, validation_error_response
from jobrelay.api.models import (
    ErrorBody,
    JobList,
    JobSubmission,
    JobView,
    OperationList,
    ScheduleList,
    ScheduleRequest,
    ScheduleUpdate,
    ScheduleView,
    UploadRequest,
    UploadTicket,
    VendorCallList,
    submission_variants,
)
from jobrelay.api.resolver import JobApi
from jobrelay.domain.ids import JOB_ID_MAX_LENGTH, JOB_ID_PATTERN
from jobrelay.domain.schedule import SCHEDULE_NAME_PATTERN, SCHEDULE_NAME_RULE, check_schedule_name
from jobrelay.domain.status import JobStatus
from jobrelay.operations import OPERATIONS

logger = logging.getLogger(__name__)
app = JobApi()
app.enable_swagger(path="/docs")

JobId = Annotated[str, Path(min_length=1, max_length=JOB_ID_MAX_LENGTH, pattern=JOB_ID_PATTERN, description="the job's id")]
# As ScheduleName in the body: the rule checked once, by check_schedule_name, which says it in words.
ScheduleNameParam = Annotated[
    str,
    Path(
        description=f"the schedule's name: {SCHEDULE_NAME_RULE}",
        json_schema_extra={"pattern": SCHEDULE_NAME_PATTERN, "minLength": 1, "maxLength": 64},
    ),
    AfterValidator(check_schedule_name),
]

# What each error status means, for the routes that can answer it. (Reading a body can give 400,
# 413 and 415 on every route that takes one: jobrelay.api.resolver adds those.)
ERROR_TEXT = {
    400: "a bad `next` token (INVALID_NEXT_TOKEN)",
    404: "not found (NOT_FOUND)",
    409: "conflict",
    422: "the request is not valid (INVALID_REQUEST): `details` lists each field and what is wrong with it",
    503: "the job could not be started (UNAVAILABLE): it is marked FAILED; submit it again",
}


def errors(*statuses: int, **texts: str) -> dict[int, OpenAPIResponse]:
    """Error responses in our shape; `texts` (`e404="no such job"`) says what one means on this route."""
    return {
        status: {
            "description": texts.get(f"e{status}", ERROR_TEXT[status]),
            "content": {"application/json": {"model": ErrorBody}},
        }
        for status in statuses
    }


RETRY_AFTER: dict[str, OpenAPIResponseHeader] = {
    "Retry-After": {"description": "seconds to wait before asking again", "schema": {"type": "integer", "minimum": 1}}
}
LOCATION: dict[str, OpenAPIResponseHeader] = {
    "Location": {"description": "the job's path: `/jobs/{job_id}`", "schema": {"type": "string"}}
}


SubmissionBody = Annotated[
    JobSubmission,
    # Read by JobSubmission as ever; documented as one schema per operation (api_models.submission_variants).
    BeforeValidator(lambda body: body, json_schema_input_type=submission_variants()),
    Body(
        description="the operation and its params; each operation's params schema is also in GET /operations",
        openapi_examples={
            op.name: {"summary": op.description.split(" (")[0], "value": {"operation": op.name, "params": op.example_params}}
            for op in OPERATIONS.values()
            if op.example_params is not None
        },
    ),
]


def _json(status: int, model: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=model.model_dump_json(),
        headers=headers,
    )


@app.post(
    "/jobs",
    summary="Submit a job",
    description="Stores the job and starts it; follow it with GET /jobs/{job_id} (the `Location`), or be told when it "
    "ends (`callback_url`, or the EventBridge event). The params are checked against the operation's schema before "
    "anything starts, and a bulk import's `source` must be a file under `uploads/` (from POST /uploads) or "
    "`incoming/` of the results bucket that exists and is not empty. With `Idempotency-Key`, the same key and body "
    "within 24 hours return the first job; the same key with another body is a 409.",
    tags=["jobs"],
    operation_id="submitJob",
    responses={
        202: {
            "description": "accepted: the job as stored",
            "headers": LOCATION,
            "content": {"application/json": {"model": JobView}},
        },
        **errors(
            422,
            503,
            e422="the operation, its params (`details` names each field) or the records file (`params.source`) is not valid",
        ),
        409: {
            **errors(
                409,
                e409="this Idempotency-Key was used with another body (IDEMPOTENCY_KEY_REUSED), or its first request is "
                "still creating the job (IDEMPOTENCY_IN_PROGRESS: ask again after the `Retry-After` header's seconds, "
                "which only that answer has)",
            )[409],
            "headers": RETRY_AFTER,
        },
    },
)
def submit_job(
    submission: SubmissionBody,
    idempotency_key: Annotated[
        str | None,
        Header(alias="idempotency-key", min_length=1, max_length=255, description="dedupes retries of this submission"),
    ] = None,
):
    service = wiring.job_service()
    job_id = service.submit(submission, idempotency_key=idempotency_key).job_id
    return _json(202, service.get(job_id), headers={"Location": f"/jobs/{job_id}"})


@app.get(
    "/jobs",
    summary="List jobs, newest first",
    description="Every filter given must match. `status` and `operation` are read in any casing; any other query "
    "parameter is refused (422). `next` (from the previous page) belongs to the filters it was made with: with "
    "other filters it is a 400.",
    tags=["jobs"],
    operation_id="listJobs",
    responses={
        200: {"description": "a page of jobs; `next` is null on the last", "content": {"application/json": {"model": JobList}}},
        **errors(400, 422, e422="an unknown status or operation, a limit out of range, or an unknown query parameter"),
    },
)
def list_jobs(
    status: Annotated[
        str | None, Query(max_length=20, description=f"one of {', '.join(s.value for s in JobStatus)} (any casing)")
    ] = None,
    operation: Annotated[
        str | None, Query(max_length=100, description="an operation's name (GET /operations), any casing")
    ] = None,
    account: Annotated[
        str | None,
        # An account's own rule (JobSubmission.account): one no job can have, `?account=` above all, is
        # refused here rather than sent to DynamoDB, which refuses an empty key (a 500).
        Query(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the vendor account the jobs were submitted for (exact)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="jobs per page")] = 20,
    next: Annotated[str | None, Query(max_length=4096, description="the previous page's `next`")] = None,
):
    page = wiring.job_service().list(status=status, operation=operation, account=account, limit=limit, next_token=next)
    return _json(200, page)


@app.get(
    "/jobs/<job_id>",
    summary="Read a job",
    description="Its status, progress (the vendor's counts and ours, live), vendor reference, result (with presigned "
    "`download_url`s, valid for an hour), reconciliation, error and timeline.",
    tags=["jobs"],
    operation_id="getJob",
    responses={
        200: {"description": "the job", "content": {"application/json": {"model": JobView}}},
        **errors(404, 422, e404="no such job", e422="not a job id"),
    },
)
def get_job(job_id: JobId):
    return _json(200, wiring.job_service().get(job_id))


@app.post(
    "/jobs/<job_id>/cancel",
    summary="Cancel a job",
    description="Marks it CANCELLED, stops its execution and aborts it at the vendor where the vendor allows it. "
    "Cancelling a cancelled job is fine (200); a job that already ended otherwise is a 409.",
    tags=["jobs"],
    operation_id="cancelJob",
    responses={
        200: {"description": "the cancelled job", "content": {"application/json": {"model": JobView}}},
        **errors(404, 409, 422, e404="no such job", e409="the job has already ended", e422="not a job id"),
    },
)
def cancel_job(job_id: JobId):
    return _json(200, wiring.job_service().cancel(job_id))


@app.get(
    "/jobs/<job_id>/vendor-calls",
    summary="Read a job's vendor call log",
    description="Every HTTP exchange with the vendor during the job (`direction: out`) and every webhook the job "
    "received (`in`), oldest first: time, step, method, host, path and query, status, latency, headers and a summary "
    "of each body (size, SHA-256, the first characters). Credentials, tokens, signatures and capability-URL tokens "
    "are masked (`***`) everywhere; large bodies (result files, stage batches) are never copied whole. A finished "
    "job's log is also its `vendor_calls.jsonl` result file.",
    tags=["jobs"],
    operation_id="listVendorCalls",
    responses={
        200: {
            "description": "a page of calls; `next` is null on the last",
            "content": {"application/json": {"model": VendorCallList}},
        },
        **errors(400, 404, 422, e404="no such job", e422="not a job id, a limit out of range, or an unknown query parameter"),
    },
)
def list_vendor_calls(
    job_id: JobId,
    limit: Annotated[int, Query(ge=1, le=100, description="calls per page")] = 50,
    next: Annotated[str | None, Query(max_length=4096, description="the previous page's `next`")] = None,
):
    return _json(200, wiring.job_service().vendor_calls(job_id, limit=limit, next_token=next))


@app.post(
    "/uploads",
    summary="Get a presigned PUT for a new records file",
    description="PUT the file to `upload_url` with exactly `headers` within the hour, then name it by `s3_uri` in a "
    "bulk import's `params.source`.",
    tags=["uploads"],
    operation_id="createUpload",
    responses={
        201: {"description": "where to PUT the file", "content": {"application/json": {"model": UploadTicket}}},
        **errors(422),
    },
)
def create_upload(
    upload: Annotated[
        UploadRequest,
        Body(openapi_examples={"jsonl": {"summary": "a JSON Lines file", "value": {"filename": "preferences.jsonl"}}}),
    ],
):
    return _json(201, wiring.upload_service().create(upload))


READ_ONLY = (
    "the schedule is defined in template.yaml (SCHEDULE_DEFINED_IN_TEMPLATE; its `defined_in` says so): change, pause "
    "or delete it there and deploy"
)

# Created paused (`enabled: false`), so trying it from the Swagger page or a fuzzer never leaves a
# schedule that fires for real; `PATCH {"enabled": true}` resumes it.
SCHEDULE_EXAMPLE = {
    "name": "example-nightly-summary",
    "cron": "30 2 * * ? *",
    "timezone": "Europe/Dublin",
    "operation": "pinpointe.newsletter_contact_data_summary",
    "params": {"stat": "4711", "startdate": "{{yesterday}}", "enddate": "{{today}}"},
    "description": "yesterday's opens and clicks of send 4711",
    "enabled": False,
}


@app.post(
    "/schedules",
    summary="Create a schedule that submits a job at every time of its cron or rate",
    description="The job (operation, params, account, callback_url, timeout_seconds, as POST /jobs takes them) is "
    "submitted at every time of `cron` or `rate`, read in `timezone`; string params may hold date placeholders "
    "(`{{yesterday}}`, `{{days_ago:7}}`, ...) resolved at each run. Everything is checked before the schedule "
    "exists, params against the operation with their placeholders resolved as of now.",
    operation_id="createSchedule",
    tags=["schedules"],
    responses={
        201: {"description": "the schedule (`Location` is its URL)", "content": {"application/json": {"model": ScheduleView}}},
        **errors(
            409,
            422,
            e409="a schedule of that name exists (SCHEDULE_EXISTS)",
            e422="an expression, time zone, operation or params that are not valid (`details` names each field)",
        ),
    },
)
def create_schedule(
    request: Annotated[
        ScheduleRequest, Body(openapi_examples={"nightly": {"summary": "a paused nightly export", "value": SCHEDULE_EXAMPLE}})
    ],
):
    view = wiring.schedule_service().create(request)
    return _json(201, view, headers={"Location": f"/schedules/{view.name}"})


@app.get(
    "/schedules",
    summary="List the schedules",
    description="Every schedule of this stack's schedule group, by name, each with its next fire times (`next_run_at`).",
    operation_id="listSchedules",
    tags=["schedules"],
    responses={
        200: {"description": "every schedule", "content": {"application/json": {"model": ScheduleList}}},
        **errors(422, e422="an unknown query parameter"),
    },
)
def list_schedules():
    return _json(200, wiring.schedule_service().list())


@app.get(
    "/schedules/<name>",
    summary="Read a schedule and its last runs",
    description="The schedule, its next fire times, and its last 10 runs, newest first, each with the job it "
    "submitted and that job's status now (or why it submitted none).",
    operation_id="getSchedule",
    tags=["schedules"],
    responses={
        200: {"description": "the schedule", "content": {"application/json": {"model": ScheduleView}}},
        **errors(404, 422, e404="no such schedule (NOT_FOUND)", e422="not a schedule name"),
    },
)
def get_schedule(name: ScheduleNameParam):
    return _json(200, wiring.schedule_service().get(name))


@app.patch(
    "/schedules/<name>",
    summary="Change, pause or resume a schedule",
    description="Give only the fields to change (`enabled: false` pauses it, `true` resumes it; `cron` or `rate` "
    "replaces the expression). The schedule that results is checked as POST /schedules checks a new one, "
    "params against the operation with their placeholders resolved as of now; its runs so far stay listed. A "
    "schedule template.yaml defines (`defined_in`) is changed there, not here (409).",
    operation_id="updateSchedule",
    tags=["schedules"],
    responses={
        200: {"description": "the changed schedule", "content": {"application/json": {"model": ScheduleView}}},
        **errors(
            404,
            409,
            422,
            e404="no such schedule (NOT_FOUND)",
            e409=READ_ONLY,
            e422="an empty patch, an unknown field, both cron and rate, or a schedule that would not be valid "
            "(`details` names each field)",
        ),
    },
)
def update_schedule(name: ScheduleNameParam, patch: ScheduleUpdate):
    return _json(200, wiring.schedule_service().update(name, patch))


@app.post(
    "/schedules/<name>/run",
    summary="Run a schedule now",
    description="Submits the schedule's job now, even if the schedule is paused, as a run scheduled at the current "
    "second (placeholders resolved then): the job links to the schedule and the run is listed in its last_runs. "
    "Asking again within the same second gives the same job. Schedules template.yaml defines can be run too.",
    operation_id="runSchedule",
    tags=["schedules"],
    responses={
        202: {
            "description": "accepted: the job as stored (`Location` is its URL)",
            "content": {"application/json": {"model": JobView}},
        },
        **errors(
            404,
            422,
            503,
            e404="no such schedule (NOT_FOUND)",
            e422="the schedule's job is not valid now, its placeholders resolved (`details` names each field); nothing was submitted",
        ),
    },
)
def run_schedule(name: ScheduleNameParam):
    job_id = wiring.schedule_service().run_now(name)
    return _json(202, wiring.job_service().get(job_id), headers={"Location": f"/jobs/{job_id}"})


@app.delete(
    "/schedules/<name>",
    summary="Delete a schedule (its jobs are kept)",
    description="The schedule stops firing and is gone from the scheduler; the jobs it submitted are kept. A schedule "
    "template.yaml defines (`defined_in`) is deleted there, not here (409).",
    operation_id="deleteSchedule",
    tags=["schedules"],
    responses={
        204: {"description": "deleted"},
        **errors(404, 409, 422, e404="no such schedule (NOT_FOUND)", e409=READ_ONLY, e422="not a schedule name"),
    },
)
def delete_schedule(name: ScheduleNameParam):
    wiring.schedule_service().delete(name)
    return Response(status_code=204, body="")


@app.get(
    "/operations",
    summary="The operations and the JSON Schema of their params",
    description="Every operation POST /jobs accepts, its vendor, what it does, and the JSON Schema its `params` "
    "must match (the same schemas as POST /jobs's body, one per operation).",
    tags=["operations"],
    operation_id="listOperations",
    responses={
        200: {"description": "the catalogue", "content": {"application/json": {"model": OperationList}}},
        **errors(422, e422="an unknown query parameter"),
    },
)
def list_operations():
    from jobrelay.services.jobs import JobService

    return _json(200, JobService.operations())


@app.get(
    "/openapi.json",
    summary="This document",
    description="The OpenAPI 3.1 document of the API; GET /docs shows it in Swagger UI (deployed, both are signed "
    "like every job route).",
    tags=["docs"],
    operation_id="getOpenApiDocument",
    responses={200: {"description": "the OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}},
)
def openapi_document():
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=app.get_openapi_json_schema(title="jobrelay")
    )


@app.exception_handler(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response:
    return validation_error_response(list(exc.errors()))


answer_errors_as_json(app, logger)
