"""The cost benchmark's own arithmetic (bench/metering.py, bench/cost_model.py): DynamoDB's sizing
rules, and the walk of the real ASL that models a job's waiting. The meter on moto's real items is
tests/integration/test_cost_metering.py."""

from bench.cost_model import QUEUED_START, Parameters, Shape, walk
from bench.metering import _Index, _index_writes, _size, _Table

PARAMETERS = Parameters(
    webhook_fallback_seconds=900, poll_initial_seconds=5, poll_max_seconds=300, sweep_seconds=300, architecture="arm64"
)


def test_an_items_size_counts_names_and_values_as_dynamodb_does() -> None:
    assert _size({"pk": {"S": "JOB#1"}}) == 2 + 5
    assert _size({"n": {"N": "123"}}) == 1 + 2 + 1  # a byte per two significant digits, plus one
    assert _size({"n": {"N": "-0.00120"}}) == 1 + 1 + 1  # sign and zeros are not digits
    assert _size({"m": {"M": {"a": {"S": "x"}}}}) == 1 + 3 + (1 + 1 + 1)  # 3 bytes a map, 1 an element
    assert _size({"l": {"L": [{"BOOL": True}, {"NULL": True}]}}) == 1 + 3 + 2 * (1 + 1)


ALL = _Index("by_status", ("status", "created_key"), "ALL", frozenset())
INCLUDE = _Index("by_account", ("account", "created_key"), "INCLUDE", frozenset({"status"}))
TABLE = _Table(("pk", "sk"), (ALL, INCLUDE))
JOB = {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}, "created_key": {"S": "k"}, "account": {"S": "a"}, "status": {"S": "RUNNING"}}


def test_an_index_is_written_when_what_it_projects_changes_twice_when_its_key_moves() -> None:
    progress = JOB | {"progress": {"S": "40%"}}
    ended = JOB | {"status": {"S": "SUCCEEDED"}}

    assert _index_writes(TABLE, ALL, JOB, progress) == 1  # every attribute is projected
    assert _index_writes(TABLE, INCLUDE, JOB, progress) == 0  # progress is not
    assert _index_writes(TABLE, ALL, JOB, ended) == 2  # its key moved: a delete and a put
    assert _index_writes(TABLE, INCLUDE, JOB, ended) == 1  # a projected attribute changed
    assert _index_writes(TABLE, ALL, None, JOB) == 1 and _index_writes(TABLE, ALL, JOB, None) == 1
    assert _index_writes(TABLE, ALL, {"pk": {"S": "x"}, "sk": {"S": "EVT#1"}}, None) == 0  # never in it


def test_a_webhook_job_within_the_fallback_makes_one_wait_and_one_poll() -> None:
    walked = walk(Shape("webhook"), 600, PARAMETERS)

    # Start, Route, WaitForWebhook, Poll, Route, Collect, Notify, Outcome, Done
    assert walked.transitions == 9
    assert dict(walked.steps) == {"start": 1, "await_webhook": 1, "poll": 1, "collect": 1, "notify": 1}


def test_a_long_webhook_job_polls_once_per_fallback_timeout() -> None:
    walked = walk(Shape("webhook"), 2 * 3600, PARAMETERS)

    assert walked.steps["await_webhook"] == walked.steps["poll"] == 8  # 2 h / 900 s
    assert walked.transitions <= 40  # the budget (docs/DESIGN.md)


def test_the_naive_loop_polls_every_ten_seconds_at_three_transitions_a_poll() -> None:
    walked = walk(Shape("webhook"), 600, PARAMETERS, naive_poll_seconds=10)
    typical = walk(Shape("webhook"), 600, PARAMETERS)

    assert walked.steps["poll"] == 60 and "await_webhook" not in walked.steps
    assert walked.transitions == typical.transitions - 3 + 3 * 60  # WaitToPoll, Poll, Route each time


def test_a_polled_import_stages_then_polls_with_the_backoff() -> None:
    walked = walk(Shape("polling", stage_steps=2), 600, PARAMETERS)

    assert walked.steps["stage"] == 2
    # 5, 10, 20, 40, 80, 160, 300 s at the expected delay: 615 s when the vendor is done at 600 s.
    assert walked.steps["poll"] == 7 and walked.seconds == 615


def test_a_queued_job_parks_once_and_looks_again_only_after_the_parks_timeout() -> None:
    short = walk(Shape("polling", slot_parks=1), 600, PARAMETERS, queued_seconds=1800)
    long = walk(Shape("polling", slot_parks=1), 600, PARAMETERS, queued_seconds=2.5 * 3600)

    assert (short.steps["await_slot"], short.steps[QUEUED_START], short.steps["start"]) == (1, 1, 1)
    assert long.steps["await_slot"] == 3  # timed out at 1 h and 2 h, woken at 2.5 h
    assert long.transitions == short.transitions + 2 * 3  # Start, Route, WaitForSlot again each hour
