"""The state machine's steps: one function, the step named in the payload (statemachines/job.asl.json).

Errors are raised, not caught: the state machine's Retry and Catch match on the exception's class
name. The event carries a task token, so it is never logged.
"""

from typing import Any

from aws_lambda_powertools import Logger

from jobrelay import wiring
from jobrelay.services.steps import StepInput

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    step = StepInput.model_validate(event)
    logger.append_keys(job_id=step.job_id, step=step.step)
    output = wiring.step_runner().run(step, seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    if output is None:
        return None
    logger.info("step done", extra={"next": output.next, "status": output.status.value})
    return output.model_dump(mode="json")
