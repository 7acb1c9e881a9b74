"""Per-account concurrency slots and the sweeper, on fakes: jobs over the limit queue and start when
a slot frees, every way a job ends gives its slot back, and no job stays non-terminal. (How parked
jobs are woken, and lost wake-ups caught: test_parked_jobs.py.)"""

from datetime import timedelta

from jobrelay.domain.job import Job, TimelineEvent
from jobrelay.domain.status import JobStatus
from jobrelay.services.steps import StepInput
from tests.unit.conftest import DONE
from tests.unit.parking import look, submitted_a_second_apart, with_slot_queue, woken


def start(world, job_id):
    return world.steps.run(StepInput(step="start", job_id=job_id))


def finish(world, job_id):
    world.vendor.polls = [DONE]
    world.steps.run(StepInput(step="poll", job_id=job_id))
    return world.steps.run(StepInput(step="collect", job_id=job_id))


def test_jobs_over_the_limit_park_queued_and_start_when_a_slot_frees(world):
    with_slot_queue(world)
    world.vendor.max_concurrent_jobs = 2
    first, second, third, fourth = (submitted_a_second_apart(world) for _ in range(4))
    assert look(world, first).next == look(world, second).next == "wait_webhook"

    queued = look(world, third)
    look(world, fourth)

    assert queued.next == "wait_slot"
    job = world.store.get(third)
    assert job.status is JobStatus.SUBMITTED and job.progress.phase == "queued"
    assert job.progress.note == "queued behind 2 jobs of Pinpointe account 'default' since 10:00 UTC"
    assert world.store.get(fourth).progress.note == "queued behind 3 jobs of Pinpointe account 'default' since 10:00 UTC"
    assert len(world.vendor.started_with) == 2  # the vendor saw two jobs, not four
    assert woken(world) == []  # parked: nothing looks again until a slot frees

    finish(world, first)
    assert woken(world) == [third]  # one slot freed, one job woken: the first submitted
    assert start(world, third).next == "wait_webhook"
    assert world.store.get(third).polls == 0  # the vendor's poll backoff starts afresh
    assert [e.event for e in world.store.timeline(third)].count("queued") == 1  # one event, however long it waits
    assert world.store.get(fourth).status is JobStatus.SUBMITTED and woken(world) == [third]


def test_a_retried_start_keeps_its_slot(world):
    world.vendor.max_concurrent_jobs = 1
    job_id = world.submit()
    start(world, job_id)
    assert world.slots.leases() and start(world, job_id).next == "wait_webhook"


def test_every_way_a_job_ends_gives_its_slot_back(world):
    world.vendor.max_concurrent_jobs = 3
    collected, failed, cancelled = (world.submit() for _ in range(3))
    for job_id in (collected, failed, cancelled):
        start(world, job_id)
    assert len(world.slots.leases()) == 3

    finish(world, collected)
    world.steps.run(StepInput(step="fail", job_id=failed, error={"Error": "VendorJobFailed", "Cause": "{}"}))
    world.jobs.cancel(cancelled)

    assert world.slots.leases() == []


def test_an_account_without_a_limit_takes_no_slot(world):
    job_id = world.submit()
    start(world, job_id)
    assert world.slots.leases() == []


def test_the_sweeper_settles_a_job_whose_execution_was_stopped_behind_its_back(world):
    world.vendor.max_concurrent_jobs = 1
    job_id = world.submit()
    start(world, job_id)
    job = world.store.get(job_id)
    world.workflow.stop(job.execution_arn, "an operator in the console")

    report = world.sweeper.sweep()

    job = world.store.get(job_id)
    assert job.status is JobStatus.FAILED and job.error.code == "EXECUTION_ENDED"
    assert "execution ended (ABORTED)" in job.error.message
    assert report.settled == [{"job_id": job_id, "status": "FAILED", "reason": job.error.message}]
    assert world.events.published[-1][0] == "Job Failed" and world.slots.leases() == []
    assert world.sweeper.sweep().settled == []  # settled once


def test_the_sweeper_times_out_a_job_long_past_its_deadline_and_stops_its_execution(world):
    job_id = world.submit(timeout_seconds=60)
    start(world, job_id)
    world.clock.advance(60 + 4 * 60)
    assert world.sweeper.sweep().settled == []  # the state machine's own deadline handling goes first
    world.clock.advance(2 * 60)

    world.sweeper.sweep()

    job = world.store.get(job_id)
    assert job.status is JobStatus.TIMED_OUT and job.error.code == "DEADLINE_EXCEEDED"
    assert job.execution_arn in world.workflow.stopped


def test_the_sweeper_leaves_running_jobs_alone_and_frees_slots_of_ended_jobs(world):
    world.vendor.max_concurrent_jobs = 2
    running, leaked = world.submit(), world.submit()
    start(world, running)
    start(world, leaked)
    world.store.transition(leaked, JobStatus.CANCELLED, world.store.timeline(leaked)[0])  # ended, slot not given back

    report = world.sweeper.sweep()

    assert report.settled == [] and report.slots_freed == 1
    assert [lease.holder for lease in world.slots.leases()] == [running]
    assert world.store.get(running).status is JobStatus.RUNNING


def test_a_lease_ends_by_itself_after_its_jobs_deadline(world):
    world.vendor.max_concurrent_jobs = 1
    first, second = world.submit(timeout_seconds=60), world.submit(timeout_seconds=3600)
    start(world, first)
    assert start(world, second).next == "wait_slot"
    world.clock.advance(60 + 16 * 60)  # past the deadline and the lease's slack, nothing released it
    assert start(world, second).next == "wait_webhook"


def test_a_job_without_an_execution_is_failed_after_the_start_grace(world):
    now = world.clock()
    job = Job(job_id="job_orphan", operation="pinpointe.list_subscribers", vendor="pinpointe", created_at=now,
              updated_at=now, deadline_at=now + timedelta(hours=1), params={"list": ["1"]})  # fmt: skip
    world.store.create(job, TimelineEvent(at=now, event="submitted"))
    assert world.sweeper.sweep().settled == []
    world.clock.advance(timedelta(minutes=11).total_seconds())

    world.sweeper.sweep()

    assert world.store.get("job_orphan").error.code == "NOT_STARTED"
