"""Locally, what would reach CloudWatch: the local stack keeps the EMF lines its functions print in
the file its ready info (and `make run`'s banner) names, and `python -m devstack.metrics` sums them up."""

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import submit, wait_for

REPO = Path(__file__).resolve().parents[2]


def test_a_job_s_metrics_are_kept_in_the_stack_s_metrics_file(api, stack):
    job = submit(api, "pinpointe.newsletter_contact_data_summary", {"stat": "4711"})
    assert wait_for(api, job["job_id"])["status"] == "SUCCEEDED"

    path = Path(stack["metrics_file"])
    documents = [json.loads(line) for line in path.read_text().splitlines()]
    assert documents and all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "jobrelay" for d in documents)
    named = {
        (m["Name"], d.get("operation") or d.get("vendor"))
        for d in documents
        for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    }
    assert {
        ("JobsSubmitted", "pinpointe.newsletter_contact_data_summary"),
        ("JobsFinished", "pinpointe.newsletter_contact_data_summary"),
        ("VendorCalls", "pinpointe"),
    } <= named

    summed = subprocess.run(
        [sys.executable, "-m", "devstack.metrics", str(path)], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "JobsFinished operation=pinpointe.newsletter_contact_data_summary status=SUCCEEDED" in summed
    assert "VendorCallLatency call=GetNewsletterContactDataSummaryAsync vendor=pinpointe" in summed
