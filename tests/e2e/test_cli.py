"""The `jobrelay` command end to end: the real console script (.venv/bin/jobrelay) in a subprocess,
pointed at the local stack with --api-url, as a user runs it. Scripts read its `--output json`;
people read its exit codes, its messages on stderr, and on a terminal its live view (driven here
on a pseudo-terminal with pexpect).

What the API itself does is tested in the other e2e modules; here, what the CLI adds: each kind of
operation submitted and followed to its exit code, records files uploaded with --file, result files
downloaded and verified, failed records streamed, cancelling, paging, schedules, and errors that
say what is wrong without a traceback (and, for a usage error, without sending anything).
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest

from devstack.samples import SAMPLES, Sample
from tests.e2e.conftest import REPO, wait_for

pytestmark = pytest.mark.e2e

JOBRELAY = Path(sys.executable).with_name("jobrelay")  # the console script of the venv running the tests
FAST = ("--interval", "0.2")  # watching polls every 0.2 s: the sandboxes' test profile is quick
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def cli_environment() -> dict[str, str]:
    """The user's environment without what would send the CLI elsewhere: a proxy, an API URL, a profile."""
    dropped = {"JOBRELAY_API_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "NO_COLOR"}
    return {key: value for key, value in os.environ.items() if key.upper() not in dropped}


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:  # what an assertion shows
        return (
            f"jobrelay {' '.join(self.args)} -> exit {self.code}\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}"
        )


@pytest.fixture(scope="module")
def jobrelay(stack) -> Callable[..., Run]:
    assert JOBRELAY.exists(), f"no {JOBRELAY}: make's environment step installs the CLI (pip install -e .)"

    def run(*args: str | Path, timeout: float = 90) -> Run:
        words = tuple(str(arg) for arg in args)
        done = subprocess.run(
            [str(JOBRELAY), "--api-url", stack["api_url"], *words],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=cli_environment(),
            cwd=REPO,
        )
        return Run(words, done.returncode, done.stdout, done.stderr)

    return run


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_downloaded(job: dict, folder: Path, names: list[str]) -> None:
    """Exactly `names` are in `folder` (no partial file left over), each with the job's size and SHA-256."""
    assert sorted(path.name for path in folder.iterdir()) == sorted(names)
    listed = {file["name"]: file for file in job["result"]["files"]}
    for name in names:
        assert (folder / name).stat().st_size == listed[name]["size"], name
        assert sha256_of(folder / name) == listed[name]["sha256"], name


def sample_arguments(sample: Sample) -> list[str]:
    """The sample's job params as the CLI takes them; --file gives `source`, and `format` from its extension."""
    return [f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}" for key, value in sample.params.items()]


def records_file(folder: Path, name: str, lines: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- submit --watch: each kind of operation, to its exit code ------------------------------------------


def test_an_async_export_is_followed_to_success_and_its_files_download_verified(jobrelay, sandbox, tmp_path):
    watched = jobrelay("submit", "pinpointe.list_subscribers", "list=7", "--watch", *FAST, "--output", "json")

    assert watched.code == 0, watched
    job = watched.json()  # the final job, as the API gave it
    assert (job["operation"], job["status"]) == ("pinpointe.list_subscribers", "SUCCEEDED")
    assert jobrelay("get", job["job_id"], "-o", "json").json()["status"] == "SUCCEEDED"

    downloaded = jobrelay("download", job["job_id"], "--out", tmp_path / "out", "--output", "json")

    assert downloaded.code == 0, downloaded
    names = [file["name"] for file in job["result"]["files"]]
    assert names == ["result.json", "summary.json", "vendor_calls.jsonl"]
    assert [Path(file["path"]).name for file in downloaded.json()["files"]] == names
    assert_downloaded(job, tmp_path / "out", names)
    assert json.loads((tmp_path / "out" / "result.json").read_bytes())["count"] == job["progress"]["records"]["written"] > 0

    # For people: one line per file, saying it was checked.
    again = jobrelay("download", job["job_id"], "--out", tmp_path / "again", "--file", "summary.json")
    assert again.code == 0, again
    summary = job["result"]["files"][1]
    target = tmp_path / "again" / "summary.json"
    assert again.stdout == f"{target}  {summary['size']:,} bytes  sha256 {summary['sha256']} (verified)\n"
    assert_downloaded(job, tmp_path / "again", ["summary.json"])


def test_a_paged_read_is_followed_to_success_and_downloads_its_records(jobrelay, sandbox, tmp_path):
    watched = jobrelay("submit", "pinpointe.autoresponder_results", "all=true", "--watch", *FAST, "-o", "json")

    assert watched.code == 0, watched
    job = watched.json()
    assert (job["operation"], job["status"]) == ("pinpointe.autoresponder_results", "SUCCEEDED")
    downloaded = jobrelay("download", job["job_id"], "--out", tmp_path, "--file", "autoresponder_results.jsonl")
    assert downloaded.code == 0, downloaded
    assert_downloaded(job, tmp_path, ["autoresponder_results.jsonl"])
    records = [json.loads(line) for line in (tmp_path / "autoresponder_results.jsonl").read_text().splitlines()]
    assert len(records) == 3  # one per autoresponder of the sandbox


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.path.name for sample in SAMPLES])
def test_each_sample_file_imports_with_file_and_watch(jobrelay, mypreferences, which50, sample):
    watched = jobrelay(
        "submit", sample.operation, "--file", sample.path, *sample_arguments(sample), "--watch", *FAST, "-o", "json"
    )

    assert watched.code == 0, watched
    job = watched.json()
    assert (job["operation"], job["status"]) == (sample.operation, "SUCCEEDED"), watched
    # Every record of the file was uploaded and read in its format (told by its extension).
    lines = sample.path.read_text(encoding="utf-8").splitlines()
    assert job["progress"]["records"]["read"] == len(lines) - (1 if sample.path.suffix == ".csv" else 0)  # a header

    nothing = jobrelay("failures", job["job_id"], "-o", "json")
    assert (nothing.code, nothing.stdout) == (0, "")
    assert "has no failed records" in nothing.stderr


def test_an_import_with_invalid_lines_exits_3_and_failures_gives_one_json_line_each(jobrelay, which50, tmp_path):
    path = records_file(
        tmp_path,
        "contacts.jsonl",
        [
            json.dumps({"Email": "cli1@example.org", "FirstName": "One"}),
            json.dumps({"Email": "not-an-email", "FirstName": "Two"}),  # line 2: Which50 warns
            json.dumps({"FirstName": "Nobody"}),  # line 3: no identifier, never sent
            json.dumps({"Email": "cli4@example.org", "Shoe": 42}),  # line 4: not a field of the import
            json.dumps({"Email": "cli6@example.org", "Mobile": "353871234567"}),
        ],
    )
    watched = jobrelay(
        "submit",
        "which50.contact_import",
        "--file",
        path,
        "contact_list_id=12",
        "field_names=Email,FirstName,Mobile",
        "--watch",
        *FAST,
    )

    assert watched.code == 3, watched
    job_id = watched.stdout.split()[1]  # "submitted job_... (SUBMITTED)", then one line per change
    assert watched.stdout.splitlines()[-1].split()[1] == "PARTIAL", watched

    failures = jobrelay("failures", job_id, "--output", "json")

    assert failures.code == 0, failures
    records = [json.loads(line) for line in failures.stdout.splitlines()]
    assert [record["line"] for record in records] == [3, 4, 2]  # failed_records.jsonl, then validation_warnings.jsonl
    assert [record.get("stage") for record in records] == ["validation", "validation", None]
    assert "no identifier" in records[0]["reasons"][0] and "Shoe" in records[1]["reasons"][0]
    assert "email" in records[2]["warnings"][0].lower()

    table = jobrelay("failures", job_id)
    assert table.code == 0, table
    rows = table.stdout.splitlines()
    assert rows[0].split()[:2] == ["file", "line"]
    assert [row.split()[:2] for row in rows[1:]] == [
        ["failed_records.jsonl", "3"],
        ["failed_records.jsonl", "4"],
        ["validation_warnings.jsonl", "2"],
    ]


def test_a_job_the_vendor_fails_exits_4_with_its_reason(jobrelay, sandbox):
    sandbox.configure(fail_jobs="segment 9 is being rebuilt")

    watched = jobrelay("submit", "pinpointe.segment_subscribers", "segmentid=9", "--watch", *FAST)

    assert watched.code == 4, watched
    assert "FAILED (VENDOR_FAILED)" in watched.stderr and "segment 9 is being rebuilt" in watched.stderr


# --- cancel ------------------------------------------------------------------------------------------


def test_cancelling_a_watched_job_ends_the_watch_with_exit_6(jobrelay, api, stack, sandbox):
    sandbox.configure(job_seconds=120)
    job_id = jobrelay("submit", "pinpointe.list_subscribers", "list=1", "-o", "json").json()["job_id"]
    watcher = subprocess.Popen(
        [str(JOBRELAY), "--api-url", stack["api_url"], "watch", job_id, *FAST],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environment(),
    )
    try:
        wait_for(api, job_id, statuses={"RUNNING"})

        cancelled = jobrelay("cancel", job_id)

        assert (cancelled.code, cancelled.stdout.strip()) == (0, f"{job_id} CANCELLED"), cancelled
        stdout, stderr = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 6, (stdout, stderr)
    assert stdout.splitlines()[-1].split()[1] == "CANCELLED" and "CANCELLED" in stderr
    assert jobrelay("get", job_id, "-o", "json").json()["status"] == "CANCELLED"
    assert jobrelay("cancel", job_id).code == 0  # cancelling a cancelled job is fine


# --- list: every page ----------------------------------------------------------------------------------


def test_list_all_follows_next_through_every_page(jobrelay, api, sandbox):
    operation = "pinpointe.segment_subscribers"
    submitted = [jobrelay("submit", operation, f"segmentid={n}", "-o", "json").json()["job_id"] for n in (31, 32, 33)]
    try:
        first_page = jobrelay("list", "--operation", operation, "--limit", "2", "-o", "json")
        every_page = jobrelay("list", "--operation", operation, "--limit", "2", "--all", "--output", "json")

        assert first_page.code == every_page.code == 0, (first_page, every_page)
        assert len(first_page.json()["jobs"]) == 2 and first_page.json()["next"]
        listed = [job["job_id"] for job in every_page.json()["jobs"]]
        assert every_page.json()["next"] is None
        assert listed[:3] == submitted[::-1]  # newest first
        assert len(listed) == len(set(listed)) > 2
        # The same jobs as the API gives page by page.
        expected, token = [], None
        while True:
            page = api.get("/jobs", params={"operation": operation, "limit": 100, **({"next": token} if token else {})}).json()
            expected += [job["job_id"] for job in page["jobs"]]
            if not (token := page["next"]):
                break
        assert listed == expected

        table = jobrelay("list", "--operation", operation, "--limit", "2")
        assert table.code == 0 and "--all lists every page" in table.stderr
        assert [row.split()[0] for row in table.stdout.splitlines()[1:]] == submitted[:0:-1]
    finally:
        for job_id in submitted:  # done before the next test, so that it sees no vendor calls of theirs
            wait_for(api, job_id)


# --- schedules -----------------------------------------------------------------------------------------


def test_a_schedule_is_created_listed_paused_resumed_run_and_deleted(jobrelay, api, sandbox):
    name = "e2e-cli-nightly"
    created = jobrelay(
        "schedules",
        "create",
        name,
        "pinpointe.newsletter_contact_data_summary",
        "stat=4711",
        "startdate={{yesterday}}",
        "enddate={{today}}",
        "--cron",
        "30 2 * * ? *",
        "--timezone",
        "Europe/Dublin",
        "--paused",
        "-o",
        "json",
    )
    try:
        assert created.code == 0, created
        schedule = created.json()
        assert (schedule["name"], schedule["expression"], schedule["enabled"]) == (name, "cron(30 2 * * ? *)", False)
        assert schedule["params"] == {"stat": "4711", "startdate": "{{yesterday}}", "enddate": "{{today}}"}

        listed = jobrelay("schedules", "list", "-o", "json")
        assert name in [entry["name"] for entry in listed.json()["schedules"]], listed
        table = jobrelay("schedules", "list")
        assert any(row.split()[:3] == [name, "no", "(paused)"] for row in table.stdout.splitlines()), table

        resumed = jobrelay("schedules", "resume", name, "-o", "json")
        paused = jobrelay("schedules", "pause", name, "-o", "json")
        assert resumed.json()["enabled"] is True and len(resumed.json()["next_run_at"]) == 5, resumed
        assert paused.json()["enabled"] is False and paused.json()["next_run_at"] == [], paused

        run = jobrelay("schedules", "run", name, "-o", "json")  # even when paused
        assert run.code == 0, run
        job = run.json()
        assert job["schedule"]["name"] == name
        watched = jobrelay("watch", job["job_id"], *FAST, "-o", "json")
        assert watched.code == 0 and watched.json()["status"] == "SUCCEEDED", watched

        shown = jobrelay("schedules", "get", name, "-o", "json")
        assert [(entry["job_id"], entry["status"]) for entry in shown.json()["last_runs"]] == [(job["job_id"], "SUCCEEDED")]
        assert job["job_id"] in jobrelay("schedules", "get", name).stdout  # the table's last runs

        deleted = jobrelay("schedules", "delete", name)
        assert (deleted.code, deleted.stderr.strip()) == (0, f"deleted schedule {name}"), deleted
        gone = jobrelay("schedules", "get", name)
        assert gone.code == 1 and f"no schedule '{name}'" in gone.stderr and "404" in gone.stderr, gone
    finally:
        api.delete(f"/schedules/{name}")


# --- errors ----------------------------------------------------------------------------------------------


def newest_job(api) -> str | None:
    jobs = api.get("/jobs", params={"limit": 1}).json()["jobs"]
    return jobs[0]["job_id"] if jobs else None


def uploads(aws, stack) -> set[str]:
    pages = aws("s3").get_paginator("list_objects_v2").paginate(Bucket=stack["bucket"], Prefix="uploads/")
    return {entry["Key"] for page in pages for entry in page.get("Contents", [])}


def test_usage_errors_exit_2_saying_what_is_wrong_and_send_nothing(jobrelay, api, aws, stack):
    before = (newest_job(api), uploads(aws, stack))

    unknown = jobrelay("submit", "pinpointe.list_subscriber", "list=7", "--watch")
    wrong = jobrelay("submit", "pinpointe.list_subscribers", "lst=7", "status=weird")
    bad_import = jobrelay(
        "submit", "which50.contact_import", "--file", SAMPLES[1].path, "contact_list_id=twelve", "field_names=Email"
    )
    not_an_import = jobrelay("submit", "pinpointe.list_subscribers", "list=7", "--file", SAMPLES[0].path)

    for run in (unknown, wrong, bad_import, not_an_import):
        assert run.code == 2 and run.stdout == "" and "Traceback" not in run.stderr, run
    assert unknown.stderr.splitlines()[0] == "error: unknown operation 'pinpointe.list_subscriber'"
    assert "pinpointe.list_subscribers" in unknown.stderr  # the known ones are listed
    assert wrong.stderr.splitlines() == [
        "error: the params are not valid for pinpointe.list_subscribers "
        "(jobrelay operations pinpointe.list_subscribers lists them)",
        "  - status: must be one of: any, active, inactive, bounced, unsubscribed, got 'weird'",
        "  - lst: unknown param (did you mean list?); it takes: status, include_membership, customfields, startdate, enddate, list",
        "  - list: required, not given",
    ]
    assert "contact_list_id: expected a whole number, got 'twelve'" in bad_import.stderr
    assert "takes no records file" in not_an_import.stderr
    assert (newest_job(api), uploads(aws, stack)) == before  # no job, and not even an upload


def test_api_errors_exit_1_with_the_apis_message_and_no_traceback(jobrelay, api, sandbox):
    missing = jobrelay("get", "job_01aaaaaaaaaaaaaaaaaaaaaaaa", "-o", "json")

    assert missing.code == 1 and missing.stdout == "", missing
    assert missing.stderr.strip() == "error: no job 'job_01aaaaaaaaaaaaaaaaaaaaaaaa' (HTTP 404 NOT_FOUND)"

    finished = jobrelay("submit", "pinpointe.segment_subscribers", "segmentid=2", "--watch", *FAST, "-o", "json").json()
    conflict = jobrelay("cancel", finished["job_id"])
    assert conflict.code == 1 and "Traceback" not in conflict.stderr, conflict
    assert conflict.stderr.splitlines() == [
        "error: the job has already ended (SUCCEEDED) (HTTP 409 CONFLICT)",
        '  status: "SUCCEEDED"',
    ]


def test_operations_lists_every_operation_and_one_operations_params(jobrelay, api):
    listed = jobrelay("operations", "-o", "json")
    one = jobrelay("operations", "pinpointe.list_subscribers")

    assert listed.code == one.code == 0, (listed, one)
    assert [op["name"] for op in listed.json()["operations"]] == [
        op["name"] for op in api.get("/operations").json()["operations"]
    ]
    assert re.search(r"^list\s+list of text\s+yes\s", one.stdout, re.MULTILINE), one  # required
    assert re.search(r"^status\s+one of: any, active, inactive, bounced, unsubscribed\s+\"any\"", one.stdout, re.MULTILINE), one


# --- the live view on a terminal -----------------------------------------------------------------------


def terminal_environment() -> dict[str, str]:
    """A terminal Rich draws on, its size the pseudo-terminal's (COLUMNS or LINES would override it)."""
    inherited = {key: value for key, value in cli_environment().items() if key not in ("COLUMNS", "LINES")}
    return {**inherited, "TERM": "xterm-256color"}


def test_watch_on_a_terminal_shows_live_progress_and_ends_with_the_outcome(jobrelay, stack, which50, tmp_path):
    which50.post("/_sandbox/config", json={"process_seconds": 4}).raise_for_status()
    path = records_file(tmp_path, "contacts.jsonl", [json.dumps({"Email": f"tty{n}@example.org"}) for n in range(20)])
    job_id = jobrelay(
        "submit", "which50.contact_import", "--file", path, "contact_list_id=12", "field_names=Email", "-o", "json"
    ).json()["job_id"]

    started = time.monotonic()
    terminal = pexpect.spawn(
        str(JOBRELAY),
        ["--api-url", stack["api_url"], "watch", job_id, *FAST],
        env=terminal_environment(),
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=60,
    )
    terminal.expect(pexpect.EOF)
    terminal.close()
    shown = terminal.before

    assert terminal.exitstatus == 0, shown
    assert time.monotonic() - started > 2  # it followed the job while the vendor ran it
    frames = shown.split("\x1b[1A")  # Rich redraws the view in place: the cursor moves up over the last one
    assert len(frames) > 10, shown
    text = ANSI.sub("", shown)
    assert re.search(rf"job\s+{job_id}\s+which50.contact_import \(account default\)", text), text
    assert re.search(r"status\s+RUNNING\s+waiting", text), text
    percents = {int(percent) for percent in re.findall(r"━+\s+(\d+)%", text)}  # the bar and its figure
    assert any(0 < percent < 100 for percent in percents), percents
    assert re.search(r"elapsed\s+0m \d\ds since submitted", text)
    last = ANSI.sub("", frames[-1])
    assert re.search(r"status\s+SUCCEEDED\s+finished", last) and "100%" in last, last
