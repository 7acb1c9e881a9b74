"""`jobrelay watch`: a scripted API walks a job through its states; the exit code says how it ended,
and off a terminal each change is one plain line."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from jobrelay_cli.models import read_job
from jobrelay_cli.watching import EXIT_CODES, live_panel
from tests.unit.cli_support import Answer, catalogue, job, run_cli

pytestmark = pytest.mark.usefixtures("cli_env")

PLAIN_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (?P<status>[A-Z_]+) (?P<phase>[a-z]+|-) (?P<percent>\d+(\.\d+)?|-)(?: (?P<note>.*))?$"
)


def walk(final_status: str) -> list[dict]:
    """A job's reads, from submitted to `final_status`, with a repeated read (no change) in between."""
    error = None if final_status in ("SUCCEEDED", "PARTIAL") else {"code": "VENDOR_FAILED", "message": "list 1 is locked"}
    return [
        job(status="SUBMITTED", progress={"phase": "starting", "note": "starting the job at Pinpointe"}),
        job(status="RUNNING", progress={"phase": "waiting", "note": "waiting for Pinpointe\nby webhook"}),
        job(status="RUNNING", progress={"phase": "waiting", "note": "waiting for Pinpointe\nby webhook"}),
        job(status="RUNNING", progress={"phase": "waiting", "percent": 40, "note": "waiting for Pinpointe by webhook"}),
        job(status="COLLECTING", progress={"phase": "collecting", "percent": 100, "note": "collecting the result"}),
        job(status=final_status, progress={"phase": "finished", "percent": 100, "note": "it ended"}, error=error),
    ]


@pytest.mark.parametrize(
    ("status", "code"), [("SUCCEEDED", 0), ("PARTIAL", 3), ("FAILED", 4), ("TIMED_OUT", 5), ("CANCELLED", 6)]
)
def test_the_exit_code_says_how_the_job_ended(fake_api, status, code):
    fake_api.route("GET", "/jobs/job_01test", *walk(status))
    result = run_cli("--api-url", fake_api.url, "watch", "job_01test", "--interval", "0.05")
    assert result.exit_code == code == EXIT_CODES[status], result.output
    assert len(fake_api.requests) == 6


def test_off_a_terminal_each_change_is_one_plain_line(fake_api):
    fake_api.route("GET", "/jobs/job_01test", *walk("FAILED"))
    result = run_cli("--api-url", fake_api.url, "watch", "job_01test", "--interval", "0.05")
    lines = [PLAIN_LINE.match(line) for line in result.stdout.splitlines()]
    assert all(lines), result.stdout
    assert [(m["status"], m["phase"], m["percent"], m["note"]) for m in lines] == [
        ("SUBMITTED", "starting", "-", "starting the job at Pinpointe"),
        ("RUNNING", "waiting", "-", "waiting for Pinpointe by webhook"),  # the repeat printed no line
        ("RUNNING", "waiting", "40", "waiting for Pinpointe by webhook"),
        ("COLLECTING", "collecting", "100", "collecting the result"),
        ("FAILED", "finished", "100", "it ended"),
    ]
    assert result.stderr == "FAILED (VENDOR_FAILED): list 1 is locked\n"


def test_submit_watch_goes_on_as_watch(fake_api):
    fake_api.route("GET", "/operations", catalogue())
    fake_api.route("POST", "/jobs", Answer(202, job()))
    fake_api.route("GET", "/jobs/job_01test", *walk("PARTIAL"))
    args = ["submit", "pinpointe.newsletter_contact_data_summary", "stat=4711", "--watch", "--interval", "0.05"]
    result = run_cli("--api-url", fake_api.url, *args)
    assert result.exit_code == 3
    first, *rest = result.stdout.splitlines()
    assert first == "submitted job_01test (SUBMITTED)"
    assert rest[-1].split()[1] == "PARTIAL"


def test_with_output_json_only_the_final_job_is_printed(fake_api):
    fake_api.route("GET", "/jobs/job_01test", *walk("SUCCEEDED"))
    result = run_cli("--api-url", fake_api.url, "--output", "json", "watch", "job_01test", "--interval", "0.05")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "SUCCEEDED"


def test_ctrl_c_stops_the_watching_not_the_job(fake_api, monkeypatch):
    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("jobrelay_cli.watching.time.sleep", interrupted)
    fake_api.route("GET", "/jobs/job_01test", *walk("SUCCEEDED"))
    result = run_cli("--api-url", fake_api.url, "watch", "job_01test")
    assert result.exit_code == 130
    assert result.stderr == (
        f"stopped watching job_01test; the job goes on. Watch it again with: jobrelay --api-url {fake_api.url} watch job_01test\n"
    )
    assert not fake_api.sent("POST")  # nothing cancelled


def test_an_error_while_watching_exits_1(fake_api):
    fake_api.route("GET", "/jobs/job_01nope", Answer(404, {"error": {"code": "NOT_FOUND", "message": "no such job"}}))
    result = run_cli("--api-url", fake_api.url, "watch", "job_01nope")
    assert result.exit_code == 1
    assert result.stderr == "error: no such job (HTTP 404 NOT_FOUND)\n"


def test_the_live_view_shows_status_progress_elapsed_time_and_recent_events():
    created = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    payload = job(
        status="RUNNING",
        progress={"phase": "waiting", "counts": {"received": 200, "processed": 50}, "note": "waiting for MyPreferences"},
        created_at=created.isoformat(),
        timeline=[{"at": (created + timedelta(seconds=s)).isoformat(), "event": f"event_{s}", "detail": {}} for s in range(8)],
    )
    screen = Console(width=100, record=True, color_system=None)
    screen.print(live_panel(read_job(payload), now=lambda: created + timedelta(minutes=3, seconds=12)))
    text = screen.export_text()
    assert "RUNNING" in text and "waiting" in text
    assert "25%" in text  # processed of received, where the vendor gives no percentage
    assert "3m 12s since submitted" in text
    assert "event_7" in text and "event_3" in text and "event_2" not in text  # the latest five
