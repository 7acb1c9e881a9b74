"""EventBridge Scheduler's target for recurring jobs: submit the schedule's job for this run (once,
however often the run is delivered) and record the run (jobrelay.services.schedules)."""

from typing import Any

from aws_lambda_powertools import Logger

from jobrelay import wiring
from jobrelay.services.schedules import ScheduledInvocation

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    invocation = ScheduledInvocation.model_validate(event)
    # The run's correlation id is this invocation's request id: the job submitted keeps it.
    logger.set_correlation_id(context.aws_request_id)
    from jobrelay import telemetry  # with the first run: the module stays cheap to load

    telemetry.reset()
    telemetry.set_correlation_id(context.aws_request_id)
    logger.append_keys(schedule=invocation.schedule, scheduled_time=invocation.scheduled_time.isoformat())
    run = wiring.schedule_firer().fire(invocation)
    logger.info("schedule run", extra={"job_id": run.job_id, "error": run.error.code if run.error else None})
    return {
        "schedule": invocation.schedule,
        "scheduled_time": run.scheduled_time.isoformat(),
        "job_id": run.job_id,
        "error": run.error.model_dump() if run.error else None,
    }
