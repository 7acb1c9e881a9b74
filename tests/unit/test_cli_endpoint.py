"""Where the CLI finds the API (--api-url, --stack, JOBRELAY_API_URL, the local stack) and which
hosts count as this machine (never signed)."""

import json

import boto3
import pytest
from moto import mock_aws

from jobrelay_cli.endpoint import is_loopback, region_in_url
from tests.unit.cli_support import job, run_cli

pytestmark = pytest.mark.usefixtures("cli_env")


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:3000", True),
        ("http://127.8.9.10", True),
        ("http://localhost:3000", True),
        ("http://api.localhost", True),
        ("http://[::1]:3000", True),
        ("https://abc123.execute-api.eu-west-1.amazonaws.com", False),
        ("http://localhost.example.com", False),
        ("http://10.0.0.1", False),
    ],
)
def test_loopback_is_decided_by_the_url_alone(url, loopback):
    assert is_loopback(url) is loopback


def test_the_region_to_sign_for_comes_from_an_execute_api_url():
    assert region_in_url("https://abc123.execute-api.eu-west-1.amazonaws.com") == "eu-west-1"
    assert region_in_url("https://jobs.example.com") is None


def test_stack_reads_the_api_url_from_the_stacks_output(fake_api, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    fake_api.route("GET", "/jobs/job_01test", job(status="RUNNING"))
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"ApiUrl": {"Value": fake_api.url}},
    }
    with mock_aws():
        boto3.client("cloudformation", region_name="eu-west-1").create_stack(
            StackName="jobrelay-test", TemplateBody=json.dumps(template)
        )
        found = run_cli("--stack", "jobrelay-test", "--region", "eu-west-1", "get", "job_01test")
        missing = run_cli("--stack", "no-such-stack", "--region", "eu-west-1", "get", "job_01test")
    assert found.exit_code == 0, found.output
    assert "RUNNING" in found.stdout
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: cannot read stack 'no-such-stack':")
    assert len(fake_api.requests) == 1


def test_an_unknown_profile_is_a_usage_error(fake_api):
    result = run_cli("--stack", "jobrelay", "--profile", "nobody", "get", "job_01test")
    assert result.exit_code == 2
    assert "nobody" in result.stderr
