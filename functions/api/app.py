"""The job API function: refuse bodies no route could read, then route (jobrelay.api.routes) to the job service.

One log line per request (method, path, route, status, duration), with the API's request id as the
correlation id: a job submitted keeps it, and every step of the job logs it."""

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from jobrelay import telemetry
from jobrelay.api.errors import oversize_answer, undecodable_answer

logger = Logger()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    telemetry.reset()
    telemetry.set_correlation_id(logger.get_correlation_id())
    answer = oversize_answer(event) or undecodable_answer(event) or _routes().resolve(event, context)
    http = (event.get("requestContext") or {}).get("http") or {}
    logger.info(
        "request",
        extra={
            "method": http.get("method"),
            "path": event.get("rawPath"),
            "route": event.get("routeKey"),
            "status": answer.get("statusCode"),
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return answer


def _routes():
    # Imported on the first request: see jobrelay.api.routes for why.
    from jobrelay.api.routes import app

    return app
