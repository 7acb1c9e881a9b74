"""template.yaml, statemachines/job.asl.json and the code agree: the routes the template gives a
function are the routes its handler serves, every function gets the environment it reads, and the
state machine only names steps and errors the code has."""

import json
import typing
from pathlib import Path

import pytest

from devstack.template import resolve_template
from jobrelay.domain.errors import STEP_ERRORS
from jobrelay.services.steps import StepInput
from jobrelay.settings import Settings

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = resolve_template()
FUNCTIONS = {f.logical_id: f for f in TEMPLATE.functions}
ASL = json.loads((REPO / "statemachines" / "job.asl.json").read_text())


def _template_routes(logical_id: str) -> set[tuple[str, str]]:
    name = FUNCTIONS[logical_id].name
    return {(route.method, route.path) for route in TEMPLATE.routes if route.function_name == name}


def test_the_api_serves_exactly_the_routes_the_template_gives_it():
    from jobrelay.api.routes import app

    served = {(route.method, route.openapi_path) for route in app._static_routes + app._dynamic_routes}
    routes = _template_routes("ApiFunction")
    assert ("ANY", None) in routes  # $default: every other route gets the API's own 404/405
    assert served == routes - {("ANY", None)}


def test_the_webhooks_function_serves_every_webhook_route():
    import importlib.util

    spec = importlib.util.spec_from_file_location("webhooks_app", FUNCTIONS["WebhooksFunction"].handler_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (route,) = module.app._dynamic_routes
    for method, path in _template_routes("WebhooksFunction"):
        concrete = path.replace("{job_id}", "job_x").replace("{token}", "t0k3n")
        assert method == route.method and route.rule.match(concrete), path


REQUIRED = {name.alias for name in Settings.model_fields.values() if name.is_required()}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_gets_the_settings_it_cannot_do_without(logical_id):
    environment = FUNCTIONS[logical_id].environment
    assert REQUIRED <= set(environment)
    Settings.model_validate(environment)  # and the values parse


def test_functions_get_what_their_own_work_needs():
    assert "STATE_MACHINE_ARN" in FUNCTIONS["ApiFunction"].environment
    steps = FUNCTIONS["StepsFunction"].environment
    assert {"PUBLIC_API_URL", "WEBHOOK_FALLBACK_SECONDS", "POLL_INITIAL_SECONDS", "POLL_MAX_SECONDS"} <= set(steps)


def _task_states():
    return {name: state for name, state in ASL["States"].items() if state["Type"] == "Task"}


def test_the_state_machine_only_names_steps_the_steps_function_has():
    known = set(typing.get_args(StepInput.model_fields["step"].annotation))
    named = {state["Parameters"]["Payload"]["step"] for state in _task_states().values()}
    assert named <= known and named == known  # and no step is dead code


def test_retry_and_catch_only_name_errors_that_exist():
    named = {
        error
        for state in _task_states().values()
        for rule in state.get("Retry", []) + state.get("Catch", [])
        for error in rule["ErrorEquals"]
        if not error.startswith(("States.", "Lambda."))
    }
    assert named <= set(STEP_ERRORS)


def test_every_task_ends_somewhere_that_settles_the_job():
    for name, state in _task_states().items():
        catch_all = [rule for rule in state.get("Catch", []) if rule["ErrorEquals"] == ["States.ALL"]]
        assert catch_all, f"{name} has no catch-all: an error there would leave the job non-terminal"


# --- recurring jobs ------------------------------------------------------------------------------------


def test_the_schedule_api_and_the_schedules_function_get_what_they_need():
    api = FUNCTIONS["ApiFunction"].environment
    assert api["SCHEDULE_GROUP"] == TEMPLATE.resources["ScheduleGroup"].ref
    assert api["SCHEDULE_TARGET_ARN"] == FUNCTIONS["ScheduleTargetFunction"].arn
    assert api["SCHEDULER_ROLE_ARN"] == TEMPLATE.resources["SchedulerRole"].attributes["Arn"]
    # The schedules function submits jobs through the job service: it starts their executions.
    assert {"STATE_MACHINE_ARN", "DEFAULT_JOB_TIMEOUT_SECONDS"} <= set(FUNCTIONS["ScheduleTargetFunction"].environment)


SCHEDULES = TEMPLATE.of_type("AWS::Scheduler::Schedule")


@pytest.mark.parametrize("schedule", SCHEDULES, ids=[s.logical_id for s in SCHEDULES])
def test_the_templates_schedules_are_ones_the_schedules_function_can_run(schedule):
    from datetime import UTC, datetime

    from jobrelay.domain.schedule_expressions import parse_expression, parse_timezone
    from jobrelay.operations import get_operation
    from jobrelay.services.schedules import ScheduleDefinition, resolved_submission

    properties = schedule.properties
    assert properties["GroupName"] == TEMPLATE.resources["ScheduleGroup"].ref  # what GET /schedules lists
    assert properties["Target"]["Arn"] == FUNCTIONS["ScheduleTargetFunction"].arn
    assert properties["Target"]["RoleArn"] == TEMPLATE.resources["SchedulerRole"].attributes["Arn"]
    definition = ScheduleDefinition.model_validate_json(properties["Target"]["Input"])
    assert definition.schedule == schedule.ref  # the name its runs are recorded under
    assert definition.timezone == properties.get("ScheduleExpressionTimezone", "UTC")
    assert parse_expression(properties["ScheduleExpression"], definition.timezone).next_after(datetime.now(UTC))
    job = resolved_submission(definition.job, datetime.now(UTC), parse_timezone(definition.timezone))
    get_operation(job.operation).validate_params(job.params)


def test_the_example_schedule_is_disabled_unless_asked_for():
    example = TEMPLATE.resources["NightlyAutoresponderResults"]
    assert example.properties["State"] == "DISABLED"
    enabled = resolve_template(parameter_overrides={"ExampleScheduleState": "ENABLED"})
    assert enabled.resources["NightlyAutoresponderResults"].properties["State"] == "ENABLED"
    assert "nightly-autoresponder-results" in {schedule.name for schedule in enabled.schedules}  # the local timer fires it
