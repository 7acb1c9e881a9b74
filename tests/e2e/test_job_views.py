"""What a user watching GET /jobs/{id} sees through the whole local stack: a phase and a note that
are true at every moment (queued behind another job, waiting for Pinpointe since a time, with the
time waited so far growing as it is read, finished), and for a failed job, why."""

import json
import time
from datetime import datetime

import pytest

from tests.e2e.conftest import TERMINAL, submit, wait_for

pytestmark = pytest.mark.e2e

ACCOUNT = "one-at-a-time"


@pytest.fixture(scope="module")
def one_at_a_time(stack, aws) -> str:
    """A second Pinpointe account on the same sandbox whose secret allows one job at a time."""
    secrets = aws("secretsmanager")
    default = json.loads(secrets.get_secret_value(SecretId="jobrelay/pinpointe/default")["SecretString"])
    secrets.create_secret(Name=f"jobrelay/pinpointe/{ACCOUNT}", SecretString=json.dumps({**default, "max_concurrent_jobs": 1}))
    return ACCOUNT


def watch(api, job_id: str, timeout: float = 60) -> tuple[dict, list[dict]]:
    """The finished job, and each progress GET /jobs/{id} showed on the way."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while (job := api.get(f"/jobs/{job_id}").json())["status"] not in TERMINAL:
        assert time.monotonic() < deadline, job
        seen.append({"status": job["status"], **job["progress"]})
        time.sleep(0.1)
    return job, seen


def test_an_export_is_seen_queued_then_waiting_for_pinpointe_with_the_wait_growing_then_finished(api, sandbox, one_at_a_time):
    sandbox.configure(job_seconds=7)  # 4 s after the fallback poll: room for a loaded machine
    params = {"list": ["1"]}
    ahead = submit(api, "pinpointe.list_subscribers", params, account=one_at_a_time)
    wait_for(api, ahead["job_id"], statuses={"RUNNING"})  # it holds the account's one slot
    accepted = submit(api, "pinpointe.list_subscribers", params, account=one_at_a_time)
    assert accepted["progress"]["phase"] in ("starting", "queued"), accepted["progress"]

    job, seen = watch(api, accepted["job_id"])

    phases = [s["phase"] for s in seen]
    moves = [phase for n, phase in enumerate(phases) if n == 0 or phase != phases[n - 1]]
    # Forward only; starting and collecting pass quickly and may fall between two reads.
    assert [p for p in moves if p not in ("starting", "collecting")] == ["queued", "waiting"], moves
    assert moves[0] in ("starting", "queued") and moves.count("starting") <= 2, moves
    queued = [s for s in seen if s["phase"] == "queued"]
    assert all(s["status"] == "SUBMITTED" and s["waiting_on"] == "slot" for s in queued)
    assert queued[-1]["note"].startswith(f"queued behind 1 job of Pinpointe account '{ACCOUNT}' since ")

    waiting = [s for s in seen if s["phase"] == "waiting"]
    assert all(s["status"] == "RUNNING" and s["waiting_on"] == "webhook" for s in waiting)
    assert len({s["waiting_since"] for s in waiting}) == 1  # since the vendor got the job, not since the last look
    since = datetime.fromisoformat(waiting[0]["waiting_since"])
    assert waiting[0]["note"].startswith(f"waiting for Pinpointe since {since:%H:%M} UTC (")
    elapsed = [s["elapsed_seconds"] for s in waiting]
    assert elapsed == sorted(elapsed) and elapsed[-1] - elapsed[0] >= 2, elapsed  # computed as read: it grows
    # The fallback poll (3 s at the test profile's scale) comes before the 7 s job ends: the
    # vendor's own word shows up in the note.
    assert any("last status 'processing'" in s["note"] for s in waiting), [s["note"] for s in waiting]

    assert job["status"] == "SUCCEEDED", job
    progress = job["progress"]
    assert (progress["phase"], progress["percent"]) == ("finished", 100)
    assert progress["note"] == "result stored and reconciled with the vendor's counts"
    assert progress["waiting_since"] is None and progress["elapsed_seconds"] is None
    assert wait_for(api, ahead["job_id"])["status"] == "SUCCEEDED"


def test_a_failed_export_says_why_not_that_it_started(api, sandbox):
    sandbox.configure(job_seconds=1, fail_jobs="list 1 is locked by another export")

    job = wait_for(api, submit(api, "pinpointe.list_subscribers", {"list": ["1"]})["job_id"])

    assert job["status"] == "FAILED", job
    assert job["progress"]["phase"] == "finished"
    assert job["progress"]["note"] == "failed while waiting for Pinpointe: list 1 is locked by another export"
    assert job["progress"]["vendor_status"] == "failed" and job["progress"]["elapsed_seconds"] is None
