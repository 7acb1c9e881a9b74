"""The state machine's steps: one function, the step named in the payload (statemachines/job.asl.json).

Errors are raised, not caught: the state machine's Retry and Catch match on the exception's class
name. A step error (jobrelay.domain.errors.STEP_ERRORS: a vendor's refusal, a job the vendor failed,
a records file that cannot be read, ...) is an expected outcome, handled by the state machine: it is
logged as a warning, without a traceback, and raised with none. Anything else is an error for a person.
The event carries a task token, so it is never logged.

Each invocation is an X-Ray subsegment annotated with the job id, operation, vendor and step, with
each vendor call under it (jobrelay.tracing); every log line carries the job id, operation, vendor
and the correlation id of the request that submitted the job (jobrelay.telemetry.bind_job).
"""

from typing import Any

from aws_lambda_powertools import Logger

from jobrelay import telemetry, tracing, wiring
from jobrelay.domain.errors import STEP_ERRORS
from jobrelay.services.steps import StepInput

logger = Logger()
telemetry.on_bind(lambda fields: logger.append_keys(**fields))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    telemetry.reset()
    step = StepInput.model_validate(event)
    logger.append_keys(job_id=step.job_id, step=step.step)
    with tracing.subsegment(f"## step {step.step}", job_id=step.job_id, step=step.step) as segment:
        try:
            output = wiring.step_runner().run(step, seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
        except Exception as error:
            if type(error).__name__ not in STEP_ERRORS:
                logger.exception("step failed")
                raise
            logger.warning("step ended with %s: %s", type(error).__name__, error, extra={"error": type(error).__name__})
            # Handled by the state machine (Retry, Catch): what it needs is the class name and the
            # message; the traceback and the causes behind it would only dress an outcome up as a fault.
            error.__cause__ = error.__context__ = None
            raise error.with_traceback(None) from None
        finally:
            if segment is not None and (job := telemetry.current_job()) is not None:
                segment.annotate(operation=job.operation, vendor=job.vendor, correlation_id=job.correlation_id)
    if output is None:
        return None
    logger.info("step done", extra={"next": output.next, "status": output.status.value})
    return output.model_dump(mode="json")
