"""The whole system on one machine, no AWS account and no Docker: `LocalStack`.

It starts, in order: the front door's socket (its URL is the PublicApiUrl parameter, so vendor
webhooks reach it), the template resolved with the profile's parameter overrides (a template the
stack cannot run fails here, before anything else starts), a moto server with Step Functions
executions on (behind S3's check of presigned PUTs, devstack/presigned.py), every vendor sandbox
of `VENDORS`, the in-process Lambda runtime, the time scale and a prompt StopExecution (three
patches of moto), every resource of the template, the secrets the sandbox accounts need, then the
front door's routes and the schedule timer. `stop` undoes it all in reverse. A port that cannot be bound stops the start with `PortUnavailable`, naming the port and
what wanted it.
"""

import base64
import errno
import json
import os
import secrets
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol, Self

import boto3
from botocore.config import Config

from devstack.clock import ScaledClock, scaled_step_functions
from devstack.executions import stop_executions_at_once
from devstack.front_door import FrontDoor
from devstack.lambdas import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, InProcessLambdas
from devstack.local_scheduler import Schedule, ScheduleTimer, scheduler_schedules
from devstack.moto_server import MotoServer
from devstack.resources import create_resources
from devstack.template import (
    DEFAULT_REGION,
    DEFAULT_STACK_NAME,
    DEFAULT_TEMPLATE,
    StackTemplate,
    TemplateError,
    load_yaml,
    resolve_template,
)
from jobrelay.operations import VENDORS as VENDOR_MANIFESTS

SANDBOX_ACCOUNT = "default"
# An HTTP API's integration timeout: its default and its maximum (a REST API's is 29 s). The front
# door waits this long for a function, then answers as API Gateway does (devstack/front_door.py).
API_GATEWAY_TIMEOUT_SECONDS = 30
# The ready file's keys for the template's outputs.
OUTPUT_KEYS = {"bucket": "ResultsBucketName", "table": "JobsTableName", "state_machine_arn": "StateMachineArn"}


@dataclass(frozen=True)
class Profile:
    """How long things take: template parameters (applied where the template declares them) and the
    time scale. Each sandbox's pace per profile is its entry's in `VENDORS`."""

    parameters: Mapping[str, str]
    time_scale: float


PROFILES = {
    # make run: realistic, but short enough to watch a job end to end.
    "run": Profile(
        parameters={
            "WebhookFallbackSeconds": "30",
            "PollInitialSeconds": "2",
            "PollMaxSeconds": "20",
            "VendorNotFoundGraceSeconds": "30",
        },
        time_scale=1.0,
    ),
    # the end-to-end tests: every wait 20 times shorter.
    "test": Profile(
        parameters={
            # 3 s once scaled: a webhook due 0.5 s after the task parks arrives well before the
            # fallback, even when the serialised invocations (a sweep, a schedule) keep it waiting.
            "WebhookFallbackSeconds": "60",
            "PollInitialSeconds": "2",
            "PollMaxSeconds": "10",
            "VendorNotFoundGraceSeconds": "10",
            # One batch per Stage step: invocations are serialised here, so a short step lets a
            # cancel (or any request) in between batches, as concurrent Lambdas would.
            "StageStepSeconds": "1",
        },
        time_scale=0.05,
    ),
}


class Sandbox(Protocol):
    """A vendor simulator (devstack/sandbox/)."""

    @property
    def base_url(self) -> str: ...

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def account_secret(self) -> dict[str, Any]: ...

    # The sandboxes also have `fixtures() -> list[str]`: what a user can try against them, for the
    # banner. Not part of the protocol: a stand-in (the tests') need not describe itself.


SandboxFactory = Callable[..., Sandbox]  # (host, port, **the vendor's settings for the profile) -> Sandbox


@dataclass(frozen=True)
class SandboxVendor:
    """One vendor's simulator in the local stack, as its manifest declares it (jobrelay.vendors.manifest).
    Its account's secret is `<SecretsPrefix><name>/default`, its URL the ready file's `<name>_url` and
    `sandboxes[name]`."""

    title: str  # in the banner
    default_port: int
    factory: SandboxFactory
    settings: Mapping[str, Mapping[str, Any]]  # profile name -> the factory's keyword arguments
    secret_options: Mapping[str, Any] = field(default_factory=dict)  # account_secret()'s, for its account

    def secret(self, sandbox: Any) -> dict[str, Any]:
        """The sandbox account's secret, as the vendor's adapter reads it."""
        secret: dict[str, Any] = sandbox.account_secret(**self.secret_options)
        return secret


def _sandbox_factory(reference: str) -> SandboxFactory:
    """The manifest's "module:class", imported when a stack starts (the sandboxes are not free to load)."""

    def build(host: str, port: int, **settings: Any) -> Sandbox:
        module, name = reference.split(":")
        sandbox: Sandbox = getattr(import_module(module), name)(host, port, **settings)
        return sandbox

    return build


# Every vendor sandbox the stack runs, in start order: one per vendor manifest that declares one
# (jobrelay.operations.VENDORS), so a new vendor's sandbox runs here without an edit.
VENDORS: Mapping[str, SandboxVendor] = {
    manifest.name: SandboxVendor(
        title=manifest.title,
        default_port=manifest.sandbox.default_port,
        factory=_sandbox_factory(manifest.sandbox.factory),
        settings=manifest.sandbox.settings,
        secret_options=manifest.sandbox.secret_options,
    )
    for manifest in VENDOR_MANIFESTS.values()
    if manifest.sandbox is not None
}
PRIMARY_SANDBOX = "pinpointe"  # the ready file's `sandbox_url`, kept for the clients that predate `sandboxes`


class PortUnavailable(Exception):
    """A port the stack was asked to bind is taken (or not ours to take). `role` is "api", "moto"
    or a name of `VENDORS`: the caller knows which option sets that port."""

    def __init__(self, role: str, port: int, reason: str):
        self.role, self.port, self.reason = role, port, reason
        super().__init__(f"port {port} {reason} ({describe_role(role)})")


def describe_role(role: str) -> str:
    if role == "api":
        return "the HTTP API"
    if role == "moto":
        return "moto, the AWS APIs"
    return f"the {VENDORS[role].title} sandbox"


@contextmanager
def _binding(role: str, port: int) -> Iterator[None]:
    """Turn a failed bind into PortUnavailable: a sentence a user can act on, not a traceback."""
    try:
        yield
    except OSError as error:
        reasons = {errno.EADDRINUSE: "is in use", errno.EACCES: "needs privileges this user lacks"}
        if error.errno not in reasons:
            raise
        raise PortUnavailable(role, port, reasons[error.errno]) from None


@dataclass
class _Running:
    """What exists while the stack runs."""

    front_door: FrontDoor
    moto_url: str
    sandboxes: dict[str, Sandbox]  # VENDORS' names -> running sandboxes
    template: StackTemplate
    clients: dict[str, Any] = field(default_factory=dict)
    callback_secret: tuple[str, str] = ("", "")  # the callbacks account's secret: (name, signing secret)


class LocalStack:
    def __init__(
        self,
        *,
        template_path: Path = DEFAULT_TEMPLATE,
        profile: str = "run",
        host: str = "127.0.0.1",
        api_port: int = 3000,
        moto_port: int = 5000,
        sandbox_ports: Mapping[str, int] | None = None,
        time_scale: float | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        sandbox_factories: Mapping[str, SandboxFactory] | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        region: str = DEFAULT_REGION,
        metrics_file: Path | None = None,
    ):
        """`sandbox_ports` and `sandbox_factories` are keyed by `VENDORS`' names; a vendor not named
        gets its default port and its own sandbox (tests inject stand-ins through the factories).
        `metrics_file`: where the functions' metrics (EMF lines) are kept, emptied at the start."""
        for name in {*(sandbox_ports or {}), *(sandbox_factories or {})} - set(VENDORS):
            raise ValueError(f"no vendor sandbox named {name!r}: {', '.join(VENDORS)}")
        self.template_path = Path(template_path)
        self.profile_name = profile
        self.profile = PROFILES[profile]
        for name, vendor in VENDORS.items():
            if profile not in vendor.settings:
                raise ValueError(f"the {name} sandbox has no settings for the {profile!r} profile")
        self.time_scale = self.profile.time_scale if time_scale is None else time_scale
        self.region = region
        self._host = host
        self._ports = {"api": api_port, "moto": moto_port}
        self._sandbox_ports = {name: vendor.default_port for name, vendor in VENDORS.items()} | dict(sandbox_ports or {})
        self._overrides = dict(parameter_overrides or {})
        self._sandbox_factories = {name: vendor.factory for name, vendor in VENDORS.items()} | dict(sandbox_factories or {})
        self._stack_name = stack_name
        self.metrics_file = metrics_file
        self._exit_stack = ExitStack()
        self._running: _Running | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        with ExitStack() as starting:
            starting.callback(self._forget_running)
            with _binding("api", self._ports["api"]):
                front_door = FrontDoor(self._host, self._ports["api"])
            starting.callback(front_door.stop)
            template = resolve_template(
                self.template_path,
                parameter_overrides=self._parameter_overrides(front_door.url),
                stack_name=self._stack_name,
                region=self.region,
            )
            moto_url = self._start_moto(starting)
            sandboxes = self._start_sandboxes(starting)
            running = self._running = _Running(front_door, moto_url, sandboxes, template)
            if self.metrics_file is not None:
                self.metrics_file.parent.mkdir(parents=True, exist_ok=True)
                self.metrics_file.write_text("", encoding="utf-8")
            lambdas = InProcessLambdas(
                template.functions, endpoint_url=moto_url, region=self.region, metrics_file=self.metrics_file
            )
            starting.enter_context(lambdas.serving_moto())
            starting.enter_context(scaled_step_functions(self.time_scale))
            starting.enter_context(stop_executions_at_once())
            lambdas.load_all()
            create_resources(template, self.client)
            running.callback_secret = self._create_sandbox_secrets(template, sandboxes)
            front_door.serve(
                template.routes,
                self.client("lambda", read_timeout=API_GATEWAY_TIMEOUT_SECONDS),
                template.naming.account_id,
            )
            # The template's schedules, and those EventBridge Scheduler holds in moto (POST /schedules).
            at_run_time = scheduler_schedules(self.client("scheduler"), {f.arn: f.name for f in template.functions})
            timer = ScheduleTimer(template.schedules, self._fire, ScaledClock(self.time_scale), source=at_run_time)
            timer.start()
            starting.callback(timer.stop)
            self._exit_stack = starting.pop_all()
        return self

    def stop(self) -> None:
        self._exit_stack.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- where things are -----------------------------------------------------------------------

    @property
    def template(self) -> StackTemplate:
        return self._live().template

    @property
    def api_url(self) -> str:
        return self._live().front_door.url

    @property
    def moto_url(self) -> str:
        return self._live().moto_url

    @property
    def sandboxes(self) -> dict[str, str]:
        """Each vendor sandbox's URL by `VENDORS`' name; their /_sandbox/ routes switch faults on and off."""
        return {name: sandbox.base_url for name, sandbox in self._live().sandboxes.items()}

    @property
    def sandbox_url(self) -> str:
        """The Pinpointe sandbox (`sandboxes["pinpointe"]`)."""
        return self.sandboxes[PRIMARY_SANDBOX]

    @property
    def callback_secret(self) -> tuple[str, str]:
        """(name, signing secret) of the secret the stack's callbacks are signed with: a local fake,
        made afresh at every start."""
        return self._live().callback_secret

    def sandbox_fixtures(self) -> dict[str, list[str]]:
        """What each sandbox holds that a user can try (ids, names, what makes a record fail), in
        its own words; a sandbox that cannot say (a stand-in) is left out."""
        return {
            name: fixtures()
            for name, sandbox in self._live().sandboxes.items()
            if callable(fixtures := getattr(sandbox, "fixtures", None))
        }

    def ready_info(self) -> dict[str, Any]:
        """What a client needs to reach the stack (the --ready-file's content)."""
        outputs = self.template.outputs
        sandboxes = self.sandboxes
        return {
            "api_url": self.api_url,
            "moto_url": self.moto_url,
            "sandbox_url": sandboxes[PRIMARY_SANDBOX],
            "sandboxes": sandboxes,
            **{f"{name}_url": url for name, url in sandboxes.items()},
            "region": self.region,
            "credentials": {"aws_access_key_id": FAKE_ACCESS_KEY_ID, "aws_secret_access_key": FAKE_SECRET_ACCESS_KEY},
            "callback_secret_name": self.callback_secret[0],
            "metrics_file": str(self.metrics_file) if self.metrics_file is not None else None,
            **{key: outputs.get(output) for key, output in OUTPUT_KEYS.items()},
        }

    def client(self, service: str, *, read_timeout: float = 60) -> Any:
        """A boto3 client for `service` in moto (cached per service and timeout), see `moto_client`."""
        running = self._live()
        key = f"{service}/{read_timeout}"
        if key not in running.clients:
            running.clients[key] = moto_client(service, running.moto_url, self.region, read_timeout=read_timeout)
        return running.clients[key]

    # --- the steps of start ---------------------------------------------------------------------

    def _forget_running(self) -> None:
        self._running = None

    def _live(self) -> _Running:
        if self._running is None:
            raise RuntimeError("the local stack is not running")
        return self._running

    def _start_moto(self, starting: ExitStack) -> str:
        with _binding("moto", self._ports["moto"]):
            server = MotoServer(self._host, self._ports["moto"], secret_keys={FAKE_ACCESS_KEY_ID: FAKE_SECRET_ACCESS_KEY})
        server.start()
        starting.callback(server.stop)
        moto_url, port = server.url, server.port
        # moto's Step Functions interpreter calls the other services at localhost:$MOTO_PORT
        # (moto.settings.moto_server_port()); without this its Lambda tasks would call port 5000.
        previous_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(port)
        starting.callback(_restore_variable, "MOTO_PORT", previous_port)
        # moto's backends live as long as the process: start from none, whatever ran here before.
        _post(f"{moto_url}/moto-api/reset", {})
        _post(f"{moto_url}/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
        return moto_url

    def _start_sandboxes(self, starting: ExitStack) -> dict[str, Sandbox]:
        sandboxes: dict[str, Sandbox] = {}
        for name, vendor in VENDORS.items():
            sandbox = self._sandbox_factories[name](self._host, self._sandbox_ports[name], **vendor.settings[self.profile_name])
            with _binding(name, self._sandbox_ports[name]):
                sandbox.start()
            starting.callback(sandbox.stop)
            sandboxes[name] = sandbox
        return sandboxes

    def _parameter_overrides(self, api_url: str) -> dict[str, str]:
        """The profile's values, PublicApiUrl and AllowLocalCallbacks (callbacks to listeners on
        this machine, over plain http) where the template declares those parameters, then the
        caller's overrides, which must all exist (as with `sam deploy --parameter-overrides`)."""
        declared = load_yaml(self.template_path).get("Parameters", {})
        defaults = {**self.profile.parameters, "PublicApiUrl": api_url, "AllowLocalCallbacks": "true"}
        return {**{name: value for name, value in defaults.items() if name in declared}, **self._overrides}

    def _create_sandbox_secrets(self, template: StackTemplate, sandboxes: Mapping[str, Sandbox]) -> tuple[str, str]:
        """Create each sandbox account's secret and the callbacks' signing secret; the latter's
        (name, value), which the banner shows."""
        if "SecretsPrefix" not in template.parameters:
            raise TemplateError("the local stack names the sandboxes' secrets after the SecretsPrefix parameter")
        prefix = template.parameters["SecretsPrefix"]
        signing_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        callbacks = f"{prefix}callbacks/{SANDBOX_ACCOUNT}"
        values = {
            **{f"{prefix}{name}/{SANDBOX_ACCOUNT}": VENDORS[name].secret(sandbox) for name, sandbox in sandboxes.items()},
            callbacks: {"signing_secret": signing_secret},
        }
        for name, value in values.items():
            self.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(value))
        return callbacks, signing_secret

    def _fire(self, schedule: Schedule, moment: datetime) -> None:
        # The Qualifier puts a query string on moto's Invoke URL, as devstack/front_door.py explains.
        answer = self.client("lambda").invoke(
            FunctionName=schedule.function_name, Qualifier="$LATEST", Payload=schedule.payload(moment).encode()
        )
        if answer.get("FunctionError"):
            raise RuntimeError(f"{schedule.function_name}: {answer['Payload'].read().decode('utf-8', 'replace')}")


def moto_client(service: str, endpoint_url: str, region: str, *, read_timeout: float = 60) -> Any:
    """A boto3 client for `service` at `endpoint_url` (moto), with the stack's fake credentials,
    that makes exactly one attempt per call: never a retry, not after a read timeout nor after a
    dropped connection.

    The stack's calls are the gateway's and the scheduler's Invokes, which AWS makes once per
    request or firing, and its own setup in moto, where nothing is transient: a retry could only
    run a function twice or create a resource twice. (`{"max_attempts": 1}` was one retry, two
    attempts: botocore reads a Config's `max_attempts` as retries in every mode. `total_max_attempts`
    counts every attempt, and naming the mode keeps AWS_RETRY_MODE and AWS_MAX_ATTEMPTS from
    changing it.)"""
    # boto3-stubs types clients by literal service name only; `service` is any name here.
    return boto3.session.Session().client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        config=Config(read_timeout=read_timeout, retries={"mode": "standard", "total_max_attempts": 1}),
    )


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def _restore_variable(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
