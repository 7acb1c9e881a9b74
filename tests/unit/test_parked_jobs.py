"""Jobs parked behind their account's concurrency limit, on fakes: woken when a slot frees, one per
free slot, in submission order per account; never overtaken by a newer submission; a lost wake-up
caught (by the next job to park, by the sweeper, by the parked task's fallback timeout); a cancel
frees only what the job held."""

import pytest

from jobrelay.services.concurrency import WAKE_GRACE
from jobrelay.services.steps import StepInput
from tests.unit.parking import (
    end_silently,
    finish,
    look,
    park,
    start,
    submitted_a_second_apart,
    time_out,
    with_slot_queue,
    woken,
)

POOL = "pinpointe#default"


@pytest.fixture
def queue(world):
    return with_slot_queue(world)


def running_and_parked(world, limit: int, parked: int) -> tuple[list[str], list[str]]:
    """`limit` jobs holding the account's slots and `parked` more submitted after them, parked in
    submission order."""
    world.vendor.max_concurrent_jobs = limit
    holders = [submitted_a_second_apart(world) for _ in range(limit)]
    waiting = [submitted_a_second_apart(world) for _ in range(parked)]
    for job_id in holders:
        assert look(world, job_id).next == "wait_webhook"
    for job_id in waiting:
        assert look(world, job_id).next == "wait_slot"
    return holders, waiting


def test_parked_jobs_are_woken_in_submission_order_not_in_the_order_they_parked(world, queue):
    world.vendor.max_concurrent_jobs = 1
    holder, first, second, third = (submitted_a_second_apart(world) for _ in range(4))
    look(world, holder)
    for job_id in (third, second, first):  # their executions reach WaitForSlot newest first
        assert look(world, job_id).next == "wait_slot"
    assert [entry.job_id for entry in queue.parked(POOL)] == [first, second, third]

    finish(world, holder)
    assert woken(world) == [first]
    assert start(world, first).next == "wait_webhook"
    finish(world, first)
    assert woken(world) == [first, second]
    start(world, second)
    finish(world, second)

    assert woken(world) == [first, second, third]
    assert len(world.vendor.started_with) == 3 and start(world, third).next == "wait_webhook"


def test_each_freed_slot_wakes_one_job_and_never_more_than_are_free(world, queue):
    holders, (c, d, e) = running_and_parked(world, limit=2, parked=3)

    finish(world, holders[0])
    finish(world, holders[1])  # both freed before either woken job has looked again
    world.sweeper.sweep()  # the sweeper finds no slot nobody was woken for

    assert woken(world) == [c, d]
    assert start(world, c).next == start(world, d).next == "wait_webhook"
    assert look(world, e).next == "wait_slot"  # had it looked anyway, nothing for it
    assert len(world.slots.leases(POOL)) == 2 and len(world.vendor.started_with) == 4


def test_a_new_submission_queues_behind_parked_jobs_even_when_a_slot_is_free(world, queue):
    (holder,), (parked,) = running_and_parked(world, limit=1, parked=1)
    finish(world, holder)
    assert woken(world) == [parked]

    newcomer = world.submit()  # its Start runs before the woken job's does
    assert look(world, newcomer).next == "wait_slot"
    assert world.store.get(newcomer).progress.note.startswith("queued behind 1 job")
    assert woken(world) == [parked]  # the free slot is the woken job's: nobody else is woken for it

    assert start(world, parked).next == "wait_webhook"
    finish(world, parked)
    assert woken(world) == [parked, newcomer]


def test_a_woken_job_that_finds_its_slot_taken_parks_again_at_its_place(world, queue):
    (holder,), (first, second) = running_and_parked(world, limit=1, parked=2)
    finish(world, holder)
    assert woken(world) == [first]
    racer = world.submit()
    # The race a conditional write decides: a Start that read the queue before anyone had parked
    # takes the freed slot before the woken job's Start runs.
    assert world.slots.acquire(POOL, racer, 1, world.store.get(racer).deadline_at)
    assert start(world, racer).next == "wait_webhook"

    assert look(world, first).next == "wait_slot"  # looked, found it taken, parked again
    assert [entry.job_id for entry in queue.parked(POOL)] == [first, second]
    finish(world, racer)
    assert woken(world) == [first, first]


def test_a_slot_freed_before_the_job_parks_is_not_lost(world, queue):
    (holder,), () = running_and_parked(world, limit=1, parked=0)
    late = world.submit()
    assert start(world, late).next == "wait_slot"
    finish(world, holder)  # released while `late` was on its way to WaitForSlot: nobody to wake yet

    park(world, late)

    assert woken(world) == [late]  # parking looked at the queue and the slots again
    assert start(world, late).next == "wait_webhook"


def test_the_sweeper_wakes_a_parked_job_whose_wake_up_was_lost(world, queue):
    (holder,), (parked, behind) = running_and_parked(world, limit=1, parked=2)
    end_silently(world, holder)
    world.slots.release(POOL, holder)  # the function died between the release and the wake-up
    assert woken(world) == []

    report = world.sweeper.sweep()

    assert report.woken == 1 and woken(world) == [parked]
    assert start(world, parked).next == "wait_webhook"
    assert world.sweeper.sweep().woken == 0 and woken(world) == [parked]  # `behind` has no slot


def test_a_wake_up_that_fails_does_not_fail_the_job_that_freed_the_slot(world, queue, monkeypatch):
    (holder,), (parked,) = running_and_parked(world, limit=1, parked=1)
    sending = world.workflow.resume

    def unreachable(token, output):
        if token.startswith("slot:"):
            raise ConnectionError("Step Functions did not answer")
        return sending(token, output)

    monkeypatch.setattr(world.workflow, "resume", unreachable)
    finish(world, holder)
    assert world.store.get(holder).status.value == "SUCCEEDED" and world.events.published[-1][0] == "Job Succeeded"
    monkeypatch.setattr(world.workflow, "resume", sending)
    world.clock.advance(WAKE_GRACE.total_seconds() + 1)  # it may have been sent: it is promised until then

    world.sweeper.sweep()

    assert woken(world) == [parked]


def test_the_sweepers_release_of_an_orphaned_slot_wakes_the_next_job(world, queue):
    (holder,), (parked,) = running_and_parked(world, limit=1, parked=1)
    end_silently(world, holder)  # ended, its slot never given back

    report = world.sweeper.sweep()

    assert report.slots_freed == 1 and report.woken == 1 and woken(world) == [parked]


def test_a_job_woken_whose_execution_died_gives_its_slot_to_the_next_after_the_grace(world, queue):
    (holder,), (lost, next_one) = running_and_parked(world, limit=1, parked=2)
    finish(world, holder)
    assert woken(world) == [lost]  # ...and its execution never runs Start (stopped behind our back)

    world.sweeper.sweep()
    assert woken(world) == [lost]  # on its way, for all anyone knows
    world.clock.advance(WAKE_GRACE.total_seconds() + 1)
    world.sweeper.sweep()

    # Offered again: its token is not waited on any more, so the slot goes to the next job.
    assert woken(world) == [lost, next_one]
    assert [entry.job_id for entry in queue.parked(POOL)] == [next_one]


def test_after_its_fallback_timeout_a_parked_job_looks_again_and_takes_a_free_slot(world, queue):
    (holder,), (parked,) = running_and_parked(world, limit=1, parked=1)
    (token,) = world.workflow.waiting
    end_silently(world, holder)
    world.slots.release(POOL, holder)  # freed, nobody woken, and no sweeper ran

    time_out(world, token)  # WaitForSlot's timeout: the state machine goes back to Start

    assert start(world, parked).next == "wait_webhook"
    assert queue.parked(POOL) == []


def test_a_wake_up_skips_a_parked_task_that_has_timed_out(world, queue):
    (holder,), (timed_out, waiting) = running_and_parked(world, limit=1, parked=2)
    stale = next(token for token in world.workflow.waiting if f":{timed_out}:" in token)
    time_out(world, stale)  # on its way back to Start, by itself

    finish(world, holder)

    assert woken(world) == [waiting]
    assert [entry.job_id for entry in queue.parked(POOL)] == [waiting]


def test_cancelling_a_parked_job_frees_nothing_it_does_not_hold_and_wakes_nobody(world, queue):
    (holder,), (cancelled, parked) = running_and_parked(world, limit=1, parked=2)

    world.jobs.cancel(cancelled)

    assert [lease.holder for lease in world.slots.leases(POOL)] == [holder]
    assert woken(world) == [] and [entry.job_id for entry in queue.parked(POOL)] == [parked]
    assert world.workflow.execution_arn(cancelled) in world.workflow.stopped
    finish(world, holder)
    assert woken(world) == [parked]


def test_cancelling_a_woken_job_passes_its_slot_on(world, queue):
    (holder,), (woken_then_cancelled, parked) = running_and_parked(world, limit=1, parked=2)
    finish(world, holder)
    assert woken(world) == [woken_then_cancelled]

    world.jobs.cancel(woken_then_cancelled)

    assert woken(world) == [woken_then_cancelled, parked]


def test_a_job_that_ended_before_it_parked_is_resumed_at_once_to_settle(world, queue):
    (holder,), () = running_and_parked(world, limit=1, parked=0)
    late = world.submit()
    assert start(world, late).next == "wait_slot"
    world.jobs.cancel(late)

    park(world, late)

    assert woken(world) == [late] and queue.parked(POOL) == []
    assert start(world, late).next == "done"
    assert [lease.holder for lease in world.slots.leases(POOL)] == [holder]


def test_jobs_of_other_accounts_are_neither_held_up_nor_woken(world, queue):
    world.vendor.max_concurrent_jobs = 1
    ours, ours_parked = submitted_a_second_apart(world), submitted_a_second_apart(world)
    theirs, theirs_parked = (submitted_a_second_apart(world, account="other") for _ in range(2))
    look(world, ours)
    assert look(world, ours_parked).next == "wait_slot"
    assert look(world, theirs).next == "wait_webhook"  # its own account's slot
    assert look(world, theirs_parked).next == "wait_slot"

    finish(world, theirs)
    assert woken(world) == [theirs_parked]
    finish(world, ours)
    assert woken(world) == [theirs_parked, ours_parked]


def test_without_a_limit_any_more_a_parked_job_is_resumed_at_once(world, queue):
    world.vendor.max_concurrent_jobs = 1
    holder, parked = world.submit(), world.submit()
    look(world, holder)
    assert start(world, parked).next == "wait_slot"
    world.vendor.max_concurrent_jobs = None  # the account's secret changed meanwhile

    park(world, parked)

    assert woken(world) == [parked] and start(world, parked).next == "wait_webhook"


def test_await_slot_needs_its_task_token(world, queue):
    with pytest.raises(ValueError):
        world.steps.run(StepInput(step="await_slot", job_id=world.submit()))
