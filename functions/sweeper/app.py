"""The sweeper, run every few minutes by its schedule (template.yaml: SweeperFunction): settles the
jobs nothing else will settle and frees leaked concurrency slots (jobrelay.services.sweeper)."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger

from jobrelay import wiring

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report = wiring.sweeper().sweep()
    logger.info("swept", extra={"examined": report.examined, "settled": len(report.settled), "slots_freed": report.slots_freed})
    return asdict(report)
