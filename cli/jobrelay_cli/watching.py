"""`jobrelay watch`: follow a job until it ends, then exit with a code that says how it ended.

On a terminal, a live view (Rich Live): status, phase, a progress bar when the vendor gives a
percentage (or counts to make one of), elapsed time, the latest timeline events. Elsewhere (CI logs,
a pipe), one plain line per change: `<iso time> <status> <phase> <percent or -> <note>`.

Ctrl-C stops the watching, never the job (cancelling is `jobrelay cancel`).
"""

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import typer
from rich.console import RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from jobrelay_cli.client import ApiClient, segment
from jobrelay_cli.errors import EXIT_INTERRUPTED
from jobrelay_cli.models import Job, Progress, read_job
from jobrelay_cli.output import console

# The exit code for each final status: 0 only when every record made it (a PARTIAL job is not a success).
EXIT_CODES = {"SUCCEEDED": 0, "PARTIAL": 3, "FAILED": 4, "TIMED_OUT": 5, "CANCELLED": 6}
DEFAULT_INTERVAL_SECONDS = 2.0
RECENT_EVENTS = 5


class View(StrEnum):
    LIVE = "live"  # a terminal: the Rich live view
    LINES = "lines"  # not a terminal: one plain line per change
    QUIET = "quiet"  # --output json: nothing until the end, then the final job's JSON


@dataclass
class Outcome:
    exit_code: int
    job: dict[str, Any] | None  # the final job as the API gave it; None when the watching was stopped


def watch(client: ApiClient, job_id: str, *, interval: float, view: View, resume_command: str) -> Outcome:
    """Polls GET /jobs/{job_id} every `interval` seconds until the job ends."""
    polls = _polls(client, job_id, interval)
    show = {View.LIVE: _live_view, View.LINES: _plain_lines, View.QUIET: _last}[view]
    try:
        job, payload = show(polls)
    except KeyboardInterrupt:
        typer.echo(f"stopped watching {job_id}; the job goes on. Watch it again with: {resume_command}", err=True)
        return Outcome(EXIT_INTERRUPTED, None)
    if job.error:
        why = job.status if job.error.code == job.status else f"{job.status} ({job.error.code})"
        typer.echo(f"{why}: {job.error.message}", err=True)
    return Outcome(EXIT_CODES[job.status], payload)


Poll = tuple[Job, dict[str, Any]]


def _polls(client: ApiClient, job_id: str, interval: float) -> Iterator[Poll]:
    """Each read of the job (typed, and as the API gave it), the last one final."""
    while True:
        payload = client.get(f"/jobs/{segment(job_id)}")
        job = read_job(payload)
        yield job, payload
        if job.is_final:
            return
        time.sleep(interval)


def _last(polls: Iterator[Poll]) -> Poll:
    *_, last = polls
    return last


def _plain_lines(polls: Iterator[Poll]) -> Poll:
    last_fields = None
    for poll in polls:
        job = poll[0]
        percent = shown_percent(job.progress)
        fields = (
            job.status,
            job.progress.phase or "-",
            "-" if percent is None else f"{percent:g}",
            " ".join((job.progress.note or "").split()),  # one line, whatever the note holds
        )
        if fields != last_fields:
            now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            typer.echo(" ".join((now, *fields)).rstrip())
            last_fields = fields
    return poll


def _live_view(polls: Iterator[Poll]) -> Poll:
    shown = [next(polls)]  # the latest read, which the view renders
    # get_renderable is called on every refresh (4 a second), so the elapsed time ticks between polls.
    with Live(console=console(), get_renderable=lambda: live_panel(shown[0][0]), refresh_per_second=4):
        for poll in polls:
            shown[0] = poll
    return shown[0]


def live_panel(job: Job, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> RenderableType:
    facts = Table.grid(padding=(0, 2))
    facts.add_row("job", Text(f"{job.job_id}  {job.operation} (account {job.account})"))
    facts.add_row("status", Text(job.status, style=_status_style(job.status)) + Text(f"  {job.progress.phase or ''}"))
    percent = shown_percent(job.progress)
    if percent is not None:
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=100, completed=percent, width=40), Text(f"{percent:.0f}%"))
        facts.add_row("progress", bar)
    if job.progress.counts:
        facts.add_row("vendor", Text(", ".join(f"{key} {value}" for key, value in job.progress.counts.items())))
    if job.progress.records:
        facts.add_row("records", Text(", ".join(f"{key} {value}" for key, value in job.progress.records.items())))
    end = job.updated_at if job.is_final and job.updated_at else now()
    facts.add_row("elapsed", Text(duration_words((end - job.created_at).total_seconds()) + " since submitted"))
    if job.progress.note:
        facts.add_row("note", Text(job.progress.note))
    for event in (job.timeline or [])[-RECENT_EVENTS:]:
        detail = json.dumps(event.detail, ensure_ascii=False) if event.detail else ""
        line = Text(f"{event.at.astimezone(UTC):%H:%M:%S} {event.event} {detail}", style="dim", no_wrap=True, overflow="ellipsis")
        facts.add_row("", line)
    return facts


def shown_percent(progress: Progress) -> float | None:
    """The vendor's percentage; else one made of its counts when they say how many of how many
    (MyPreferences: processed of received); else none."""
    if progress.percent is not None:
        return progress.percent
    received, processed = progress.counts.get("received"), progress.counts.get("processed")
    if received and processed is not None:
        return min(100.0, round(100.0 * processed / received, 1))
    return None


def duration_words(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def _status_style(status: str) -> str:
    return {"SUCCEEDED": "green", "PARTIAL": "yellow", "FAILED": "red", "TIMED_OUT": "red", "CANCELLED": "magenta"}.get(
        status, "cyan"
    )
