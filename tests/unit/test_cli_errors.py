"""Retries (only where sending twice cannot do anything twice) and how errors are reported: the API's
message and details, exit 1, never a traceback; a connection refused is one line."""

import socket

import pytest

from jobrelay_cli.client import retry_safe
from tests.unit.cli_support import Answer, api_error, catalogue, job, run_cli

pytestmark = pytest.mark.usefixtures("cli_env")

UNAVAILABLE = api_error(503, "UNAVAILABLE", "the job could not be started; submit it again")


def test_a_get_answered_5xx_is_retried_until_it_succeeds(fake_api):
    fake_api.route("GET", "/jobs/job_01test", Answer(502, b"Bad Gateway"), UNAVAILABLE, job(status="RUNNING"))
    result = run_cli("--api-url", fake_api.url, "get", "job_01test")
    assert result.exit_code == 0, result.output
    assert "RUNNING" in result.stdout
    assert len(fake_api.sent("GET", "/jobs/job_01test")) == 3


def test_a_get_that_keeps_failing_reports_the_last_answer(fake_api):
    fake_api.route("GET", "/jobs/job_01test", UNAVAILABLE)
    result = run_cli("--api-url", fake_api.url, "get", "job_01test")
    assert result.exit_code == 1
    assert result.stderr == "error: the job could not be started; submit it again (HTTP 503 UNAVAILABLE)\n"
    assert len(fake_api.requests) == 4  # the first attempt and three retries


def test_post_jobs_without_an_idempotency_key_is_not_sent_twice(fake_api):
    fake_api.route("GET", "/operations", catalogue())
    fake_api.route("POST", "/jobs", UNAVAILABLE, Answer(202, job()))
    result = run_cli("--api-url", fake_api.url, "submit", "pinpointe.newsletter_contact_data_summary", "stat=4711")
    assert result.exit_code == 1
    assert "error: the job could not be started; submit it again (HTTP 503 UNAVAILABLE)" in result.stderr
    assert len(fake_api.sent("POST", "/jobs")) == 1


def test_post_jobs_with_an_idempotency_key_is_retried(fake_api):
    fake_api.route("GET", "/operations", catalogue())
    fake_api.route("POST", "/jobs", UNAVAILABLE, Answer(202, job()))
    result = run_cli(
        "--api-url", fake_api.url, "submit", "pinpointe.newsletter_contact_data_summary", "stat=4711", "--idempotency-key", "k-7"
    )
    assert result.exit_code == 0, result.output
    first, second = fake_api.sent("POST", "/jobs")
    assert first.body == second.body and first.headers["idempotency-key"] == second.headers["idempotency-key"] == "k-7"


def test_post_jobs_whose_key_is_still_in_use_waits_as_told_and_gets_the_first_requests_job(fake_api):
    in_progress = api_error(409, "IDEMPOTENCY_IN_PROGRESS", "a request with this Idempotency-Key is still being processed")
    fake_api.route("GET", "/operations", catalogue())
    fake_api.route("POST", "/jobs", Answer(409, in_progress.body, {"Retry-After": "0.2"}), Answer(202, job()))
    result = run_cli(
        "--api-url", fake_api.url, "submit", "pinpointe.newsletter_contact_data_summary", "stat=4711", "--idempotency-key", "k-7"
    )
    assert result.exit_code == 0, result.output
    assert "job_01test" in result.stdout
    first, second = fake_api.sent("POST", "/jobs")
    assert second.at - first.at >= 0.2  # its Retry-After, not the first retry delay (1 ms here)


def test_other_conflicts_are_not_retried(fake_api):
    fake_api.route("POST", "/jobs/job_01test/cancel", api_error(409, "CONFLICT", "the job has already ended"))
    result = run_cli("--api-url", fake_api.url, "cancel", "job_01test")
    assert result.exit_code == 1
    assert len(fake_api.sent("POST", "/jobs/job_01test/cancel")) == 1


def test_which_calls_are_safe_to_send_again():
    assert retry_safe("GET", "/jobs", {})
    assert retry_safe("DELETE", "/schedules/nightly", {})
    assert retry_safe("PUT", "/uploads/presigned", {})
    assert retry_safe("POST", "/jobs", {"Idempotency-Key": "k"})
    assert retry_safe("POST", "/jobs/job_01x/cancel", {})  # cancelling a cancelled job answers 200
    assert not retry_safe("POST", "/jobs", {})
    assert not retry_safe("POST", "/schedules", {})
    assert not retry_safe("POST", "/schedules/nightly/run", {})


def test_an_api_error_prints_its_message_and_details_and_exits_1(fake_api):
    details = [{"field": "params.stat", "message": "Field required"}, {"field": "account", "message": "too long"}]
    fake_api.route("GET", "/operations", catalogue())
    fake_api.route("POST", "/jobs", api_error(422, "INVALID_REQUEST", "params are not valid", details))
    result = run_cli("--api-url", fake_api.url, "submit", "pinpointe.newsletter_contact_data_summary", "stat=1")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: params are not valid (HTTP 422 INVALID_REQUEST)",
        "  - params.stat: Field required",
        "  - account: too long",
    ]
    assert result.stdout == ""


def test_a_conflict_on_cancel_is_reported(fake_api):
    fake_api.route(
        "POST", "/jobs/job_01test/cancel", api_error(409, "CONFLICT", "the job has already ended", {"status": "SUCCEEDED"})
    )
    result = run_cli("--api-url", fake_api.url, "cancel", "job_01test")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error: the job has already ended (HTTP 409 CONFLICT)", '  status: "SUCCEEDED"']
    assert "Traceback" not in result.output


def test_a_connection_refused_is_one_line(cli_env):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("--api-url", f"http://127.0.0.1:{port}", "get", "job_01test")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: cannot reach http://127.0.0.1:{port}: connection refused (GET /jobs/job_01test)\n"


def test_usage_errors_exit_2(fake_api):
    assert run_cli("--api-url", fake_api.url, "list", "--limit", "500").exit_code == 2
    both = run_cli("--api-url", fake_api.url, "--stack", "prod", "get", "job_01test")
    assert both.exit_code == 2
    assert both.stderr == "error: give one of --api-url and --stack, not both\n"
    assert run_cli("--api-url", "ftp://example.org", "get", "job_01test").exit_code == 2
    assert fake_api.requests == []


def test_the_api_url_comes_from_the_environment(fake_api, monkeypatch):
    monkeypatch.setenv("JOBRELAY_API_URL", fake_api.url + "/")
    fake_api.route("GET", "/jobs/job_01test", job())
    assert run_cli("get", "job_01test").exit_code == 0
    assert len(fake_api.requests) == 1


def test_an_answer_the_cli_cannot_read_is_an_error_not_a_traceback(fake_api):
    fake_api.route("GET", "/jobs/job_01test", {"job": "not one"})
    fake_api.route("POST", "/jobs/job_01test/cancel", {})
    fake_api.route("GET", "/schedules", Answer(200, b"<html>not json</html>"))
    unreadable = run_cli("--api-url", fake_api.url, "get", "job_01test")
    assert unreadable.exit_code == 1
    assert unreadable.stderr.startswith("error: the API's answer is not a job this CLI can read (job_id: Field required;")
    odd = run_cli("--api-url", fake_api.url, "cancel", "job_01test")
    assert odd.exit_code == 1
    assert odd.stderr == "error: unexpected KeyError in jobrelay: 'job_id' (--debug shows where)\n"
    html = run_cli("--api-url", fake_api.url, "schedules", "list")
    assert html.exit_code == 1
    assert html.stderr == "error: the API answered HTTP 200 with a body that is not JSON\n"
    for result in (unreadable, odd, html):
        assert "Traceback" not in result.output
