"""What reaches CloudWatch: the handlers, loaded as Lambda loads them (test_handlers.Deployed), print
metrics as Embedded Metric Format lines with the names and dimensions README.md documents, and JSON
log lines carrying the job id and the correlation id; an expected step error is a warning without
a traceback."""

import json
import logging
import re
import sys
from pathlib import Path

import pytest

from tests.integration.test_handlers import (  # noqa: F401  (fixtures)
    EVENTS,
    _wait_until_complete,
    _webhook_event,
    _webhook_url_sent_to,
    api,
    deployed,
    sandbox,
    step,
)

README = Path(__file__).resolve().parents[2] / "README.md"
REQUEST_ID = "JKJaXmPLvHcESHA="  # the sample API events' requestContext.requestId

# Every metric, and every dimension set it is emitted under (each with `service`, which Powertools adds).
DOCUMENTED: dict[str, list[set[str]]] = {
    "JobsSubmitted": [{"operation"}, set()],
    "JobsFinished": [{"operation", "status"}, {"status"}],
    "JobErrors": [{"code"}],
    "JobDuration": [{"operation"}],
    "VendorWait": [{"operation"}],
    "RecordsRead": [{"operation"}],
    "RecordsSent": [{"operation"}],
    "RecordsWritten": [{"operation"}],
    "RecordsFailed": [{"operation"}],
    "VendorCalls": [{"vendor", "call", "status_class"}, {"vendor", "status_class"}, {"vendor"}],
    "VendorCallLatency": [{"vendor", "call"}, {"vendor"}],
    "Webhooks": [{"vendor", "outcome"}],
    "Callbacks": [{"outcome"}],
    "QueueDepth": [{"vendor"}],
    "SweeperSettled": [{"code"}, set()],
    "SlotsFreed": [set()],
}
UNITS = {"Count", "Seconds", "Milliseconds"}


class _CurrentStdout:
    """Whatever sys.stdout is when a line is written (pytest swaps it between phases and tests)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture(autouse=True)
def logs_to_captured_stdout(monkeypatch):
    """Powertools' handler keeps the stdout it found first (an earlier test's capture, closed since)."""
    for handler in logging.getLogger("jobrelay").handlers:
        if isinstance(handler, logging.StreamHandler):
            monkeypatch.setattr(handler, "stream", _CurrentStdout())


def emitted(text: str) -> list[dict]:
    """Every EMF document printed, each checked against the EMF specification's structure
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)."""
    documents = []
    for line in text.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        meta = document["_aws"]
        assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
        (directive,) = meta["CloudWatchMetrics"]
        assert directive["Namespace"] == "jobrelay"
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            assert all(isinstance(document[name], str) and document[name] for name in dimension_set)
        for metric in directive["Metrics"]:
            assert metric["Unit"] in UNITS
            values = document[metric["Name"]]
            assert all(isinstance(v, int | float) and v >= 0 for v in (values if isinstance(values, list) else [values]))
        documents.append(document)
    return documents


def metric_sets(documents: list[dict]) -> list[tuple[str, list[set[str]], dict[str, str]]]:
    """(name, its dimension sets without `service`, the dimension values) of every document."""
    found = []
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        sets = [set(names) - {"service"} for names in directive["Dimensions"]]
        assert all("service" in names for names in directive["Dimensions"]) and document["service"] == "jobrelay"
        values = {name: document[name] for names in directive["Dimensions"] for name in names}
        for metric in directive["Metrics"]:
            found.append((metric["Name"], sets, values))
    return found


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"_aws"' not in line]


def test_a_job_s_metrics_are_emf_with_the_documented_names_and_dimensions(deployed, sandbox, capsys):  # noqa: F811
    _, job = api(deployed, "POST", "/jobs", {"operation": "pinpointe.list_subscribers", "params": {"list": ["7"]}})
    job_id = job["job_id"]
    step(deployed, {"step": "start", "job_id": job_id})
    step(deployed, {"step": "await_webhook", "job_id": job_id, "task_token": "token-1"})
    token = _webhook_url_sent_to(sandbox).rsplit("/", 1)[1]
    _wait_until_complete(sandbox)
    notice = {"jobid": job_id, "status": "complete"}
    assert deployed.invoke("WebhooksFunction", _webhook_event(job_id, token, notice))["statusCode"] == 200
    assert deployed.invoke("WebhooksFunction", _webhook_event(job_id, "B" * 43, notice))["statusCode"] == 404
    step(deployed, {"step": "poll", "job_id": job_id, "woken_by": {"via": "webhook"}})
    assert step(deployed, {"step": "collect", "job_id": job_id})["status"] == "SUCCEEDED"
    output = capsys.readouterr().out

    found = metric_sets(emitted(output))
    for name, sets, _ in found:
        assert name in DOCUMENTED and sets == DOCUMENTED[name], (name, sets)
        assert name in README.read_text(), f"{name} is not in README.md"
    by_name: dict[str, list[dict[str, str]]] = {}
    for name, _, values in found:
        by_name.setdefault(name, []).append(values)
    operation = {"operation": "pinpointe.list_subscribers", "service": "jobrelay"}
    assert by_name["JobsSubmitted"] == [operation]
    assert by_name["JobsFinished"] == [operation | {"status": "SUCCEEDED"}]
    assert by_name["JobDuration"] == [operation] and by_name["VendorWait"] == [operation]
    assert by_name["RecordsWritten"] == [operation]
    calls = {(v["vendor"], v["call"], v["status_class"]) for v in by_name["VendorCalls"]}
    assert {("pinpointe", "GetListSubscribersAsync", "2xx"), ("pinpointe", "AsyncJobStatus", "2xx")} <= calls
    assert all(v["vendor"] == "pinpointe" for v in by_name["VendorCallLatency"])
    assert sorted(v["outcome"] for v in by_name["Webhooks"]) == ["accepted", "refused"]
    assert all(job_id not in json.dumps(values) and token not in json.dumps(values) for _, _, values in found)


def test_every_log_line_is_json_with_the_job_id_and_the_api_s_request_id(deployed, sandbox, capsys):  # noqa: F811
    _, job = api(deployed, "POST", "/jobs", {"operation": "pinpointe.list_subscribers", "params": {"list": ["7"]}})
    api(deployed, "GET", f"/jobs/{job['job_id']}")
    step(deployed, {"step": "start", "job_id": job["job_id"]})
    lines = log_lines(capsys.readouterr().out)

    requests = [line for line in lines if line["message"] == "request"]
    assert [(r["method"], r["route"], r["status"]) for r in requests] == [
        ("POST", "POST /jobs", 202),
        ("GET", "GET /jobs/{job_id}", 200),
    ]
    assert all(r["correlation_id"] == REQUEST_ID and r["duration_ms"] >= 0 for r in requests)
    step_lines = [line for line in lines if line.get("step") == "start"]
    assert step_lines and all(line["job_id"] == job["job_id"] for line in step_lines)
    done = next(line for line in step_lines if line["message"] == "step done")
    assert (done["correlation_id"], done["operation"], done["vendor"]) == (REQUEST_ID, "pinpointe.list_subscribers", "pinpointe")


def test_an_expected_step_error_is_a_warning_without_a_traceback_and_counts_as_a_failed_job(deployed, sandbox, capsys):  # noqa: F811
    sandbox.configure({"fail_jobs": "list 7 is locked"})
    _, job = api(deployed, "POST", "/jobs", {"operation": "pinpointe.list_subscribers", "params": {"list": ["7"]}})
    step(deployed, {"step": "start", "job_id": job["job_id"]})
    _wait_until_complete(sandbox)
    capsys.readouterr()

    with pytest.raises(Exception) as raised:
        step(deployed, {"step": "poll", "job_id": job["job_id"]})
    assert type(raised.value).__name__ == "VendorJobFailed"  # what the state machine's Catch matches
    innermost = raised.value.__traceback__
    while innermost is not None and innermost.tb_next is not None:
        innermost = innermost.tb_next
    assert innermost is not None and innermost.tb_frame.f_code.co_filename.endswith("functions/steps/app.py")  # raised afresh
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    error = {"Error": "VendorJobFailed", "Cause": json.dumps({"errorType": "VendorJobFailed", "errorMessage": str(raised.value)})}
    step(deployed, {"step": "fail", "job_id": job["job_id"], "error": error})
    output = capsys.readouterr().out

    ended = next(line for line in log_lines(output) if line["message"].startswith("step ended with VendorJobFailed"))
    assert ended["level"] == "WARNING" and "exception" not in ended and "list 7 is locked" in ended["message"]
    assert not [line for line in log_lines(output) if line["level"] == "ERROR"]
    found = {(name, json.dumps(values, sort_keys=True)) for name, _, values in metric_sets(emitted(output))}
    assert ("JobErrors", json.dumps({"code": "VENDOR_FAILED", "service": "jobrelay"}, sort_keys=True)) in found
    assert any(name == "JobsFinished" and '"status": "FAILED"' in values for name, values in found)


def test_the_sweeper_counts_what_it_settles(deployed, capsys):  # noqa: F811
    _, job = api(deployed, "POST", "/jobs", {"operation": "pinpointe.segment_subscribers", "params": {"segmentid": [3]}})
    machine = deployed.template.state_machines[0].arn
    deployed.client("stepfunctions").stop_execution(
        executionArn=machine.replace(":stateMachine:", ":execution:") + f":{job['job_id']}"
    )
    capsys.readouterr()

    deployed.invoke("SweeperFunction", json.loads((EVENTS / "sweeper_scheduled.json").read_text()))

    found = metric_sets(emitted(capsys.readouterr().out))
    assert [values for name, _, values in found if name == "SweeperSettled"] == [
        {"code": "EXECUTION_ENDED", "service": "jobrelay"}
    ]
    assert [values["status"] for name, _, values in found if name == "JobsFinished"] == ["FAILED"]


def test_the_template_s_alarms_and_dashboard_name_only_emitted_metrics(deployed):  # noqa: F811
    resources = deployed.template.resources
    names = set()
    for resource in resources.values():
        if resource.type == "AWS::CloudWatch::Alarm":
            properties = resource.properties
            stats = [q["MetricStat"]["Metric"] for q in properties.get("Metrics", []) if "MetricStat" in q]
            for metric in [*stats, properties]:
                if metric.get("Namespace") == "jobrelay":
                    dimensions = {d["Name"] for d in metric["Dimensions"]} - {"service"}
                    assert dimensions in DOCUMENTED[metric["MetricName"]], (metric["MetricName"], dimensions)
                    names.add(metric["MetricName"])
        if resource.type == "AWS::CloudWatch::Dashboard":
            body = resource.properties["DashboardBody"]
            names |= set(re.findall(r'MetricName=\\?"(\w+)\\?"', body))
            names |= {
                row[1]
                for widget in json.loads(body)["widgets"]
                for row in widget["properties"].get("metrics", [])
                if row[0] == "jobrelay"
            }
    assert names and names <= set(DOCUMENTED)
    assert {"JobErrors", "SweeperSettled", "Callbacks", "VendorCalls"} <= names
    assert "StepErrorsAlarm" not in resources
