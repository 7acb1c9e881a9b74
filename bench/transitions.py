"""State-transition cost of a job, counted by walking the real ASL (statemachines/job.asl.json).

Step Functions Standard bills every state entered. The walker plays a job the vendor finishes after
`job_seconds` and whose webhook never arrives (the worst case: every wait runs to its timeout), with
the waits the steps function would ask for.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

ASL_PATH = Path(__file__).resolve().parents[1] / "statemachines" / "job.asl.json"


def load_asl() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())


def count_transitions(job_seconds: int, next_wait: Callable[[int], dict[str, Any]], asl: dict[str, Any] | None = None) -> int:
    """`next_wait(polls_so_far)` is what Start/Poll return while the vendor is still busy:
    {"next": "wait_webhook" | "wait_poll", "wait_seconds": N}."""
    asl = asl or load_asl()
    clock = polls = transitions = 0
    name: str = asl["StartAt"]
    data: dict[str, Any] = {}
    while True:
        state = asl["States"][name]
        transitions += 1
        if state["Type"] in ("Succeed", "Fail"):
            return transitions
        if state["Type"] == "Choice":
            name = _choose(state, data)
            continue
        if state["Type"] == "Wait":
            clock += data["wait_seconds"]
        elif name == "WaitForWebhook":
            clock += data["wait_seconds"]  # no webhook: the task times out into its fallback
            name = next(c["Next"] for c in state["Catch"] if "States.Timeout" in c["ErrorEquals"])
            continue
        elif name in ("Start", "Poll"):
            polls += name == "Poll"
            data = {"next": "collect"} if clock >= job_seconds else next_wait(polls)
        elif name == "Notify":
            data = {"status": "SUCCEEDED"}
        name = state["Next"]


def count_queued_transitions(queued_seconds: int, slot_wait: Callable[[int], int], asl: dict[str, Any] | None = None) -> int:
    """A job whose account stays at its limit for `queued_seconds`: its transitions from its first
    state to the Route that sends it on once it holds a slot (a job that never queued pays two of
    them: Start, Route). `slot_wait(looks_so_far)` is the wait_seconds Start answers while no slot
    is free. Every wait for a slot runs to its end: a parked job's task to its fallback timeout
    (the worst case: its wake-up was lost, or the slot freed just as the timeout came)."""
    asl = asl or load_asl()
    clock = looks = transitions = 0
    admitted = False
    name: str = asl["StartAt"]
    data: dict[str, Any] = {}
    while True:
        state = asl["States"][name]
        transitions += 1
        if state["Type"] == "Choice":
            if admitted:
                return transitions
            name = _choose(state, data)
            continue
        if name == "Start":
            admitted = clock >= queued_seconds
            data = {"next": "wait_webhook"} if admitted else {"next": "wait_slot", "wait_seconds": slot_wait(looks)}
            looks += 1
        elif state["Type"] == "Wait":
            clock += data["wait_seconds"]
        elif state["Resource"].endswith(".waitForTaskToken"):
            clock += data["wait_seconds"]
            name = next(c["Next"] for c in state["Catch"] if "States.Timeout" in c["ErrorEquals"])
            continue
        name = state["Next"]


def queued_hour_transitions() -> int:
    """What a job queued behind its account's concurrency limit for an hour costs, with the wait the
    steps function asks for (budget: 5). For bench/cost.py's line:
    f"a job queued for an hour: {queued_hour_transitions()} state transitions (budget 5)"."""
    from jobrelay.services.steps import SLOT_WAIT_MAX_SECONDS  # the fallback timeout of a parked job

    return count_queued_transitions(3600, lambda looks: SLOT_WAIT_MAX_SECONDS)


def _choose(state: dict[str, Any], data: dict[str, Any]) -> str:
    for choice in state["Choices"]:
        rules = choice.get("Or", [choice])
        if any(data.get(rule["Variable"].removeprefix("$.")) == rule["StringEquals"] for rule in rules):
            return choice["Next"]
    return state["Default"]


class LowestJitter:
    """The worst case for the budget: every jittered delay at its shortest."""

    def uniform(self, low: float, high: float) -> float:
        return low
