"""The job API's routes (DESIGN.md, HTTP API): parse the request, call the job service, shape the answer.

Powertools' resolver with validation and OpenAPI is the heaviest import of the system, so the API
function's handler (functions/api/app.py) loads this module on its first request, not at import.
"""

import logging
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from jobrelay import wiring
from jobrelay.api_models import (
    ErrorBody,
    JobList,
    JobSubmission,
    JobView,
    OperationList,
    ScheduleList,
    ScheduleRequest,
    ScheduleView,
    UploadRequest,
    UploadTicket,
)
from jobrelay.http_errors import answer_errors_as_json, validation_error_response

logger = logging.getLogger(__name__)
app = APIGatewayHttpResolver(enable_validation=True)
app.enable_swagger(path="/docs", title="jobrelay", description="Run vendors' asynchronous jobs through one API.")

JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ScheduleNameParam = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
ERRORS: dict[int | str, Any] = {
    status: {"description": text, "content": {"application/json": {"model": ErrorBody}}}
    for status, text in ((400, "bad request"), (404, "no such job"), (409, "conflict"), (422, "invalid request"))
}


def _json(status: int, model: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=model.model_dump_json(),
        headers=headers,
    )


@app.post("/jobs", summary="Submit a job", responses={202: {"description": "accepted", "content": {"application/json": {"model": JobView}}}, **ERRORS})
def submit_job(
    submission: JobSubmission,
    idempotency_key: Annotated[str | None, Header(alias="idempotency-key", min_length=1, max_length=255)] = None,
):
    service = wiring.job_service()
    if idempotency_key:
        request = {"account": submission.account, "key": idempotency_key, "submission": submission.model_dump(mode="json")}
        job_id = wiring.idempotent_submit()(request, app.lambda_context)
    else:
        job_id = service.submit(submission).job_id
    return _json(202, service.get(job_id), headers={"Location": f"/jobs/{job_id}"})


@app.get("/jobs", summary="List jobs, newest first", responses={200: {"description": "a page of jobs", "content": {"application/json": {"model": JobList}}}, **ERRORS})
def list_jobs(
    status: Annotated[str | None, Query(max_length=20, description="filter by status, e.g. RUNNING")] = None,
    operation: Annotated[str | None, Query(max_length=100, description="filter by operation name")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    next: Annotated[str | None, Query(max_length=4096, description="token from the previous page")] = None,
):
    page = wiring.job_service().list(status=status, operation=operation, limit=limit, next_token=next)
    return _json(200, page)


@app.get("/jobs/<job_id>", summary="Read a job", responses={200: {"description": "the job", "content": {"application/json": {"model": JobView}}}, **ERRORS})
def get_job(job_id: JobId):
    return _json(200, wiring.job_service().get(job_id))


@app.post("/jobs/<job_id>/cancel", summary="Cancel a job", responses={200: {"description": "the cancelled job", "content": {"application/json": {"model": JobView}}}, **ERRORS})
def cancel_job(job_id: JobId):
    return _json(200, wiring.job_service().cancel(job_id))


@app.post("/uploads", summary="Get a presigned PUT for a new records file", responses={201: {"description": "where to PUT the file", "content": {"application/json": {"model": UploadTicket}}}, **ERRORS})
def create_upload(upload: UploadRequest):
    return _json(201, wiring.upload_service().create(upload))


@app.post("/schedules", summary="Create a schedule that submits a job at every time of its cron or rate", responses={201: {"description": "the schedule", "content": {"application/json": {"model": ScheduleView}}}, **ERRORS})
def create_schedule(request: ScheduleRequest):
    view = wiring.schedule_service().create(request)
    return _json(201, view, headers={"Location": f"/schedules/{view.name}"})


@app.get("/schedules", summary="List the schedules", responses={200: {"description": "every schedule", "content": {"application/json": {"model": ScheduleList}}}, **ERRORS})
def list_schedules():
    return _json(200, wiring.schedule_service().list())


@app.get("/schedules/<name>", summary="Read a schedule and its last runs", responses={200: {"description": "the schedule", "content": {"application/json": {"model": ScheduleView}}}, **ERRORS})
def get_schedule(name: ScheduleNameParam):
    return _json(200, wiring.schedule_service().get(name))


@app.delete("/schedules/<name>", summary="Delete a schedule (its jobs are kept)", responses={204: {"description": "deleted"}, **ERRORS})
def delete_schedule(name: ScheduleNameParam):
    wiring.schedule_service().delete(name)
    return Response(status_code=204, body="")


@app.get("/operations", summary="The operations and the JSON Schema of their params", responses={200: {"description": "the catalogue", "content": {"application/json": {"model": OperationList}}}})
def list_operations():
    from jobrelay.services.jobs import JobService

    return _json(200, JobService.operations())


@app.get("/openapi.json", include_in_schema=False)
def openapi_document():
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=app.get_openapi_json_schema(title="jobrelay"))


@app.exception_handler(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response:
    return validation_error_response(list(exc.errors()))


answer_errors_as_json(app, logger)
