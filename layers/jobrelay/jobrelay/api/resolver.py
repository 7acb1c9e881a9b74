"""The resolver the job API runs on: Powertools' APIGatewayHttpResolver, made to read requests
generously, refuse them precisely, and describe itself (its OpenAPI document) as it behaves.

- A JSON body is read whatever its content type says, within bounds (jobrelay.api.bodies: its
  depth, its numbers); a body we cannot read is a 400 saying why when it claims to be JSON (or
  claims nothing) and a 415 (saying what to send) when it claims to be something else.
- Reading a request (query, headers, path, body, their validation) must answer any input: what it
  raises beyond the refusals above is input no refusal foresaw, so a 400 (UnreadableRequest), never
  a 500, and logged with its traceback, since a precise refusal is missing. What the route raises
  once the request has been read is a fault of ours: still a logged 500.
- A query parameter a route does not take is a 422 naming the ones it does take.
- The document: SigV4 as the security of every route, tags and readable operationIds by default,
  our error shape (ErrorBody) wherever Powertools would put its HTTPValidationError, the errors
  every body route can answer (400, 413, 415), the vendor webhook route (served by another
  function) and the signed callback we POST when a job ends (`webhooks`).

Loaded with jobrelay.api.routes, on the API function's first request (the cold-start budget).
"""

import json
import logging
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, OpenAPI, SecurityScheme, Tag
from pydantic import TypeAdapter

from jobrelay.api import bodies
from jobrelay.api.errors import MAX_BODY_BYTES, UnreadableRequest
from jobrelay.api.models import ErrorBody
from jobrelay.domain.errors import ServiceError

logger = logging.getLogger(__name__)

SIGV4 = "sigv4"
SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    SIGV4: APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS Signature Version 4 (deployed, every route but the vendor webhooks is AWS_IAM): sign "
        "each request for service `execute-api` with credentials allowed `execute-api:Invoke` on the API, e.g. "
        "with `awscurl --service execute-api` or any AWS SDK; the signature is the `Authorization` header (with "
        "`X-Amz-Date`, and `X-Amz-Security-Token` for temporary credentials). Swagger UI cannot compute it. "
        "The local stack does not check signatures.",
    )
}
TAGS: list[Tag | str] = [
    Tag(name="jobs", description="Submit, read, list and cancel jobs."),
    Tag(name="uploads", description="Presigned PUTs for the records files of bulk imports."),
    Tag(name="operations", description="The catalogue: every operation and the JSON Schema of its params."),
    Tag(name="schedules", description="Recurring jobs on EventBridge Scheduler."),
    Tag(name="webhooks", description="Vendors' completion notices (capability URLs, not signed with SigV4)."),
    Tag(name="docs", description="This document and its Swagger UI page."),
]
DESCRIPTION = """Run email-marketing vendors' long, asynchronous jobs (exports, bulk imports) through one API:
submit a job, follow its progress, get a checksummed result from S3, be told when it ends.

Every error is JSON, `{"error": {"code", "message", "details"}}`, whatever its status: 400 (a body that is
not JSON, or JSON nested too deep or holding a number out of range; a bad `next` token), 404 (no such job,
schedule or route), 405 (a route that does not take this method; `Allow` lists those it takes), 409, 413 (a
body over 256 KiB), 415 (a body that is neither JSON nor labelled as JSON), 422 (`details` names each field
and what is wrong with it; an unknown query parameter is one). Bad input never gets a 500. When a job ends,
jobrelay POSTs its summary to the job's `callback_url`, signed per Standard Webhooks: see `webhooks`."""

_JSON_TYPES = re.compile(r"^(application/json|application/[\w.+-]*\+json|text/json)?$")


class JobApi(APIGatewayHttpResolver):
    def __init__(self) -> None:
        super().__init__(enable_validation=True)
        # Powertools' own request validation, with the two changes above. It is the first
        # middleware of every validated route; the resolver builds it here, when validation is on.
        self._request_validation_middleware = _ReadGenerously()
        self.configure_openapi(
            title="jobrelay",
            version="1.0.0",
            description=DESCRIPTION,
            tags=TAGS,
            security_schemes=SECURITY_SCHEMES,
            security=[{SIGV4: []}],
            openapi_extensions={"webhooks": _callback_webhooks()},
        )

    def served_routes(self) -> list[Any]:
        return self._static_routes + self._dynamic_routes

    def enable_swagger(self, *, path: str = "/docs", **kwargs: Any) -> None:
        """Swagger UI at `path`, listed in the document like every route of template.yaml."""
        super().enable_swagger(path=path, **kwargs)
        (page,) = [route for route in self.served_routes() if route.path == path]
        page.include_in_schema = True
        page.summary = "This document in Swagger UI"
        page.description = (
            "An HTML page. Its prefilled examples are meant to be sent as they are; deployed, the page itself and "
            "every job route need SigV4, which a browser does not add."
        )
        page.tags, page.operation_id = ["docs"], "getDocsPage"
        page.responses = {200: {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}}
        self.docs_route = page

    def get_openapi_schema(self, **kwargs: Any) -> OpenAPI:
        for route in self.served_routes():
            _name_and_tag(route)
        document = super().get_openapi_schema(**kwargs).model_dump(by_alias=True, exclude_none=True, mode="json")
        _our_errors_everywhere(document)
        document["paths"].update(_vendor_webhook_paths())
        if page := getattr(self, "docs_route", None):  # nothing about the docs page is validated
            document["paths"][page.openapi_path]["get"]["responses"].pop("422", None)
        return OpenAPI.model_validate(document)


# What reading a request raises on purpose: each has its own answer (422, 415, a ServiceError's).
_REFUSALS = (RequestValidationError, RequestUnsupportedContentType, ServiceError)


class _ReadGenerously(OpenAPIRequestValidationMiddleware):
    def handler(self, app: Any, next_middleware: Any) -> Any:
        routed = False

        def route_handler(app: Any) -> Any:
            nonlocal routed
            routed = True  # the request has been read: from here on, a failure is the route's
            return next_middleware(app)

        try:
            return self._read_then(app, route_handler)
        except _REFUSALS:
            raise
        except Exception as exc:
            if routed:
                raise  # a fault of the route, after reading: the logged 500 of answer_errors_as_json
            logger.exception("the request could not be read")
            raise UnreadableRequest() from exc

    def _read_then(self, app: Any, next_middleware: Any) -> Any:
        route = app.context["_route"]
        # Not for the route Powertools makes up for a path it has no route for (that is a 404/405),
        # nor for the docs page (Swagger UI reads its own ?format=).
        if route in app.served_routes() and route is not getattr(app, "docs_route", None):
            _refuse_unknown_query_parameters(app.current_event.query_string_parameters or {}, route)
        return super().handler(app, next_middleware)

    def _get_body(self, app: Any) -> Any:
        """The body as JSON whatever the content type says (curl -d sends form-urlencoded), read
        within bounds: Powertools' own reading would recurse without limit (jobrelay.api.bodies)."""
        event = app.current_event
        content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
        body = event.decoded_body
        if not body:
            return None  # "body: Field required"
        try:
            return bodies.parse(body)
        except bodies.NotReadable as refused:
            reason = refused.reason
        if _JSON_TYPES.match(content_type):
            raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": reason}])
        raise RequestUnsupportedContentType(
            "unsupported content type",
            errors=[{"type": "unsupported_content_type", "loc": ("body",), "msg": content_type}],
        )


def _refuse_unknown_query_parameters(query: dict[str, str], route: Any) -> None:
    allowed = sorted(param.alias for param in route.dependant.query_params)
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        takes = f"this route takes {', '.join(allowed)}" if allowed else "this route takes no query parameters"
        raise RequestValidationError(
            [{"type": "query_unknown", "loc": ("query", name), "msg": f"unknown query parameter; {takes}"} for name in unknown]
        )


# --- the document ------------------------------------------------------------------------------


def _name_and_tag(route: Any) -> None:
    """Defaults for a route that names neither: its handler's name in camelCase as operationId
    (`submit_job` is `submitJob`: stable while the handler keeps its name), its first path
    segment as tag."""
    if route.operation_id == route._generate_operation_id():
        head, *rest = route.func.__name__.split("_")
        route.operation_id = head + "".join(word.capitalize() for word in rest)
    if not route.tags:
        route.tags = [route.path.strip("/").split("/")[0] or "docs"]


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


BODY_ERRORS = {
    "400": f"the body is not JSON we read (INVALID_JSON): not valid JSON, nested deeper than {bodies.MAX_DEPTH} levels, "
    "an integer too long to read, a number beyond a double's range, NaN or Infinity; the message says which. "
    "(BAD_REQUEST: a request that could not be read for a reason no rule foresaw; it is logged)",
    "413": f"the body is over {MAX_BODY_BYTES // 1024} KiB (PAYLOAD_TOO_LARGE)",
    "415": "the body is not JSON and its content-type does not say JSON (UNSUPPORTED_MEDIA_TYPE): send JSON, "
    "with content-type: application/json",
}


def _our_errors_everywhere(document: dict[str, Any]) -> None:
    """Every error response described by ErrorBody, the shape the API really answers, and the errors
    reading a body can give on every route that takes one."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorBody", _schema_of(ErrorBody, schemas))
    for item in document["paths"].values():
        for operation in item.values():
            responses = operation.get("responses", {})
            for status, response in responses.items():
                if status.startswith(("4", "5")) and "HTTPValidationError" in json.dumps(response):
                    response["content"] = _error_content()
                    response["description"] = "the request is not valid: `details` lists each field and what is wrong"
            if "requestBody" in operation:
                for status, text in BODY_ERRORS.items():
                    responses.setdefault(status, {"description": text, "content": _error_content()})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if unused not in json.dumps(document["paths"]):
            schemas.pop(unused, None)


def _schema_of(model: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON Schema with its nested models among the document's components."""
    schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
    for name, nested in schema.pop("$defs", {}).items():
        schemas.setdefault(name, nested)
    return schema


def _vendor_webhook_paths() -> dict[str, Any]:
    """The vendor webhook route: in template.yaml and the HTTP API, served by the webhooks function."""
    parameter = {"in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/webhooks/pinpointe/{job_id}/{token}": {
            "post": {
                "tags": ["webhooks"],
                "operationId": "receivePinpointeNotice",
                "summary": "Pinpointe's completion notice (not for you to call)",
                "description": "The URL Pinpointe is given when a job starts: the job's id and a 256-bit token that "
                "only this job has (a capability URL, so no SigV4). An unknown job and a wrong token get the same 404; "
                "a notice for a job that no longer waits is acknowledged and ignored.",
                "security": [],
                "parameters": [
                    {"name": "job_id", **parameter, "description": "the job"},
                    {"name": "token", **parameter, "description": "the job's webhook token"},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object", "description": "Pinpointe's notice"}}},
                },
                "responses": {
                    "200": {
                        "description": "acknowledged",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "404": {"description": "no such job, or not its token", "content": _error_content()},
                    "413": {"description": BODY_ERRORS["413"], "content": _error_content()},
                },
            }
        }
    }


def _callback_webhooks() -> dict[str, Any]:
    """The callback jobrelay POSTs to a job's `callback_url` when it ends (services/notices.py)."""
    signed_header = {"in": "header", "required": True, "schema": {"type": "string"}}
    status = {"type": "string", "enum": ["SUCCEEDED", "PARTIAL", "FAILED", "TIMED_OUT", "CANCELLED"]}
    nullable_object = {"anyOf": [{"type": "object"}, {"type": "null"}]}
    return {
        "jobEnded": {
            "post": {
                "operationId": "jobEnded",
                "tags": ["jobs"],
                "summary": "A job ended (sent to the job's callback_url)",
                "description": "POSTed once the job reaches a final status, signed per Standard Webhooks "
                "(https://www.standardwebhooks.com) with the account's signing secret (Secrets Manager, "
                "`<SecretsPrefix>callbacks/<account>`): verify it with any Standard Webhooks library, e.g. "
                "`standardwebhooks.Webhook(secret).verify(body, headers)`. Delivery is at least once: drop "
                "duplicates on `webhook-id`. Answer 2xx; anything else is retried with backoff (about 5 s, 15 s, "
                "45 s, 135 s), then recorded on the job's timeline (`callback_failed`); it never changes the job.",
                "security": [],
                "parameters": [
                    {"name": "webhook-id", **signed_header, "description": "`<job_id>:<status>`, the same on every retry"},
                    {"name": "webhook-timestamp", **signed_header, "description": "seconds since the epoch"},
                    {"name": "webhook-signature", **signed_header, "description": "`v1,<base64 HMAC-SHA256>`"},
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["job_id", "operation", "account", "status", "version"],
                                "properties": {
                                    "job_id": {"type": "string"},
                                    "operation": {"type": "string"},
                                    "account": {"type": "string"},
                                    "status": status,
                                    "version": {"type": "integer", "description": "bumped by every transition"},
                                    "created_at": {"type": "string", "format": "date-time"},
                                    "updated_at": {"type": "string", "format": "date-time"},
                                    "result": nullable_object | {"description": "s3_uri, size, sha256, files (no links)"},
                                    "reconciliation": nullable_object | {"description": "as on GET /jobs/{job_id}"},
                                    "error": nullable_object | {"description": "code and message, when it failed"},
                                },
                            },
                            "example": {
                                "job_id": "job_01jd3q6w7v8x9y0z1a2b3c4d5e",
                                "operation": "pinpointe.newsletter_contact_data_summary",
                                "account": "default",
                                "status": "SUCCEEDED",
                                "version": 6,
                                "created_at": "2026-11-22T10:00:00+00:00",
                                "updated_at": "2026-11-22T10:04:12+00:00",
                                "result": {"s3_uri": "s3://jobrelay-results/results/job_01jd.../result.json", "size": 48213},
                                "reconciliation": None,
                                "error": None,
                            },
                        }
                    },
                },
                "responses": {"200": {"description": "received (any 2xx will do); anything else is retried"}},
            }
        }
    }
