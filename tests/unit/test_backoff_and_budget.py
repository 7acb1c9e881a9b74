"""Backoff, deadlines, and the state-transition budget of docs/DESIGN.md, counted on the real ASL."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from bench.transitions import LowestJitter, count_transitions, load_asl
from jobrelay.domain.backoff import BackoffPolicy, bounded_wait, seconds_left

ASL = load_asl()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


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


def test_a_two_hour_webhook_job_costs_at_most_40_transitions():
    fallback = 900  # the template's default WebhookFallbackSeconds
    transitions = count_transitions(2 * 3600, lambda polls: {"next": "wait_webhook", "wait_seconds": fallback})
    assert transitions <= 40, transitions


def test_a_two_hour_poll_only_job_costs_at_most_120_transitions():
    policy = BackoffPolicy()  # the template's defaults: 5 s doubling up to 300 s
    transitions = count_transitions(
        2 * 3600, lambda polls: {"next": "wait_poll", "wait_seconds": policy.delay(polls, LowestJitter())}
    )
    assert transitions <= 120, transitions


@pytest.mark.parametrize("state", ["Start", "Poll", "Collect"])
def test_every_vendor_step_retries_transient_errors_and_catches_into_fail_job(state):
    definition = ASL["States"][state]
    retried = {name for rule in definition["Retry"] for name in rule["ErrorEquals"]}
    assert {"VendorTransientError", "Lambda.ServiceException"} <= retried
    assert definition["Catch"][-1] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "FailJob"}
