"""Vendor webhooks on per-job capability URLs: check the token, keep the notice, wake the job.
All of that, the body's size limit included, is jobrelay.services.webhooks; here its errors become
HTTP answers (answer_errors_as_json).

The path holds the job's token: nothing here logs the event or the path.
"""

import base64
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths

from jobrelay import wiring
from jobrelay.api.errors import answer_errors_as_json

logger = Logger()
app = APIGatewayHttpResolver()


@app.post("/webhooks/<vendor>/<job_id>/<token>")
def vendor_webhook(vendor: str, job_id: str, token: str) -> Response:
    logger.append_keys(job_id=job_id, vendor=vendor)
    ack = wiring.webhook_receiver().receive(vendor, job_id, token, _raw_body(app.current_event.raw_event))
    logger.info("webhook acknowledged", extra={"outcome": ack.outcome})
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=_json(ack.body()))


answer_errors_as_json(app, logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def _json(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value)
