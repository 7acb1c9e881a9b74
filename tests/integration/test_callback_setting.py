"""AllowLocalCallbacks, the stack setting that lets callbacks use plain http and reach this
machine: off in a deployed stack, on in the local stack (whose e2e callbacks go to listeners on
127.0.0.1), and read the same way by every function that checks or sends a callback."""

from devstack.stack import LocalStack
from devstack.template import resolve_template
from jobrelay.settings import Settings

# The API (submissions, schedules, a cancel's callback), the schedules function (a run's job), the
# steps (Notify) and the sweeper (a swept job's callback).
CALLBACK_FUNCTIONS = ["ApiFunction", "ScheduleTargetFunction", "StepsFunction", "SweeperFunction"]


def _allowed(overrides: dict[str, str] | None = None) -> dict[str, bool]:
    functions = {f.logical_id: f for f in resolve_template(parameter_overrides=overrides).functions}
    return {name: Settings.model_validate(functions[name].environment).allow_local_callbacks for name in CALLBACK_FUNCTIONS}


def test_a_deployed_stack_sends_callbacks_to_public_https_urls_only():
    assert _allowed() == dict.fromkeys(CALLBACK_FUNCTIONS, False)


def test_the_local_stack_allows_local_callbacks():
    overrides = LocalStack(profile="test")._parameter_overrides("http://127.0.0.1:3000")
    assert _allowed(overrides) == dict.fromkeys(CALLBACK_FUNCTIONS, True)
