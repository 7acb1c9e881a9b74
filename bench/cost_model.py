"""The cost model: a job's state transitions and step invocations over a stated time at the vendor,
walked on the real ASL (statemachines/job.asl.json) with template.yaml's production parameters,
each step priced at what that step was measured to use (bench/cost_run.py), at the dated public
prices (bench/prices.py).

Only the waiting is modelled: how many polls, webhook waits and transitions a job makes while the
vendor works for `vendor_seconds`. What one step uses (Lambda time, DynamoDB units, S3 requests,
events, logs), how many Stage steps an import takes and how many times a queued job parks are
counted on the local stack.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench import prices
from bench.metering import Usage
from bench.transitions import load_asl
from devstack.template import load_yaml
from jobrelay.domain.backoff import BackoffPolicy

REPO = Path(__file__).resolve().parents[1]
NAIVE_POLL_SECONDS = 10
QUEUED_START = "start (queued)"  # a Start that found no free slot

Waits = Literal["webhook", "polling", "nothing"]


@dataclass(frozen=True)
class Parameters:
    """template.yaml's defaults: what a deployed stack runs with unless overridden."""

    webhook_fallback_seconds: int
    poll_initial_seconds: int
    poll_max_seconds: int
    sweep_seconds: int  # the sweeper's schedule
    architecture: str

    @classmethod
    def of_template(cls) -> Parameters:
        template = load_yaml(REPO / "template.yaml")
        defaults = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
        sweep = template["Resources"]["SweeperFunction"]["Properties"]["Events"]["Sweep"]["Properties"]["Schedule"]
        (architecture,) = template["Globals"]["Function"]["Architectures"]
        return cls(
            webhook_fallback_seconds=int(defaults["WebhookFallbackSeconds"]),
            poll_initial_seconds=int(defaults["PollInitialSeconds"]),
            poll_max_seconds=int(defaults["PollMaxSeconds"]),
            sweep_seconds=_rate_seconds(sweep),
            architecture=architecture,
        )


def _rate_seconds(expression: str) -> int:
    """rate(5 minutes) -> 300."""
    amount, unit = expression.removeprefix("rate(").removesuffix(")").split()
    return int(amount) * {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600}[unit]


@dataclass(frozen=True)
class Shape:
    """What the walk cannot know of a job and the local stack counted: how it waits for the vendor,
    how many Stage steps it took, how many times it parked for a concurrency slot."""

    waits: Waits
    stage_steps: int = 0
    slot_parks: int = 0


@dataclass
class Walk:
    transitions: int = 0
    steps: Counter[str] = field(default_factory=Counter)  # Lambda invocations by step (and QUEUED_START)
    seconds: float = 0.0  # how long the job lasted


class _MidJitter:
    """The expected delay: jitter is symmetric around it."""

    def uniform(self, low: float, high: float) -> float:
        return (low + high) / 2


def walk(
    shape: Shape,
    vendor_seconds: float,
    parameters: Parameters,
    *,
    naive_poll_seconds: int | None = None,
    queued_seconds: float = 0,
    slot_timeout_seconds: int = 3600,
    asl: Mapping[str, Any] | None = None,
) -> Walk:
    """One job through the ASL: queued for `queued_seconds` (parking `shape.slot_parks` times; a park
    longer than `slot_timeout_seconds` times out and looks again), staged, then waiting for a vendor
    that finishes `vendor_seconds` after the job reaches it. Webhook waits end when the vendor
    finishes (the webhook arrives) or at the fallback timeout; polls follow the backoff at its
    expected delay. `naive_poll_seconds`: instead, every wait is a plain Wait of that long and a poll."""
    asl = asl or load_asl()
    policy = BackoffPolicy(parameters.poll_initial_seconds, parameters.poll_max_seconds)
    result = Walk()
    clock = 0.0
    vendor_from: float | None = None  # when the vendor got the job (after queueing and staging)
    polls = stages = parks = 0
    data: dict[str, Any] = {}
    name: str = asl["StartAt"]

    def waiting() -> dict[str, Any]:
        if naive_poll_seconds is not None and shape.waits != "nothing":
            return {"next": "wait_poll", "wait_seconds": naive_poll_seconds}
        if shape.waits == "webhook":
            return {"next": "wait_webhook", "wait_seconds": parameters.webhook_fallback_seconds}
        if shape.waits == "polling":
            return {"next": "wait_poll", "wait_seconds": policy.delay(polls, _MidJitter())}
        return {"next": "collect"}

    def vendor_done_at() -> float:
        assert vendor_from is not None
        return vendor_from + vendor_seconds

    while True:
        state = asl["States"][name]
        result.transitions += 1
        kind = state["Type"]
        if kind in ("Succeed", "Fail"):
            result.seconds = clock
            return result
        if kind == "Choice":
            name = _choose(state, data)
            continue
        if kind == "Wait":
            clock += data["wait_seconds"]
            name = state["Next"]
            continue
        step = state.get("Parameters", {}).get("Payload", {}).get("step")
        result.steps[step] += 1
        if state["Resource"].endswith(".waitForTaskToken"):
            # Parked on a task token: woken early (Next) or timed out (the Catch for States.Timeout).
            if step == "await_slot":
                # The parks the local stack counted beyond the last were woken at once (a slot taken
                # by another job first); the last one, and any after a timeout, last out the queue.
                woken_at = max(clock, queued_seconds) if parks >= shape.slot_parks - 1 else clock
                parks += 1
            else:
                woken_at = vendor_done_at()
            timeout_at = clock + data["wait_seconds"]
            if woken_at <= timeout_at:
                clock = max(clock, woken_at)
                name = state["Next"]
            else:
                clock = timeout_at
                name = next(c["Next"] for c in state["Catch"] if "States.Timeout" in c["ErrorEquals"])
            continue
        if step == "start":
            if parks < shape.slot_parks or clock < queued_seconds:
                data = {"next": "wait_slot", "wait_seconds": slot_timeout_seconds}
                result.steps[step] -= 1
                result.steps[QUEUED_START] += 1  # a look for a slot: cheaper than a start at the vendor
            elif shape.stage_steps:
                data = {"next": "stage"}
            else:
                vendor_from = clock
                data = waiting()
        elif step == "stage":
            stages += 1
            if stages < shape.stage_steps:
                data = {"next": "stage"}
            else:
                vendor_from = clock
                data = waiting()
        elif step == "poll":
            polls += 1
            data = {"next": "collect"} if clock >= vendor_done_at() else waiting()
        elif step in ("collect", "notify"):
            data = {"next": "done", "status": "SUCCEEDED"}
        name = state["Next"]


def _choose(state: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    for choice in state["Choices"]:
        rules = choice.get("Or", [choice])
        if any(data.get(rule["Variable"].removeprefix("$.")) == rule["StringEquals"] for rule in rules):
            return str(choice["Next"])
    return str(state["Default"])


# --- pricing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bill:
    """A Usage priced, line by line."""

    lines: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.lines.values())


def price(usage: Usage, parameters: Parameters) -> Bill:
    return Bill(
        {
            "Step Functions": prices.STATE_TRANSITION.of(usage.transitions),
            "Lambda": prices.LAMBDA_REQUEST.of(usage.invocations)
            + prices.LAMBDA_GB_SECOND[parameters.architecture].of(usage.gb_seconds),
            "DynamoDB": prices.DYNAMODB_READ.of(usage.read_units) + prices.DYNAMODB_WRITE.of(usage.write_units),
            "S3": prices.S3_PUT.of(usage.s3_put) + prices.S3_GET.of(usage.s3_get),
            "EventBridge": prices.EVENTBRIDGE_EVENT.of(usage.events),
            "Secrets Manager": prices.SECRETS_CALL.of(usage.secret_calls),
            "CloudWatch Logs": prices.LOGS_INGESTED.of(usage.log_bytes),
            "API Gateway": prices.HTTP_API_REQUEST.of(usage.api_requests),
        }
    )


def dollars(amount: float) -> str:
    """A small amount readably: $0.00123, $0.0000456."""
    if amount == 0:
        return "$0"
    if amount >= 1:
        return f"${amount:,.2f}"
    return f"${amount:.3g}" if amount >= 0.001 else f"${amount:.2e}"
