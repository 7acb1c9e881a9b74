"""EventBridgePublisher and SecretsManagerStore under moto."""

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.stub import Stubber

from jobrelay.adapters.eventbridge import EventBridgePublisher, EventPublishFailed
from jobrelay.adapters.secrets import SecretsManagerStore
from tests.integration.aws_env import mocked_aws

BUS = "jobrelay-jobs"


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        yield


# --- EventBridge -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events(aws: None) -> Any:
    client = boto3.client("events")
    client.create_event_bus(Name=BUS)
    return client


@pytest.fixture(scope="module")
def delivered(events: Any) -> Callable[[], list[dict[str, Any]]]:
    """What a rule matching our source delivers, read from the SQS queue it targets."""
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="job-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="jobrelay-events", EventBusName=BUS, EventPattern=json.dumps({"source": ["jobrelay"]}))
    events.put_targets(Rule="jobrelay-events", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])

    def receive() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]

    return receive


def test_an_event_reaches_the_bus_with_our_source_and_a_json_detail(
    events: Any, delivered: Callable[[], list[dict[str, Any]]]
) -> None:
    ended_at = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)

    EventBridgePublisher(BUS, events).publish("Job Succeeded", {"job_id": "job-1", "ended_at": ended_at, "size": 12})

    (event,) = delivered()
    assert (event["source"], event["detail-type"]) == ("jobrelay", "Job Succeeded")
    assert event["detail"] == {"job_id": "job-1", "ended_at": "2025-03-01T09:30:00Z", "size": 12}


def test_an_entry_eventbridge_refuses_is_an_error(events: Any) -> None:
    """PutEvents answers 200 with the failure inside: the publisher must look."""
    with Stubber(events) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]},
        )

        with pytest.raises(EventPublishFailed, match="Job Failed.*ThrottlingException: Rate exceeded"):
            EventBridgePublisher(BUS, events).publish("Job Failed", {"job_id": "job-2"})


# --- Secrets Manager ---------------------------------------------------------------------------


@pytest.fixture
def secretsmanager(aws: None) -> Any:
    return boto3.client("secretsmanager")


def test_a_secret_is_read_as_json_and_cached(secretsmanager: Any) -> None:
    secretsmanager.create_secret(Name="jobrelay/pinpointe/default", SecretString='{"api_key": "k1", "base_url": "u"}')
    store = SecretsManagerStore(secretsmanager)

    first = store.get_json("jobrelay/pinpointe/default")
    secretsmanager.put_secret_value(SecretId="jobrelay/pinpointe/default", SecretString='{"api_key": "k2"}')
    second = store.get_json("jobrelay/pinpointe/default")

    assert first == second == {"api_key": "k1", "base_url": "u"}  # within max_age: no second read
    assert SecretsManagerStore(secretsmanager, max_age_seconds=0).get_json("jobrelay/pinpointe/default") == {"api_key": "k2"}


def test_a_callers_edits_do_not_reach_the_cache(secretsmanager: Any) -> None:
    secretsmanager.create_secret(Name="jobrelay/which50/default", SecretString='{"token": "t"}')
    store = SecretsManagerStore(secretsmanager)

    store.get_json("jobrelay/which50/default")["token"] = "changed"

    assert store.get_json("jobrelay/which50/default") == {"token": "t"}


def test_a_missing_secret_is_a_key_error_naming_it(secretsmanager: Any) -> None:
    with pytest.raises(KeyError) as raised:
        SecretsManagerStore(secretsmanager).get_json("jobrelay/mypreferences/nobody")

    assert raised.value.args == ("jobrelay/mypreferences/nobody",)


def test_other_failures_are_not_mistaken_for_a_missing_secret(secretsmanager: Any) -> None:
    secretsmanager.create_secret(Name="jobrelay/pinpointe/old", SecretString="{}")
    secretsmanager.delete_secret(SecretId="jobrelay/pinpointe/old")  # scheduled, not gone: reading is refused

    with pytest.raises(GetParameterError):
        SecretsManagerStore(secretsmanager).get_json("jobrelay/pinpointe/old")
