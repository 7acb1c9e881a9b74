"""Backoff, deadlines, and the state-transition budget of DESIGN.md, counted on the real ASL."""

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobrelay.domain.backoff import BackoffPolicy, bounded_wait, seconds_left

ASL = json.loads((Path(__file__).parents[2] / "statemachines" / "job.asl.json").read_text())
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class LowestJitter:
    """The worst case for the budget: every jittered delay at its shortest."""

    def uniform(self, low, high):
        return low


def test_backoff_grows_from_seconds_to_its_cap():
    policy = BackoffPolicy(initial_seconds=5, max_seconds=300, jitter=0)
    assert [policy.delay(n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]


def test_backoff_jitter_stays_within_its_share():
    policy = BackoffPolicy(initial_seconds=100, max_seconds=100, jitter=0.1)
    rng = random.Random(7)
    delays = {policy.delay(3, rng) for _ in range(200)}
    assert min(delays) >= 90 and max(delays) <= 110 and len(delays) > 5


def test_waits_end_at_the_deadline_and_are_never_zero():
    deadline = T0 + timedelta(seconds=30)
    assert bounded_wait(900, deadline, T0) == 30
    assert bounded_wait(10, deadline, T0) == 10
    assert bounded_wait(10, deadline, T0 + timedelta(seconds=29.5)) == 1
    assert seconds_left(deadline, T0 + timedelta(seconds=31)) < 0


def _walk(job_seconds: int, next_wait) -> int:
    """Follow job.asl.json for a job the vendor finishes after `job_seconds` and whose webhook
    never comes (the worst case); count the states entered, as Step Functions bills them."""
    clock, polls, transitions = 0, 0, 0
    state_name, data = ASL["StartAt"], {}
    while True:
        state = ASL["States"][state_name]
        transitions += 1
        kind = state["Type"]
        if kind in ("Succeed", "Fail"):
            return transitions
        if kind == "Choice":
            state_name = _choose(state, data)
            continue
        if kind == "Wait":
            clock += data["wait_seconds"]
        elif state_name == "WaitForWebhook":
            clock += data["wait_seconds"]  # no webhook: the task times out into Poll
            state_name = next(c["Next"] for c in state["Catch"] if "States.Timeout" in c["ErrorEquals"])
            continue
        elif state_name in ("Start", "Poll"):
            if state_name == "Poll":
                polls += 1
            done = clock >= job_seconds
            data = {"next": "collect"} if done else next_wait(polls)
        elif state_name == "Notify":
            data = {"status": "SUCCEEDED"}
        state_name = state["Next"]


def _choose(state, data):
    for choice in state["Choices"]:
        rules = choice.get("Or", [choice])
        if any(data.get(r["Variable"].removeprefix("$.")) == r["StringEquals"] for r in rules):
            return choice["Next"]
    return state["Default"]


def test_a_two_hour_webhook_job_costs_at_most_40_transitions():
    fallback = 900  # the template's default WebhookFallbackSeconds
    transitions = _walk(2 * 3600, lambda polls: {"next": "wait_webhook", "wait_seconds": fallback})
    assert transitions <= 40, transitions


def test_a_two_hour_poll_only_job_costs_at_most_120_transitions():
    policy = BackoffPolicy()  # the template's defaults: 5 s doubling up to 300 s
    transitions = _walk(
        2 * 3600, lambda polls: {"next": "wait_poll", "wait_seconds": policy.delay(polls, LowestJitter())}
    )
    assert transitions <= 120, transitions


@pytest.mark.parametrize("state", ["Start", "Poll", "Collect"])
def test_every_vendor_step_retries_transient_errors_and_catches_into_fail_job(state):
    definition = ASL["States"][state]
    retried = {name for rule in definition["Retry"] for name in rule["ErrorEquals"]}
    assert {"VendorTransientError", "Lambda.ServiceException"} <= retried
    assert definition["Catch"][-1] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "FailJob"}
