"""A job's progress as its user reads it: a `phase` and a note that are true at every step.

Each step writes the progress of the phase it leaves the job in, built here, so every note of one
phase reads alike whichever step wrote it:

- queued:     "queued behind 2 jobs of Pinpointe account 'default' since 10:02 UTC (3 min)"
- starting:   "starting the job at Pinpointe" (imports: checking the file and opening the import)
- staging:    "staging the records at MyPreferences: 1 record staged, 2 refused before sending"
- waiting:    "waiting for Pinpointe since 10:02 UTC (3 min) by webhook; last status 'processing'"
- collecting: "collecting the result from Pinpointe"
- finished:   the reconciliation's summary (SUCCEEDED, PARTIAL), or why it ended:
              "failed while waiting for Pinpointe: Pinpointe reports job 123 as 'failed'"

What grows while a job waits (the time since the wait began) is never stored: `live` adds it when
the job is read, so a note cannot say "3 min" an hour later. `live` also gives a job that ended
without a step writing its final progress (a cancel, which ends a job from the API) the note of
its ending, so no path leaves a finished job saying it is still waiting.
"""

from datetime import UTC, datetime

from jobrelay.domain.job import Job, JobError, Phase, Progress, WaitingOn
from jobrelay.domain.reconciliation import Reconciliation
from jobrelay.domain.status import JobStatus

# The phase of a job whose stored progress has none (stored before phases existed, or just
# submitted: the API's submit writes no progress).
PHASE_OF_STATUS: dict[JobStatus, Phase] = {
    JobStatus.SUBMITTED: "starting",
    JobStatus.STARTING: "starting",
    JobStatus.RUNNING: "waiting",
    JobStatus.COLLECTING: "collecting",
}
ENDED_WORDS = {JobStatus.FAILED: "failed", JobStatus.TIMED_OUT: "timed out", JobStatus.CANCELLED: "cancelled"}


def vendor_name(job: Job) -> str:
    """The vendor as people write it (its manifest's title)."""
    # Imported here, not with this module: the catalogue loads every vendor's params models, which
    # the steps function's cold start should not pay for before its first step (docs/DESIGN.md budgets).
    from jobrelay.operations import VENDORS

    manifest = VENDORS.get(job.vendor)
    return manifest.title if manifest else job.vendor


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- one builder per phase ---------------------------------------------------------------------


def queued(job: Job, ahead: int, now: datetime) -> Progress:
    # Queued since the first look found no slot, not since the latest one.
    since = job.progress.waiting_since if job.progress.phase == "queued" and job.progress.waiting_since else now
    note = f"queued behind {plural(ahead, 'job')} of {vendor_name(job)} account {job.account!r} {_since(since)}"
    return Progress(phase="queued", waiting_since=since, waiting_on="slot", note=note)


def starting(note: str) -> Progress:
    """`note`: what starting means for the job's kind of operation (its driver's starting_note)."""
    return Progress(phase="starting", note=note)


def staging(job: Job, records: dict[str, int], counts: dict[str, int], *, again: str | None = None) -> Progress:
    """`records` are our own counts so far (read, refused, sent); `again` why staging starts over."""
    head = f"staging the records at {vendor_name(job)}" + (f" again from the first record ({again})" if again else "")
    staged, refused = records.get("sent", 0), records.get("refused", 0)
    so_far = f"{plural(staged, 'record')} staged" + (f", {refused} refused before sending" if refused else "")
    # percent stays 0 while staging: neither vendor gives a percentage before the import runs.
    return Progress(phase="staging", percent=None, counts=counts, records=records, note=f"{head}: {so_far}")


def waiting(
    job: Job, base: Progress, *, since: datetime, on: WaitingOn, vendor_status: str | None, vendor_words: str | None = None
) -> Progress:
    """Waiting for the vendor to finish: `base` carries the numbers (percent, counts, records);
    `vendor_words` is the vendor's own note, said instead of the bare status word when it gives one
    (Which50's raw percentage, Pinpointe not listing the job yet)."""
    said = vendor_words or (f"last status {vendor_status!r}" if vendor_status else "no status from it yet")
    note = f"waiting for {vendor_name(job)} {_since(since)} by {on}; {said}"
    if staged := base.records.get("sent"):  # imports: what the vendor is importing
        note += f"; {plural(staged, 'record')} staged"
    return base.model_copy(
        update={"phase": "waiting", "waiting_since": since, "waiting_on": on, "vendor_status": vendor_status, "note": note}
    )


def collecting(base: Progress, note: str) -> Progress:
    """`note`: what collecting means for the job's kind of operation (its driver's collecting_note)."""
    return _settled(base, "collecting", note)


def succeeded(base: Progress, reconciliation: Reconciliation) -> Progress:
    """SUCCEEDED or PARTIAL: the result checked against the vendor's counts, in one line."""
    return _settled(base, "finished", reconciliation.summary()).model_copy(update={"percent": 100})


def ended(job: Job, status: JobStatus, error: JobError | None) -> Progress:
    """FAILED, TIMED_OUT or CANCELLED: why, and what the job was doing then. The numbers stay as
    they were: how far it got is worth knowing."""
    word = ENDED_WORDS.get(status, status.value.lower())
    doing = _doing(job)
    reason = error.message if error else "no reason was recorded"
    return _settled(job.progress, "finished", f"{word} while {doing}: {reason}" if doing else f"{word}: {reason}")


# --- reading ---------------------------------------------------------------------------------------


def live(job: Job, now: datetime) -> Progress:
    """The progress as shown when the job is read at `now`."""
    progress = job.progress
    if job.is_terminal:
        if progress.phase == "finished":
            return progress
        if job.status in ENDED_WORDS:
            return ended(job, job.status, job.error)
        return progress.model_copy(update={"phase": "finished"})
    if progress.phase is None:
        note = progress.note or ("submitted; starting shortly" if job.status is JobStatus.SUBMITTED else None)
        progress = progress.model_copy(update={"phase": PHASE_OF_STATUS[job.status], "note": note})
    if progress.waiting_since is None or progress.phase not in ("queued", "waiting"):
        return progress
    elapsed = max(0, int((now - progress.waiting_since).total_seconds()))
    note = progress.note
    marker = _since(progress.waiting_since)
    if note and marker in note:  # "since 10:02 UTC" -> "since 10:02 UTC (3 min)"
        note = note.replace(marker, f"{marker} ({duration(elapsed)})", 1)
    return progress.model_copy(update={"elapsed_seconds": elapsed, "note": note})


def duration(seconds: int) -> str:
    """A wait's length as a person says it: 45 s, 3 min, 2 h 5 min, 1 d 4 h."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


# --- helpers ---------------------------------------------------------------------------------------


def _since(at: datetime) -> str:
    # The clock time only: the elapsed time beside it (live) says whether it was days ago.
    return f"since {at.astimezone(UTC):%H:%M} UTC"


def _settled(base: Progress, phase: Phase, note: str) -> Progress:
    """A phase with no wait in it: the wait's fields go, the numbers and the vendor's word stay."""
    return base.model_copy(
        update={"phase": phase, "note": note, "waiting_since": None, "waiting_on": None, "elapsed_seconds": None}
    )


def _doing(job: Job) -> str | None:
    """What the job was doing, from the phase it was in when it ended."""
    phase = job.progress.phase or PHASE_OF_STATUS.get(job.status)
    return {
        "queued": "queued",
        "starting": "starting",
        "staging": "staging the records",
        "waiting": f"waiting for {vendor_name(job)}",
        "collecting": "collecting the result",
    }.get(phase or "")
