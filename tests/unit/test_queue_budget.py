"""What a job queued behind its account's concurrency limit costs, counted on the real ASL
(docs/DESIGN.md's budget: at most 5 state transitions for an hour in the queue)."""

from bench.transitions import count_queued_transitions, load_asl, queued_hour_transitions
from jobrelay.services.steps import SLOT_WAIT_MAX_SECONDS

ASL = load_asl()


def test_a_job_queued_for_an_hour_costs_at_most_5_transitions():
    assert queued_hour_transitions() <= 5


def test_a_queued_job_pays_for_its_looks_not_for_the_time_it_waits():
    never_queued = count_queued_transitions(0, lambda looks: SLOT_WAIT_MAX_SECONDS)
    one_look = count_queued_transitions(60, lambda looks: SLOT_WAIT_MAX_SECONDS)
    assert count_queued_transitions(SLOT_WAIT_MAX_SECONDS, lambda looks: SLOT_WAIT_MAX_SECONDS) == one_look
    assert one_look - never_queued == 3  # Start, Route, WaitForSlot: the one look that parked it


def test_a_parked_job_is_woken_by_its_token_and_its_timeout_leads_back_to_start():
    wait = ASL["States"]["WaitForSlot"]
    assert wait["Resource"].endswith(".waitForTaskToken")
    assert wait["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert wait["Next"] == "Start"
    catches = {tuple(rule["ErrorEquals"]): rule["Next"] for rule in wait["Catch"]}
    assert catches == {("States.Timeout",): "Start", ("States.ALL",): "FailJob"}
