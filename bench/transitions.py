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
