"""One shape for every HTTP error we answer: {"error": {"code", "message", "details"}}."""

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from jobrelay.domain.errors import ServiceError

MAX_BODY_BYTES = 256 * 1024
MAX_WEBHOOK_BYTES = 256 * 1024


class UnreadableRequest(ServiceError):
    """Reading the request failed in a way no refusal of ours foresaw (jobrelay.api.resolver): the
    input is what no reading expected, so a 400 for the client; the fault is logged for us."""

    status = 400
    code = "BAD_REQUEST"

    def __init__(self) -> None:
        super().__init__("the request could not be read; check it against GET /openapi.json (this has been logged)")


def error_body(code: str, message: str, details: Any = None) -> str:
    return json.dumps({"error": {"code": code, "message": message, "details": details}}, default=str)


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=error_body(code, message, details))


def validation_error_response(errors: list[dict[str, Any]]) -> Response:
    """Powertools' request-validation errors, re-shaped: a body that is not JSON is a 400, anything
    else a 422 listing each field and what is wrong with it (never echoing the input back)."""
    if unreadable := next((err for err in errors if err.get("type") == "json_invalid"), None):
        # Our reader's reason (jobrelay.api.bodies): where the JSON breaks, or which bound it passes.
        return error_response(400, "INVALID_JSON", f"the request body {unreadable.get('msg') or 'is not valid JSON'}")
    details = [
        {"field": ".".join(str(p) for p in err.get("loc", ())) or "request", "message": err.get("msg", "invalid")}
        for err in errors
    ]
    return error_response(422, "INVALID_REQUEST", "the request is not valid", details)


def oversize_answer(event: dict[str, Any], limit: int = MAX_BODY_BYTES) -> dict[str, Any] | None:
    """A ready HTTP API answer (413) for a body over `limit`, checked before anything parses it."""
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    if size <= limit:
        return None
    return _answer(413, "PAYLOAD_TOO_LARGE", f"request bodies are limited to {limit} bytes")


def undecodable_answer(event: dict[str, Any]) -> dict[str, Any] | None:
    """A ready 400 for a body API Gateway had to base64-encode and that is not UTF-8 text (so not
    JSON): Powertools would fail decoding it before validation could answer."""
    if not event.get("isBase64Encoded") or not event.get("body"):
        return None
    try:
        base64.b64decode(event["body"], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        content_type = str((event.get("headers") or {}).get("content-type") or "").split(";")[0].strip().lower()
        if content_type and "json" not in content_type:  # it never claimed to be JSON: say what to send
            return _answer(415, "UNSUPPORTED_MEDIA_TYPE", _not_json(content_type))
        return _answer(400, "INVALID_JSON", "the request body is not valid JSON (it is not UTF-8 text)")
    return None


def _not_json(declared: str) -> str:
    """The 415's message: what the body said it was, and what to send instead."""
    return (
        f"the body is not JSON (it says content-type: {declared[:100] or 'nothing'}): send a JSON body, with "
        "content-type: application/json"
    )


def _answer(status: int, code: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": content_types.APPLICATION_JSON}, "body": error_body(code, message)}


def answer_errors_as_json(app: Any, logger: Any) -> None:
    """The error answers every resolver shares: our service errors with their status, an unknown
    route as a 404 (a known path asked with a method it does not take as a 405, with `Allow`), a
    body Powertools cannot read as a 415, and anything else (only ever a fault of ours) as a logged
    500 that says little."""
    from aws_lambda_powertools.event_handler.openapi.exceptions import RequestUnsupportedContentType

    @app.exception_handler(ServiceError)
    def service_error(exc: ServiceError) -> Response:
        answer = error_response(exc.status, exc.code, exc.message, exc.details)
        if exc.retry_after is not None:
            answer.headers["Retry-After"] = str(exc.retry_after)
        return answer

    @app.not_found
    def no_route(_: Exception) -> Response:
        event = app.current_event
        # Powertools' routes are public enough to read (tests/integration/test_template.py does too).
        allowed = sorted({r.method for r in app._static_routes + app._dynamic_routes if r.rule.match(event.path)})
        if not allowed:
            return error_response(404, "NOT_FOUND", "no such route (GET /openapi.json lists them)")
        answer = error_response(
            405,
            "METHOD_NOT_ALLOWED",
            f"this route does not take {event.http_method}; it takes {', '.join(allowed)}",
            {"allowed": allowed},
        )
        answer.headers["Allow"] = ", ".join(allowed)
        return answer

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_content_type(exc: RequestUnsupportedContentType) -> Response:
        # Before the catch-all below, which would make it a 500.
        declared = next((str(err.get("msg")) for err in exc.errors()), "")
        return error_response(415, "UNSUPPORTED_MEDIA_TYPE", _not_json(declared))

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(500, "INTERNAL", "internal error; it has been logged")
