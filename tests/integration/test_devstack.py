"""The local stack (devstack/): the template reader, the in-process Lambda runtime, the schedules,
the time scale, the front door, and the whole stack on a fixture template.

The whole stack runs in a subprocess: other tests use moto in-process (mock_aws), which resets
moto's global backends under a server running in the same process.
"""

import base64
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import boto3
import httpx
import pytest
from botocore.config import Config
from moto import mock_aws

from devstack.__main__ import free_port_arguments
from devstack.clock import scaled_step_functions
from devstack.front_door import Request, Router, http_api_event, http_response
from devstack.lambdas import InProcessLambdas
from devstack.local_scheduler import Schedule, ScheduleTimer, parse_expression
from devstack.naming import ATTRIBUTES
from devstack.presigned import check_presigned
from devstack.resources import CREATORS
from devstack.samples import SAMPLES
from devstack.sandbox.mypreferences import MyPreferencesConfig
from devstack.sandbox.pinpointe import DEFAULT_AUTORESPONDERS
from devstack.sandbox.which50 import SEED_LISTS
from devstack.template import DEFAULT_TEMPLATE, Route, TemplateError, load_yaml, resolve_template
from jobrelay.vendors.mypreferences.auth import MyPreferencesAccount
from tests.fakes import SteppedClock

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "devstack"
FIXTURE_TEMPLATE = FIXTURE / "template.yaml"

FREE_PORTS = free_port_arguments()


def copy_fixture(tmp_path: Path, old: str = "", new: str = "") -> Path:
    """The fixture in tmp_path, its template with `old` replaced by `new` (once)."""
    folder = tmp_path / "fixture"
    shutil.copytree(FIXTURE, folder)
    template = folder / "template.yaml"
    text = template.read_text()
    assert old in text
    template.write_text(text.replace(old, new, 1))
    return template


# --- the template ---------------------------------------------------------------------------------


def test_the_real_template_resolves_fully():
    template = resolve_template(DEFAULT_TEMPLATE, parameter_overrides={"PublicApiUrl": "http://127.0.0.1:3000"})

    assert {function.logical_id for function in template.functions} == {
        "ApiFunction",
        "WebhooksFunction",
        "StepsFunction",
        "SweeperFunction",
        "ScheduleTargetFunction",
    }
    for function in template.functions:
        assert function.handler_file.is_file()
        assert function.layer_dirs == (REPO / "layers" / "jobrelay",)
        assert function.environment["JOBS_TABLE"] == template.resources["JobsTable"].ref
    [machine] = template.state_machines
    assert "${" not in machine.definition
    steps_arn = template.resources["StepsFunction"].attributes["Arn"]
    assert json.loads(machine.definition)["States"]["Start"]["Parameters"]["FunctionName"] == steps_arn

    declared = {  # an event with neither Method nor Path is the API's $default route
        (event["Properties"].get("Method", "ANY"), event["Properties"].get("Path"))
        for resource in load_yaml(DEFAULT_TEMPLATE)["Resources"].values()
        for event in resource.get("Properties", {}).get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }
    assert {(route.method, route.path) for route in template.routes} == declared
    assert template.outputs["StateMachineArn"] == machine.arn


def test_every_supported_resource_type_has_a_creator():
    assert list(CREATORS) and set(CREATORS) == set(ATTRIBUTES)


def test_the_fixture_resolves_intrinsics_globals_and_conditions():
    template = resolve_template(FIXTURE_TEMPLATE, parameter_overrides={"Greeting": "hi"}, stack_name="fx")
    echo = next(function for function in template.functions if function.logical_id == "EchoFunction")

    assert echo.environment == {
        "TABLE": "fx-Table",  # from Globals
        "GREETING": "hi",  # a parameter override
        "PUBLIC_URL": "https://fx-api.execute-api.us-east-1.amazonaws.com",  # Fn::If, false branch; Fn::Sub
        "BUCKET_ARN_PARTS": "first|arn:aws:s3:::fx-bucket|5-${Literal}",  # Join, Select, Split, GetAtt, Sub with vars
    }  # ABSENT resolved to AWS::NoValue and is gone
    assert (echo.timeout, echo.memory_size, echo.runtime) == (10, 256, "python3.13")
    assert echo.layer_dirs == (FIXTURE / "layer",)
    assert "OnlyWithPublicUrl" not in template.resources  # its condition is false
    assert template.resources["Bus"].ref == "fx-bus"
    assert template.outputs["SecretArn"] == "arn:aws:secretsmanager:us-east-1:123456789012:secret:fx-Secret"
    assert {route.route_key for route in template.routes} == {
        "POST /echo/{name}",
        "GET /plain",
        "GET /fail",
        "ANY /files/{path+}",
        "GET /files/index",
    }
    assert {(s.name, s.expression, s.input) for s in template.schedules} == {
        ("fx-WorkerFunctionHourly", "cron(0 * * * ? *)", '{"step": "tick", "source": "hourly"}'),
        ("fx-Ticker", "rate(1 minute)", '{"step": "tick", "source": "ticker", "at": "<aws.scheduler.scheduled-time>"}'),
    }  # Dormant is DISABLED
    ticker = next(s for s in template.schedules if s.name == "fx-Ticker")
    assert ticker.arn == "arn:aws:scheduler:us-east-1:123456789012:schedule/fx-Schedules/fx-Ticker"  # its group's


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Greeting": "howdy"}, "Parameters.Greeting: 'howdy' is not one of"),
        ({"PollSeconds": "0"}, "Parameters.PollSeconds: '0' is outside"),
        ({"PollSeconds": "soon"}, "is not a number"),
        ({"SecretsPrefix": "no-slash"}, "does not match"),
        ({"Nobody": "1"}, "parameters the template lacks: Nobody"),
    ],
)
def test_parameter_overrides_are_checked_like_sam_deploy(overrides, message):
    with pytest.raises(TemplateError, match=message):
        resolve_template(FIXTURE_TEMPLATE, parameter_overrides=overrides)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "Type: AWS::SNS::Topic\n",
            "Type: AWS::SQS::Queue\n",
            "Topic: the local stack cannot create resources of type 'AWS::SQS::Queue'",
        ),
        (
            "Value: !Ref Secret",
            "Value: !ImportValue shared",
            "Outputs.SecretArn: the local stack does not support the intrinsic Fn::ImportValue",
        ),
        ("GREETING: !Ref Greeting", "GREETING: !Ref Nobody", "Ref to unknown parameter or resource 'Nobody'"),
        (
            "!GetAtt Bucket.Arn,",
            "!GetAtt Bucket.Nope,",
            "EchoFunction.Environment.Variables.BUCKET_ARN_PARTS: Bucket has no attribute 'Nope'",
        ),
        ("CodeUri: functions/worker", "CodeUri: functions/missing", "WorkerFunction.CodeUri: folder .* does not exist"),
        (
            "Handler: app.handler\n      MemorySize",
            "Handler: main.handler\n      MemorySize",
            "EchoFunction: Handler 'main.handler' needs .*main.py",
        ),
        (
            "DefinitionUri: machine.asl.json",
            "DefinitionUri: missing.asl.json",
            "Machine.DefinitionUri: file .* does not exist",
        ),
        ("WorkerArn: !GetAtt", "OtherArn: !GetAtt", r"Machine: no DefinitionSubstitutions for \$\{WorkerArn\}"),
        ("Type: Schedule\n", "Type: SNS\n", "WorkerFunction.Events.Hourly: the local stack does not run 'SNS' events"),
        ("rate(1 minute)", "rate(1 fortnight)", r"Ticker: 'rate\(1 fortnight\)' is neither rate"),
        ("cron(0 * * * ? *)", "cron(0 * L * ? *)", "Hourly: .*does not support L, W or #"),
    ],
)
def test_a_template_the_stack_cannot_run_fails_loudly(tmp_path, old, new, message):
    with pytest.raises(TemplateError, match=message):
        resolve_template(copy_fixture(tmp_path, old, new))


# --- the in-process Lambda runtime ------------------------------------------------------------------


@pytest.fixture
def lambdas() -> InProcessLambdas:
    template = resolve_template(FIXTURE_TEMPLATE, stack_name="fx")
    runtime = InProcessLambdas(template.functions, endpoint_url="http://127.0.0.1:9", region="eu-west-1")
    runtime.load_all()
    return runtime


def test_a_function_runs_with_its_own_environment_and_context(lambdas):
    environment_before = dict(os.environ)

    invocation = lambdas.invoke("fx-EchoFunction", {"routeKey": "POST /echo/{name}"})

    answer = json.loads(json.loads(invocation.payload)["body"])
    assert not invocation.errored
    assert answer["environment"]["TABLE"] == "fx-Table"
    assert answer["environment"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert answer["environment"]["AWS_LAMBDA_FUNCTION_NAME"] == "fx-EchoFunction"
    assert answer["context"]["function_name"] == "fx-EchoFunction"
    assert answer["context"]["memory_limit_in_mb"] == 256
    assert 9000 < answer["context"]["remaining_ms"] <= 10000
    assert dict(os.environ) == environment_before
    assert "fixturelib" not in sys.modules  # the layer's modules live in the functions' containers


def test_each_function_keeps_its_own_warm_modules(lambdas):
    first = json.loads(json.loads(lambdas.invoke("fx-EchoFunction", {"routeKey": "POST /echo/{name}"}).payload)["body"])
    second = json.loads(json.loads(lambdas.invoke("fx-EchoFunction", {"routeKey": "POST /echo/{name}"}).payload)["body"])
    assert first["layer"] == {"loaded_for": "fx-EchoFunction", "invocations": 1}
    assert second["layer"] == {"loaded_for": "fx-EchoFunction", "invocations": 2}


def test_a_handler_exception_is_lambdas_error_document_named_after_the_class(lambdas):
    invocation = lambdas.invoke("fx-WorkerFunction", {"step": "flaky", "run": "r"})

    error = json.loads(invocation.payload)
    assert invocation.errored
    assert error["errorType"] == "FlakyError"
    assert error["errorMessage"] == "attempt 1 fails on purpose"
    assert any("worker/app.py" in frame for frame in error["stackTrace"])
    assert "START RequestId" in invocation.logs and "REPORT RequestId" in invocation.logs


def test_a_handler_function_that_does_not_exist_fails_the_start(tmp_path):
    template = resolve_template(
        copy_fixture(tmp_path, "Handler: app.handler\n      MemorySize", "Handler: app.missing\n      MemorySize")
    )
    with pytest.raises(TemplateError, match=r"EchoFunction: Handler 'app.missing': .*app.py has no function 'missing'"):
        InProcessLambdas(template.functions, endpoint_url="http://127.0.0.1:9", region="us-east-1").load_all()


# --- schedules and the time scale -------------------------------------------------------------------

UTC_NOON = datetime(2026, 3, 4, 12, 0, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("expression", "timezone", "expected"),
    [
        ("rate(5 minutes)", "UTC", UTC_NOON + timedelta(minutes=5)),
        ("rate(1 day)", "UTC", UTC_NOON + timedelta(days=1)),
        ("cron(*/15 * * * ? *)", "UTC", datetime(2026, 3, 4, 12, 15, tzinfo=UTC)),
        ("cron(0 9 ? * MON-FRI *)", "UTC", datetime(2026, 3, 5, 9, 0, tzinfo=UTC)),
        ("cron(30 2 1 JAN,JUL ? *)", "UTC", datetime(2026, 7, 1, 2, 30, tzinfo=UTC)),
        ("cron(0 8 ? * 1 *)", "UTC", datetime(2026, 3, 8, 8, 0, tzinfo=UTC)),  # 1 is Sunday
        ("cron(0 13 * * ? *)", "Europe/Paris", datetime(2026, 3, 5, 12, 0, tzinfo=UTC)),
        ("cron(0 0 1 1 ? 2020)", "UTC", None),  # in the past: never again
    ],
)
def test_schedule_expressions_fire_when_eventbridge_would(expression, timezone, expected):
    assert parse_expression(expression, timezone).next_after(UTC_NOON) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "rate(0 minutes)",
        "rate(5 weeks)",
        "cron(0 12 * * *)",
        "cron(0 12 * * MON *)",
        "cron(61 * * * ? *)",
        "cron(0 12 ? * 2#1 *)",
        "at(2026-01-01T00:00:00)",
    ],
)
def test_schedule_expressions_the_timer_cannot_honour_are_refused(expression):
    with pytest.raises(ValueError):
        parse_expression(expression)


class FakeClock:
    """Time passes only when the timer sleeps, and only for `sleeps` sleeps; then it blocks until stopped."""

    def __init__(self, now: datetime, sleeps: int):
        self.current = now
        self.sleeps = sleeps

    def now(self) -> datetime:
        return self.current

    def sleep_until(self, moment: datetime, stop: threading.Event) -> bool:
        if self.sleeps == 0:
            return stop.wait()
        self.sleeps -= 1
        self.current = max(self.current, moment)
        return stop.is_set()


def test_the_timer_fires_every_schedule_at_its_times_on_its_clock():
    arn = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/"
    schedules = [
        Schedule("every-20", arn + "every-20", "rate(20 minutes)", "UTC", "fn", '{"n": 1}'),
        Schedule("hourly", arn + "hourly", "cron(0 * * * ? *)", "UTC", "fn", None),
    ]
    fired: list[tuple[str, datetime, dict[str, Any]]] = []

    def fire(schedule: Schedule, moment: datetime) -> None:
        fired.append((schedule.name, moment, json.loads(schedule.payload(moment))))

    timer = ScheduleTimer(schedules, fire, FakeClock(UTC_NOON, sleeps=5))
    timer.start()
    deadline = time.monotonic() + 5
    while len(fired) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    timer.stop()

    assert [(name, moment.strftime("%H:%M:%S")) for name, moment, _ in fired] == [  # the clock starts at 12:00:30
        ("every-20", "12:20:30"),
        ("every-20", "12:40:30"),
        ("hourly", "13:00:00"),
        ("every-20", "13:00:30"),
        ("every-20", "13:20:30"),
    ]
    assert fired[0][2] == {"n": 1}
    notice = next(payload for name, _, payload in fired if name == "hourly")
    assert notice["detail-type"] == "Scheduled Event" and notice["time"] == "2026-03-04T13:00:00Z"
    assert notice["source"] == "aws.scheduler" and notice["resources"] == [arn + "hourly"]


def test_the_timer_reads_its_source_again_and_follows_what_it_holds():
    arn = "arn:aws:scheduler:us-east-1:123456789012:schedule/g/"
    first = Schedule("first", arn + "first", "rate(30 minutes)", "UTC", "fn", '{"at": "<aws.scheduler.scheduled-time>"}')
    later = Schedule("later", arn + "later", "rate(1 hour)", "UTC", "fn", '{"arn": "<aws.scheduler.schedule-arn>"}')
    held = [first]
    fired: list[tuple[str, str, dict[str, Any]]] = []

    def fire(schedule: Schedule, moment: datetime) -> None:
        fired.append((schedule.name, moment.strftime("%H:%M:%S"), json.loads(schedule.payload(moment))))
        held[:] = [later]  # first is deleted and later created, as through the API

    clock = SteppedClock(UTC_NOON, until=UTC_NOON + timedelta(minutes=105))
    timer = ScheduleTimer([], fire, clock, source=lambda: list(held), refresh=timedelta(minutes=20))
    timer.start()
    deadline = time.monotonic() + 5
    while len(fired) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    timer.stop()

    # first: found at 12:00:30, fires 30 minutes later; later: found at the 12:40:30 read, fires an
    # hour after that; first, gone by then, never fires again.
    assert fired == [
        ("first", "12:30:30", {"at": "2026-03-04T12:30:30Z"}),
        ("later", "13:40:30", {"arn": arn + "later"}),
    ]


def test_a_20_second_wait_takes_about_a_second_at_scale_0_05(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    definition = {
        "StartAt": "Pause",
        "States": {"Pause": {"Type": "Wait", "Seconds": 20, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    }

    with scaled_step_functions(0.05), mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="pause", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
        )
        started = time.monotonic()
        execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="pause-1")["executionArn"]
        while (status := sfn.describe_execution(executionArn=execution)["status"]) == "RUNNING":
            time.sleep(0.05)
        elapsed = time.monotonic() - started

    assert status == "SUCCEEDED"
    assert 0.9 <= elapsed < 2.5


# --- the front door, without a server ---------------------------------------------------------------


def test_routes_prefer_literal_segments_then_variables_then_greedy_ones():
    routes = [
        Route("ANY", "/files/{path+}", "greedy", "api"),
        Route("GET", "/files/{name}", "variable", "api"),
        Route("GET", "/files/index", "literal", "api"),
        Route("ANY", None, "default", "api"),
    ]
    router = Router(routes)

    def target(method: str, path: str) -> tuple[str, dict[str, str]]:
        route, parameters = router.match(method, path)
        return route.function_name, parameters

    assert target("GET", "/files/index") == ("literal", {})
    assert target("GET", "/files/a%20b") == ("variable", {"name": "a b"})
    assert target("DELETE", "/files/a") == ("greedy", {"path": "a"})
    assert target("GET", "/files/a/b") == ("greedy", {"path": "a/b"})
    assert target("GET", "/elsewhere") == ("default", {})
    assert Router(routes[:3]).match("GET", "/elsewhere") is None


def test_http_answers_follow_api_gateway_rules():
    full = http_response({"statusCode": 204, "headers": {"x-a": 1}, "cookies": ["a=1", "b=2"], "body": ""})
    assert (full.status, full.headers, full.body) == (
        204,
        [("x-a", "1"), ("set-cookie", "a=1"), ("set-cookie", "b=2")],
        b"",
    )
    binary = http_response({"statusCode": 200, "body": base64.b64encode(b"\x00\xff").decode(), "isBase64Encoded": True})
    assert binary.body == b"\x00\xff"
    for result, body in (({"ok": True}, b'{"ok": true}'), ("plain text", b"plain text"), ([1, 2], b"[1, 2]")):
        answer = http_response(result)
        assert (answer.status, answer.headers, answer.body) == (200, [("content-type", "application/json")], body)


def test_a_request_becomes_a_payload_2_event():
    request = Request(
        "POST",
        "/jobs/j%201/cancel?x=1&x=2&y=",
        [
            ("Host", "127.0.0.1:3000"),
            ("Cookie", "a=1; b=2"),
            ("X-Many", "1"),
            ("X-Many", "2"),
            ("Content-Type", "application/json"),
        ],
        b'{"why": "test"}',
        "127.0.0.1",
    )
    now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    event = http_api_event(request, Route("POST", "/jobs/{job_id}/cancel", "fn", "api1"), {"job_id": "j 1"}, "123456789012", now)

    assert event["routeKey"] == event["requestContext"]["routeKey"] == "POST /jobs/{job_id}/cancel"
    assert event["rawPath"] == "/jobs/j%201/cancel" and event["rawQueryString"] == "x=1&x=2&y="
    assert event["headers"] == {"host": "127.0.0.1:3000", "x-many": "1,2", "content-type": "application/json"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["pathParameters"] == {"job_id": "j 1"}
    assert (event["body"], event["isBase64Encoded"]) == ('{"why": "test"}', False)
    context = event["requestContext"]
    assert (context["apiId"], context["stage"], context["accountId"]) == ("api1", "$default", "123456789012")
    assert context["http"] == {
        "method": "POST",
        "path": "/jobs/j%201/cancel",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "",
    }
    assert (context["time"], context["timeEpoch"]) == ("04/Mar/2026:12:00:00 +0000", 1772625600000)


# --- the whole stack, on the fixture template, in a subprocess --------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("devstack")
    ready_file, log_path = workdir / "ready.json", workdir / "devstack.log"
    command = [
        sys.executable,
        str(FIXTURE / "serve.py"),
        "--template",
        str(FIXTURE_TEMPLATE),
        "--profile",
        "test",
        *FREE_PORTS,
        "--ready-file",
        str(ready_file),
        "--metrics-file",
        str(workdir / "metrics.emf.jsonl"),
    ]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not ready_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the local stack did not start:\n{log_path.read_text()[-5000:]}")
            time.sleep(0.05)
        yield {**json.loads(ready_file.read_text()), "log": log_path}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert exit_code == 0, log_path.read_text()[-5000:]


@pytest.fixture(scope="module")
def aws(stack):
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=stack["region"])
    return lambda service: session.client(service, endpoint_url=stack["moto_url"])


@pytest.fixture(scope="module")
def api(stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack["api_url"], timeout=10) as client:
        yield client


def test_the_front_door_turns_requests_into_payload_2_events(api, stack):
    response = api.post(
        "/echo/bob%20x?a=1&a=2",
        json={"x": 1},
        headers=[("X-Many", "1"), ("X-Many", "2"), ("Cookie", "c1=v1; c2=v2")],
    )

    assert response.status_code == 201
    assert response.headers["x-echo"] == "yes"
    assert response.headers.get_list("set-cookie") == ["first=1; Path=/", "second=2"]
    answer = response.json()
    event = answer["event"]
    assert event["routeKey"] == "POST /echo/{name}"
    assert event["pathParameters"] == {"name": "bob x"}
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert event["headers"]["x-many"] == "1,2" and "cookie" not in event["headers"]
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert json.loads(event["body"]) == {"x": 1} and event["isBase64Encoded"] is False
    assert answer["environment"]["PUBLIC_URL"] == stack["api_url"]  # PublicApiUrl is the front door
    assert answer["environment"]["AWS_ENDPOINT_URL"] == stack["moto_url"]


def test_binary_bodies_travel_base64_encoded(api):
    body = bytes(range(256))
    response = api.post("/echo/bin", content=body, headers={"content-type": "application/octet-stream"})
    assert response.status_code == 200 and response.content == body


def test_the_front_door_answers_errors_as_api_gateway_does(api, stack):
    assert api.get("/plain").json() == {"plain": True}
    missing = api.get("/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found"})
    assert api.get("/echo/x").status_code == 404  # the route is POST only
    failed = api.get("/fail")
    assert (failed.status_code, failed.json()) == (500, {"message": "Internal Server Error"})

    host, port = stack["api_url"].removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/echo/big")
    connection.putheader("Content-Length", str(10 * 1024 * 1024 + 1))
    connection.endheaders()
    too_large = connection.getresponse()
    assert (too_large.status, json.loads(too_large.read())) == (413, {"message": "Request Entity Too Large"})
    connection.close()


def run_execution(aws, stack, name: str, execution_input: dict[str, Any], while_running=None) -> tuple[dict[str, Any], float]:
    sfn = aws("stepfunctions")
    started = time.monotonic()
    execution = sfn.start_execution(stateMachineArn=stack["state_machine_arn"], name=name, input=json.dumps(execution_input))
    deadline = started + 30
    while (described := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{name} still running"
        if while_running:
            while_running()
        time.sleep(0.05)
    return described, time.monotonic() - started


def test_the_state_machine_retries_waits_and_times_out_at_the_time_scale(aws, stack):
    # Real time: two 10 s retry intervals, a 20 s wait, a 20 s task timeout. Scaled by 0.05: ~3 s.
    described, elapsed = run_execution(aws, stack, "timed-out", {"run": "timed-out", "park_seconds": 20})

    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["flaky"] == {"attempts": 3}  # two FlakyErrors retried by errorType
    assert output["timed_out"]["Error"] == "States.Timeout"
    assert 2.5 < elapsed < 10


def test_a_parked_task_resumes_with_send_task_success(aws, stack):
    table = aws("dynamodb")
    sent = []

    def resume_when_parked() -> None:
        item = table.get_item(TableName=stack["table"], Key={"pk": {"S": "token#resumed"}}).get("Item")
        if item and not sent:
            aws("stepfunctions").send_task_success(taskToken=item["token"]["S"], output=json.dumps({"by": "test"}))
            sent.append(True)

    described, _ = run_execution(aws, stack, "resumed", {"run": "resumed", "park_seconds": 600}, resume_when_parked)

    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["woken"] == {"by": "test"}


def test_stopping_a_parked_execution_aborts_it_at_once(aws, stack):
    sfn, table = aws("stepfunctions"), aws("dynamodb")
    execution = sfn.start_execution(
        stateMachineArn=stack["state_machine_arn"],
        name="stopped",
        input=json.dumps({"run": "stopped", "park_seconds": 600}),
    )["executionArn"]
    deadline = time.monotonic() + 10
    while not table.get_item(TableName=stack["table"], Key={"pk": {"S": "token#stopped"}}).get("Item"):
        assert time.monotonic() < deadline, "the execution never parked"
        time.sleep(0.05)

    sfn.stop_execution(executionArn=execution)

    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    deadline = time.monotonic() + 5
    while (kinds := [event["type"] for event in sfn.get_execution_history(executionArn=execution)["events"]])[
        -1
    ] != "ExecutionAborted":
        assert time.monotonic() < deadline, kinds
        time.sleep(0.05)
    assert "ExecutionFailed" not in kinds


def test_the_templates_resources_and_the_sandbox_secrets_exist_in_moto(aws, stack):
    role = aws("iam").get_role(RoleName="jobrelay-local-SchedulerRole")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert aws("iam").list_role_policies(RoleName="jobrelay-local-SchedulerRole")["PolicyNames"] == ["invoke-worker"]
    in_group = aws("scheduler").list_schedules(GroupName="jobrelay-local-Schedules")["Schedules"]
    assert {(s["Name"], s["State"]) for s in in_group} >= {
        ("jobrelay-local-Ticker", "ENABLED"),
        ("jobrelay-local-Dormant", "DISABLED"),
    }
    table = aws("dynamodb").describe_table(TableName=stack["table"])["Table"]
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["by_kind"]
    ttl = aws("dynamodb").describe_time_to_live(TableName=stack["table"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    s3 = aws("s3")
    assert s3.get_bucket_versioning(Bucket=stack["bucket"])["Status"] == "Enabled"
    encryption = s3.get_bucket_encryption(Bucket=stack["bucket"])["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = s3.get_bucket_policy(Bucket=stack["bucket"])["Policy"]
    assert "s3:DeleteBucket" in policy and "aws:SecureTransport" not in policy  # see _create_bucket_policy
    s3.put_object(Bucket=stack["bucket"], Key="results/x", Body=b"kept")
    assert s3.get_object(Bucket=stack["bucket"], Key="results/x")["Body"].read() == b"kept"
    assert aws("events").describe_event_bus(Name="jobrelay-local-bus")["Name"] == "jobrelay-local-bus"
    assert aws("cloudwatch").describe_alarms(AlarmNames=["jobrelay-local-Alarm"])["MetricAlarms"]
    assert (
        aws("logs").describe_log_groups(logGroupNamePrefix="jobrelay-local-MachineLogs")["logGroups"][0]["retentionInDays"] == 7
    )
    machine = aws("stepfunctions").describe_state_machine(stateMachineArn=stack["state_machine_arn"])
    assert ":function:jobrelay-local-WorkerFunction" in machine["definition"]

    secrets = aws("secretsmanager")
    generated = json.loads(secrets.get_secret_value(SecretId="jobrelay-local-Secret")["SecretString"])
    assert generated["username"] == "fixture" and len(generated["password"]) == 24
    account = json.loads(secrets.get_secret_value(SecretId="fixture/pinpointe/default")["SecretString"])
    assert account == {"base_url": stack["sandbox_url"], "job_seconds": 0.5, "records": 50}  # the test profile
    signing = json.loads(secrets.get_secret_value(SecretId="fixture/callbacks/default")["SecretString"])["signing_secret"]
    assert signing.startswith("whsec_") and len(base64.b64decode(signing.removeprefix("whsec_"))) == 32


def test_every_vendor_sandbox_runs_with_its_url_in_the_ready_file(stack):
    assert set(stack["sandboxes"]) == {"pinpointe", "mypreferences", "which50"}
    assert stack["sandbox_url"] == stack["pinpointe_url"] == stack["sandboxes"]["pinpointe"]  # the stand-in
    assert stack["mypreferences_url"] == stack["sandboxes"]["mypreferences"]
    ports = {url.rsplit(":", 1)[1] for url in stack["sandboxes"].values()}
    assert len(ports) == 3 and "0" not in ports  # each its own free port
    banner = stack["log"].read_text()
    for url in stack["sandboxes"].values():
        assert f"(faults: {url}/_sandbox/config)" in banner


def test_the_mypreferences_sandbox_is_up_and_its_secret_in_moto_reaches_it(aws, stack):
    base_url = stack["mypreferences_url"]
    config = httpx.get(f"{base_url}/_sandbox/config", timeout=10).json()
    assert config["process_seconds"] == 0.5  # the test profile

    secret = json.loads(aws("secretsmanager").get_secret_value(SecretId="fixture/mypreferences/default")["SecretString"])
    assert secret["base_url"] == base_url and secret["auth"]["scheme"] == "pnauthinfo3"
    account = MyPreferencesAccount.from_secret(secret)
    initiated = httpx.post(
        f"{base_url}/Profiles/Async/{account.client_id}/Import",
        json={"Name": "devstack check"},
        auth=account.authenticator(),
        timeout=10,
    )
    assert initiated.status_code == 200, initiated.text  # signed with the secret moto holds
    assert initiated.json()["AccessToken"]
    httpx.post(f"{base_url}/_sandbox/reset", timeout=10).raise_for_status()


def test_schedules_fire_their_target_function(aws, stack):
    # Besides the template's, a schedule created in Scheduler while the stack runs (as POST
    # /schedules does in the real template) fires too; disabled ones never do.
    scheduler, group, worker = aws("scheduler"), "jobrelay-local-Schedules", "jobrelay-local-WorkerFunction"
    target = {"Arn": f"arn:aws:lambda:us-east-1:123456789012:function:{worker}", "RoleArn": "arn:aws:iam::123456789012:role/r"}
    for name, state in (("runtime", "ENABLED"), ("runtime-off", "DISABLED")):
        scheduler.create_schedule(
            Name=name,
            GroupName=group,
            ScheduleExpression="rate(1 minute)",
            FlexibleTimeWindow={"Mode": "OFF"},
            State=state,
            Target=target | {"Input": json.dumps({"step": "tick", "source": name})},
        )
    # rate(1 minute) at time scale 0.05: every 3 s. The fixture's hourly cron may fire too (the
    # scaled clock crosses the top of the hour within minutes of it), so wait for the ticker's.
    wanted = {("ticker", worker), ("runtime", worker)}
    deadline = time.monotonic() + 15
    while True:
        ticks = aws("dynamodb").query(
            TableName=stack["table"],
            IndexName="by_kind",
            KeyConditionExpression="kind = :kind",
            ExpressionAttributeValues={":kind": {"S": "tick"}},
        )["Items"]
        fired = {(tick["source"]["S"], tick["layer"]["S"]) for tick in ticks}
        if wanted <= fired or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wanted <= fired, f"only {fired} fired"
    assert fired <= wanted | {("hourly", worker)}  # never Dormant (template) nor runtime-off
    ticker_times = [tick["at"]["S"] for tick in ticks if tick["source"]["S"] == "ticker"]
    assert len(ticker_times) == len(set(ticker_times))  # in the template and in moto: fired once
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", at) for at in ticker_times)  # Scheduler's context
    for name in ("runtime", "runtime-off"):
        scheduler.delete_schedule(Name=name, GroupName=group)


def test_invocations_are_logged_to_cloudwatch(api, aws):
    api.post("/echo/logged", json={})
    events = aws("logs").filter_log_events(logGroupName="/aws/lambda/jobrelay-local-EchoFunction")["events"]
    messages = [event["message"] for event in events]
    assert "echo called for POST /echo/{name}" in messages
    assert any(message.startswith("REPORT RequestId:") for message in messages)


def test_the_cli_refuses_a_template_it_cannot_run(tmp_path):
    broken = copy_fixture(tmp_path, "Type: AWS::SNS::Topic\n", "Type: AWS::SQS::Queue\n")
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "devstack",
            "--template",
            str(broken),
            *FREE_PORTS,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    assert "Topic: the local stack cannot create resources of type 'AWS::SQS::Queue'" in finished.stderr


# --- what the stack tells its user ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "named", "variable", "what"),
    [
        ("--port", "--port", "JOBRELAY_PORT", "the HTTP API"),
        ("--moto-port", "--moto-port", "JOBRELAY_MOTO_PORT", "moto, the AWS APIs"),
        ("--sandbox-port", "--pinpointe-port", "JOBRELAY_PINPOINTE_PORT", "the Pinpointe sandbox"),
        ("--mypreferences-port", "--mypreferences-port", "JOBRELAY_MYPREFERENCES_PORT", "the MyPreferences sandbox"),
        ("--which50-port", "--which50-port", "JOBRELAY_WHICH50_PORT", "the Which50 sandbox"),
    ],
)
def test_a_taken_port_is_one_line_naming_it_and_the_option_that_changes_it(option, named, variable, what):
    with socket.create_server(("127.0.0.1", 0)) as taken:  # as a first `make run` holds it
        port = taken.getsockname()[1]
        arguments = list(FREE_PORTS)
        arguments[arguments.index(option) + 1] = str(port)
        finished = subprocess.run(
            [sys.executable, "-m", "devstack", "--template", str(FIXTURE_TEMPLATE), *arguments],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert finished.returncode == 2
    assert finished.stderr.splitlines() == [
        f"devstack: port {port} is in use ({what}); start with {named} N, or make run ARGS='{named} N' "
        f"(or {variable}=N; 0 picks a free port)"
    ]
    assert "ready" not in finished.stdout


def test_ports_can_come_from_the_environment():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        environment = {**os.environ, "JOBRELAY_WHICH50_PORT": str(port)}
        arguments = list(FREE_PORTS)
        index = arguments.index("--which50-port")
        del arguments[index : index + 2]  # the variable, not an option, sets this one
        finished = subprocess.run(
            [sys.executable, "-m", "devstack", "--template", str(FIXTURE_TEMPLATE), *arguments],
            cwd=REPO,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert finished.returncode == 2
    assert f"port {port} is in use (the Which50 sandbox)" in finished.stderr


def banner_lines(stack) -> list[str]:
    text = stack["log"].read_text()
    start = text.index("jobrelay local stack is ready")
    return text[start : text.index("Ctrl-C stops everything.", start)].splitlines()


def test_the_banners_exports_are_all_boto3_needs_to_reach_moto(stack):
    (exports,) = [line.strip() for line in banner_lines(stack) if line.strip().startswith("export ")]
    clean = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    clean["AWS_CONFIG_FILE"] = clean["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull  # no profile to fall back on
    probe = "import boto3; print(boto3.client('secretsmanager').list_secrets()['SecretList'][0]['ARN'])"
    pasted = subprocess.run(
        ["bash", "-c", f"{exports}\n{shlex.quote(sys.executable)} -c {shlex.quote(probe)}"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert pasted.returncode == 0, pasted.stderr
    assert pasted.stdout.startswith(f"arn:aws:secretsmanager:{stack['region']}:")
    assert f"AWS_ENDPOINT_URL={stack['moto_url']} " in exports
    assert f"AWS_DEFAULT_REGION={stack['region']} AWS_REGION={stack['region']}" in exports


def test_the_banner_shows_the_callback_signing_secret_that_moto_holds(aws, stack):
    lines = banner_lines(stack)
    signing = json.loads(aws("secretsmanager").get_secret_value(SecretId="fixture/callbacks/default")["SecretString"])
    assert stack["callback_secret_name"] == "fixture/callbacks/default"
    assert "Callbacks are signed with the secret fixture/callbacks/default (a local fake, new at every start):" in lines
    assert f"  {signing['signing_secret']}" in lines


def test_the_banner_lists_what_the_sandboxes_hold_and_the_sample_files(stack):
    text = "\n".join(banner_lines(stack))
    held = text[text.index("What the sandboxes hold:") : text.index("Submit a job:")]

    config = MyPreferencesConfig()
    assert f"client id SANDBOX_CO, user sandbox.user; AlternateIdTypes {', '.join(config.alternate_id_types)}" in held
    assert f"an email at {config.exception_domain} fails at execution" in held
    for list_id, seed in SEED_LISTS.items():
        assert f'list {list_id} "{seed["Name"]}": fields Email (email), ' in held
    assert "Mobile (sms)" in held and "W50-12-0001" in held
    # The fixture stack's Pinpointe is a stand-in, which holds nothing to show.
    assert "Pinpointe" not in held and DEFAULT_AUTORESPONDERS["301"] not in held
    for sample in SAMPLES:
        shown = f"  {sample.path.relative_to(REPO)}"
        (line,) = [line for line in banner_lines(stack) if line.startswith(shown)]
        assert json.loads(line.removeprefix(shown)) == sample.job("<s3_uri>")
        assert sample.path.is_file()


# --- S3's check of presigned PUTs, which moto alone does not make ---------------------------------


def sigv4_s3(endpoint_url: str, key_id: str = "local", secret: str = "local") -> Any:
    """An S3 client that presigns as the API's does (SigV4 in the query; botocore's default for a
    custom endpoint is SigV2, whose URLs moto checks by itself)."""
    session = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1")
    return session.client("s3", endpoint_url=endpoint_url, config=Config(signature_version="s3v4"))


@pytest.fixture(scope="module")
def presigned_put(stack):
    def presign(key: str, content_type: str = "text/csv", client: Any = None) -> str:
        url = (client or sigv4_s3(stack["moto_url"])).generate_presigned_url(
            "put_object", Params={"Bucket": stack["bucket"], "Key": key, "ContentType": content_type}, ExpiresIn=600
        )
        assert "X-Amz-Signature=" in url
        return url

    return presign


def object_body(aws, stack, key: str) -> bytes | None:
    try:
        return aws("s3").get_object(Bucket=stack["bucket"], Key=key)["Body"].read()
    except aws("s3").exceptions.NoSuchKey:
        return None


def s3_error(response: httpx.Response) -> dict[str, str]:
    error = ElementTree.fromstring(response.content)
    assert error.tag == "Error" and response.headers["content-type"] == "application/xml"
    return {element.tag: element.text or "" for element in error}


def test_a_presigned_put_without_its_signed_content_type_is_refused_as_s3_refuses_it(aws, stack, presigned_put):
    url = presigned_put("uploads/no-header.csv")

    refused = httpx.put(url, content=b"Email\nada@example.org\n")

    assert refused.status_code == 403
    error = s3_error(refused)
    assert error["Code"] == "SignatureDoesNotMatch"
    assert error["AWSAccessKeyId"] == "local"
    # What the stack computed from the request, for the user to compare with what they signed.
    assert error["CanonicalRequest"].splitlines()[3:7] == ["content-type:", f"host:{url.split('/')[2]}", "", "content-type;host"]
    assert object_body(aws, stack, "uploads/no-header.csv") is None

    other_type = httpx.put(url, content=b"x", headers={"Content-Type": "application/json"})
    assert (other_type.status_code, s3_error(other_type)["Code"]) == (403, "SignatureDoesNotMatch")


def test_a_presigned_put_with_its_signed_headers_is_stored(aws, stack, presigned_put):
    url = presigned_put("uploads/with-header.csv")

    stored = httpx.put(url, content=b"Email\nada@example.org\n", headers={"Content-Type": "text/csv"})

    assert stored.status_code == 200, stored.text
    assert object_body(aws, stack, "uploads/with-header.csv") == b"Email\nada@example.org\n"
    # The same connection serves on after a refusal (its body was read, not left in the stream).
    with httpx.Client() as client:
        assert client.put(url, content=b"x" * 100_000).status_code == 403
        assert client.put(url, content=b"again", headers={"Content-Type": "text/csv"}).status_code == 200


def test_a_presigned_url_used_for_another_key_is_refused(stack, presigned_put):
    url = presigned_put("uploads/mine.csv")
    elsewhere = url.replace("uploads/mine.csv", "uploads/theirs.csv")

    refused = httpx.put(elsewhere, content=b"x", headers={"Content-Type": "text/csv"})

    assert (refused.status_code, s3_error(refused)["Code"]) == (403, "SignatureDoesNotMatch")


def test_sdk_calls_and_urls_presigned_with_other_fake_credentials_are_not_checked(aws, stack, presigned_put):
    # SDK calls sign in the Authorization header: moto serves them as ever.
    aws("s3").put_object(Bucket=stack["bucket"], Key="uploads/sdk.csv", Body=b"sdk", ContentType="text/csv")
    assert object_body(aws, stack, "uploads/sdk.csv") == b"sdk"
    # Credentials whose secret the stack does not know cannot be checked: moto takes them, so does the stack.
    url = presigned_put("uploads/other.csv", client=sigv4_s3(stack["moto_url"], "testing", "testing"))
    assert httpx.put(url, content=b"other").status_code == 200


def test_an_expired_presigned_put_is_refused():
    url = sigv4_s3("http://127.0.0.1:5000").generate_presigned_url(
        "put_object", Params={"Bucket": "b", "Key": "k.csv", "ContentType": "text/csv"}, ExpiresIn=60
    )
    target = url.removeprefix("http://127.0.0.1:5000")
    headers = {"host": "127.0.0.1:5000", "content-type": "text/csv"}
    now = datetime.now(UTC)

    assert check_presigned("PUT", target, headers, {"local": "local"}, now) is None
    expired = check_presigned("PUT", target, headers, {"local": "local"}, now + timedelta(seconds=120))
    assert expired is not None and (expired.code, expired.message) == ("AccessDenied", "Request has expired")
    assert b"<X-Amz-Expires>60</X-Amz-Expires>" in expired.xml()
