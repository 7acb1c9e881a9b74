"""Vendor credentials and callback keys from Secrets Manager, through Powertools' cache.

Values are never logged: errors name the secret, never its content.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class SecretsManagerStore:
    """SecretStore over the Secrets Manager client. Values are cached for `max_age_seconds`, so a
    warm Lambda container does not read a secret on every invocation; a rotated secret is picked
    up within that time."""

    def __init__(self, client: SecretsManagerClient, *, max_age_seconds: int = 300):
        self._provider = SecretsProvider(boto3_client=client)
        self._max_age = max_age_seconds

    def get_json(self, name: str) -> dict[str, Any]:
        try:
            value = self._provider.get(name, max_age=self._max_age, transform="json")
        except GetParameterError as exc:
            # Powertools wraps every failure in GetParameterError; the AWS error is its context.
            cause = exc.__context__
            if isinstance(cause, ClientError) and cause.response["Error"]["Code"] == "ResourceNotFoundException":
                raise KeyError(name) from None
            raise
        if not isinstance(value, dict):
            raise ValueError(f"secret {name!r} is not a JSON object")
        # The cache hands out the same dict each time: a caller's edits must not reach the next one.
        return copy.deepcopy(value)
