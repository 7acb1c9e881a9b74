"""moto for the adapter tests: fake credentials, and resources shaped exactly as template.yaml
declares them, read from the template itself so the tests cannot drift from it."""

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from devstack.template import load_yaml

REGION = "us-east-1"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@contextmanager
def mocked_aws(monkeypatch: pytest.MonkeyPatch, config: dict[str, Any] | None = None) -> Iterator[None]:
    """moto for every AWS service, with credentials that cannot reach a real account. A boto3
    client costs about 0.1 s to make, so modules share one session and its clients."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(config=config):  # type: ignore[arg-type]  # moto types its config as a TypedDict
        yield


@contextmanager
def mocked_bucket(bucket: str) -> Iterator[Any]:
    """An S3 client under moto with `bucket` created, for module-scoped fixtures (which cannot use
    the function-scoped monkeypatch fixture)."""
    import boto3

    with pytest.MonkeyPatch.context() as monkeypatch, mocked_aws(monkeypatch):
        client = boto3.client("s3")
        client.create_bucket(Bucket=bucket)
        yield client


def forget_wiring() -> None:
    """Drop every adapter jobrelay.wiring has built (and the settings it read), so the next call
    builds them again from the environment as it is now."""
    from jobrelay import wiring

    for name in dir(wiring):
        cached = getattr(wiring, name)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


@contextmanager
def wired(environment: dict[str, str]) -> Iterator[Any]:
    """jobrelay.wiring with `environment` set, as a handler would build its adapters; forgotten
    again afterwards. Use inside mocked_aws."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        forget_wiring()
        try:
            from jobrelay import wiring

            yield wiring
        finally:
            forget_wiring()


@cache
def template_properties(resource: str) -> dict[str, Any]:
    return load_yaml(TEMPLATE)["Resources"][resource]["Properties"]


def create_jobs_table(client: Any, table_name: str | None = None) -> str:
    """A JobsTable (keys, attribute definitions, GSIs and TTL as template.yaml has them), under a
    fresh name unless one is given, so tests can share one moto session."""
    table_name = table_name or f"jobs-{next(_table_numbers)}"
    properties = template_properties("JobsTable")
    client.create_table(
        TableName=table_name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )
    client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=properties["TimeToLiveSpecification"])
    return table_name


_table_numbers = itertools.count(1)
