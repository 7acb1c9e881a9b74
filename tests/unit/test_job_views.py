"""What GET /jobs/{id} says of a job at every step (services/progress.py): a phase and a note that
are true whenever it is read, the time a wait has lasted computed at that moment, and for a job
that ended without a result, why."""

import json
from datetime import timedelta

import pytest

from jobrelay.domain.errors import JobDeadlineExceeded, VendorJobFailed
from jobrelay.domain.job import Job, Progress, TimelineEvent
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_outcomes import PollOutcome, VendorState, WaitMode
from jobrelay.drivers.base import DriverContext
from jobrelay.drivers.directory import Drivers
from jobrelay.services.bulk_imports import ImportSteps
from jobrelay.services.notices import Notices
from jobrelay.services.progress import duration
from jobrelay.services.steps import StepInput, StepRunner
from jobrelay.services.views import job_view
from tests.fakes import InMemoryScratch, InMemorySecretStore
from tests.unit.conftest import DONE, RUNNING
from tests.unit.test_import_steps import GOOD, BytesSource, FakeVendor, records_file


def run(world, step, job_id, **extra):
    return world.steps.run(StepInput(step=step, job_id=job_id, **extra))


def shown(world, job_id) -> Progress:
    """The progress as the API shows it now (the world's clock)."""
    return job_view(world.store.get(job_id), world.results, now=world.clock()).progress


def fail_as_the_state_machine_does(world, job_id, step: str, **extra):
    """Run `step`; the error it raises goes to FailJob the way the ASL's Catch passes it."""
    with pytest.raises((VendorJobFailed, JobDeadlineExceeded)) as raised:
        run(world, step, job_id, **extra)
    cause = json.dumps({"errorMessage": str(raised.value)})
    return run(world, "fail", job_id, error={"Error": type(raised.value).__name__, "Cause": cause})


def test_an_export_says_what_it_waits_for_and_since_when_until_it_is_finished(world):
    job_id = world.submit(timeout_seconds=4 * 3600)
    assert (shown(world, job_id).phase, shown(world, job_id).note) == ("starting", "submitted; starting shortly")

    run(world, "start", job_id)
    waiting = shown(world, job_id)
    assert (waiting.phase, waiting.waiting_on, waiting.waiting_since) == ("waiting", "webhook", world.clock())
    assert waiting.note == "waiting for Pinpointe since 10:00 UTC (0 s) by webhook; no status from it yet"
    assert "started" not in waiting.note  # the vendor's start note was what stayed stale on a failed job

    world.clock.advance(185)
    later = shown(world, job_id)
    assert later.elapsed_seconds == 185
    assert later.note == "waiting for Pinpointe since 10:00 UTC (3 min) by webhook; no status from it yet"

    world.vendor.polls = [PollOutcome(state=VendorState.RUNNING, raw_status="processing")]
    run(world, "poll", job_id, woken_by={"Error": "States.Timeout"})
    world.clock.advance(60 * 60 + 15 * 60)
    polled = shown(world, job_id)
    assert polled.waiting_since == waiting.waiting_since and polled.vendor_status == "processing"
    assert polled.note == "waiting for Pinpointe since 10:00 UTC (1 h 18 min) by webhook; last status 'processing'"

    world.vendor.polls = [DONE]
    run(world, "poll", job_id)
    collecting = shown(world, job_id)
    assert (collecting.phase, collecting.note) == ("collecting", "collecting the result from Pinpointe")
    assert collecting.waiting_since is None and collecting.elapsed_seconds is None

    run(world, "collect", job_id)
    finished = shown(world, job_id)
    assert (finished.phase, finished.percent) == ("finished", 100)
    assert finished.note == "result stored; the vendor gave no count to check it against"
    assert finished.vendor_status == "complete" and finished.waiting_since is None


def test_the_stored_note_carries_no_elapsed_time_that_could_go_stale(world):
    job_id = world.submit()
    run(world, "start", job_id)
    world.clock.advance(600)

    stored = world.store.get(job_id).progress

    assert stored.elapsed_seconds is None and "(" not in stored.note
    assert shown(world, job_id).elapsed_seconds == 600


def test_a_poll_only_vendor_is_waited_for_by_polling_with_its_percentage_and_own_words(world):
    world.vendor.wait_mode = WaitMode.POLL
    job_id = world.submit()
    run(world, "start", job_id)
    world.vendor.polls = [
        PollOutcome(
            state=VendorState.RUNNING, progress=Progress(note="Pinpointe does not list job v-1 yet (4 s after its start)")
        ),
        RUNNING,
    ]

    run(world, "poll", job_id)
    world.clock.advance(30)
    assert shown(world, job_id).note == (
        "waiting for Pinpointe since 10:00 UTC (30 s) by polling; Pinpointe does not list job v-1 yet (4 s after its start)"
    )
    run(world, "poll", job_id)
    progress = shown(world, job_id)
    assert (progress.waiting_on, progress.percent) == ("polling", 10)
    assert progress.note == "waiting for Pinpointe since 10:00 UTC (30 s) by polling; last status 'waiting'"


def test_a_queued_job_says_how_many_are_ahead_and_since_when(world):
    world.vendor.max_concurrent_jobs = 1
    running, queued = world.submit(), world.submit()
    run(world, "start", running)

    run(world, "start", queued)
    world.clock.advance(125)
    run(world, "start", queued)  # still no slot: queued since the first look, not this one

    progress = shown(world, queued)
    assert (progress.phase, progress.waiting_on, progress.elapsed_seconds) == ("queued", "slot", 125)
    assert progress.note == "queued behind 1 job of Pinpointe account 'default' since 10:00 UTC (2 min)"

    world.vendor.polls = [DONE]
    run(world, "poll", running)
    run(world, "collect", running)
    run(world, "start", queued)
    assert world.store.get(queued).progress.note == "waiting for Pinpointe since 10:02 UTC by webhook; no status from it yet"


def test_a_job_starting_at_the_vendor_says_so(world):
    job_id = world.submit()
    world.vendor.start_error = RuntimeError("the vendor call is still in flight")  # the step stops mid-start
    with pytest.raises(RuntimeError):
        run(world, "start", job_id)

    progress = shown(world, job_id)
    assert world.store.get(job_id).status is JobStatus.STARTING
    assert (progress.phase, progress.note) == ("starting", "starting the job at Pinpointe")


def test_a_failed_job_says_why_and_what_it_was_doing(world):
    job_id = world.submit()
    run(world, "start", job_id)
    world.vendor.polls = [PollOutcome(state=VendorState.FAILED, raw_status="failed", message="list 1 is locked")]

    fail_as_the_state_machine_does(world, job_id, "poll")

    job = world.store.get(job_id)
    assert job.status is JobStatus.FAILED
    assert (job.progress.phase, job.progress.note) == ("finished", "failed while waiting for Pinpointe: list 1 is locked")
    assert job.progress.vendor_status == "failed" and job.progress.waiting_since is None
    assert shown(world, job_id).elapsed_seconds is None


def test_a_timed_out_job_says_its_deadline_passed(world):
    job_id = world.submit(timeout_seconds=60)
    run(world, "start", job_id)
    world.clock.advance(61)

    fail_as_the_state_machine_does(world, job_id, "poll")

    progress = shown(world, job_id)
    assert progress.phase == "finished"
    assert progress.note.startswith("timed out while waiting for Pinpointe: the vendor did not finish before the job's deadline")


def test_a_cancelled_job_says_it_was_cancelled_not_that_it_still_waits(world):
    job_id = world.submit()
    run(world, "start", job_id)

    view = world.jobs.cancel(job_id)

    assert (view.progress.phase, view.progress.note) == (
        "finished",
        "cancelled while waiting for Pinpointe: cancelled on request",
    )
    assert view.progress.elapsed_seconds is None


def test_a_job_the_sweeper_settles_says_why(world):
    job_id = world.submit(timeout_seconds=60)
    run(world, "start", job_id)
    world.clock.advance(60 + 6 * 60)

    world.sweeper.sweep()

    progress = world.store.get(job_id).progress
    assert progress.phase == "finished"
    assert progress.note.startswith("timed out while waiting for Pinpointe: the job passed its deadline")


def test_a_job_that_fails_before_a_step_ran_says_why(world):
    job_id = world.submit()
    error = {"Error": "VendorRejected", "Cause": json.dumps({"errorMessage": "no secret for account 'default'"})}

    run(world, "fail", job_id, error=error)

    assert shown(world, job_id).note == "failed while starting: no secret for account 'default'"


def test_an_import_is_seen_starting_then_staging_then_waiting_for_the_vendor_by_polling(world):
    vendor = FakeVendor()  # an import adapter: no wait_mode, never a webhook
    imports = ImportSteps(world.store, world.results, InMemoryScratch(), BytesSource(records_file(GOOD[:3])), now=world.clock)
    notices = Notices(world.events, InMemorySecretStore(), world.settings)
    context = DriverContext(world.store, world.results, world.settings, now=world.clock, imports=lambda: imports)
    steps = StepRunner(
        world.store,
        world.workflow,
        notices,
        Drivers(lambda job: vendor, context).for_job,
        world.settings,
        now=world.clock,
    )
    now = world.clock()
    job = Job(job_id="job_import", operation="mypreferences.bulk_import", vendor="mypreferences", created_at=now, updated_at=now,
              deadline_at=now + timedelta(hours=2), params={"source": "s3://b/uploads/x.jsonl", "format": "jsonl"})  # fmt: skip
    world.store.create(job, TimelineEvent(at=now, event="submitted"))

    assert steps.run(StepInput(step="start", job_id="job_import")).next == "stage"
    assert shown(world, "job_import").note == "staging the records at MyPreferences: 0 records staged"
    world.clock.advance(20)
    assert steps.run(StepInput(step="stage", job_id="job_import")).next == "wait_poll"
    steps.run(StepInput(step="poll", job_id="job_import"))
    world.clock.advance(70)

    progress = shown(world, "job_import")
    assert (progress.phase, progress.waiting_on, progress.elapsed_seconds) == ("waiting", "polling", 70)
    assert (
        progress.note == "waiting for MyPreferences since 10:00 UTC (1 min) by polling; last status 'Staging'; 3 records staged"
    )


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"), (3900, "1 h 5 min"), (90000, "1 d 1 h")],
)
def test_elapsed_times_read_as_a_person_says_them(seconds, said):
    assert duration(seconds) == said
