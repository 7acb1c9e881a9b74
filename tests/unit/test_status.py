import pytest

from jobrelay.domain.status import ALLOWED_PREDECESSORS, TERMINAL, JobStatus, can_transition


def test_the_happy_path_is_allowed_in_order():
    path = [JobStatus.SUBMITTED, JobStatus.STARTING, JobStatus.RUNNING, JobStatus.COLLECTING, JobStatus.SUCCEEDED]
    for current, target in zip(path, path[1:], strict=False):
        assert can_transition(current, target)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
@pytest.mark.parametrize("target", list(JobStatus))
def test_nothing_leaves_a_terminal_status(terminal, target):
    assert not can_transition(terminal, target)


@pytest.mark.parametrize("target", [JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED])
def test_failure_timeout_and_cancel_end_any_active_job(target):
    for current in set(JobStatus) - TERMINAL:
        assert can_transition(current, target)


def test_no_skipping_ahead_or_going_back():
    assert not can_transition(JobStatus.SUBMITTED, JobStatus.RUNNING)
    assert not can_transition(JobStatus.RUNNING, JobStatus.SUCCEEDED)
    assert not can_transition(JobStatus.COLLECTING, JobStatus.RUNNING)
    assert not ALLOWED_PREDECESSORS[JobStatus.SUBMITTED]
