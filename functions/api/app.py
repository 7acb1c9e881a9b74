"""The job API function: refuse bodies no route could read, then route (jobrelay.api.routes) to the job service."""

from typing import Any

from aws_lambda_powertools import Logger

from jobrelay.api.errors import oversize_answer, undecodable_answer

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return oversize_answer(event) or undecodable_answer(event) or _routes().resolve(event, context)


def _routes():
    # Imported on the first request: see jobrelay.api.routes for why.
    from jobrelay.api.routes import app

    return app
