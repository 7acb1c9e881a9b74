"""Where the API is: `--api-url`, else `--stack` (a deployed stack's `ApiUrl` output), else the
environment's JOBRELAY_API_URL, else the local stack; and whether a URL is on this machine.

An explicit option beats the environment, so `--stack prod` works in a shell that exports
JOBRELAY_API_URL for the local stack; giving both options is a usage error.
"""

import ipaddress
import os
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jobrelay_cli.errors import CliError, UsageError

if TYPE_CHECKING:
    import boto3

DEFAULT_API_URL = "http://127.0.0.1:3000"  # `make run`'s local stack
API_URL_ENV = "JOBRELAY_API_URL"
STACK_OUTPUT = "ApiUrl"  # template.yaml's output

# https://<api-id>.execute-api.<region>.amazonaws.com[.cn]: the region to sign for is in the name.
EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


def resolve_api_url(api_url: str | None, stack: str | None, session_factory: "SessionFactory") -> str:
    if api_url and stack:
        raise UsageError("give one of --api-url and --stack, not both")
    if api_url:
        url = api_url
    elif stack:
        url = stack_api_url(stack, session_factory())
    else:
        url = os.environ.get(API_URL_ENV) or DEFAULT_API_URL
    return checked_url(url)


def checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the API URL must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


def stack_api_url(stack: str, session: "boto3.Session") -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        raise CliError(f"cannot read stack {stack!r}: {exc.response.get('Error', {}).get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise CliError(f"cannot read stack {stack!r}: {exc}") from None
    outputs = {output.get("OutputKey"): output.get("OutputValue") for output in (stacks[0].get("Outputs") or [])}
    url = outputs.get(STACK_OUTPUT)
    if not url:
        raise CliError(f"stack {stack!r} has no {STACK_OUTPUT} output", details={"outputs": sorted(str(k) for k in outputs)})
    return url


def is_loopback(url: str) -> bool:
    """Whether the URL's host is this machine by its name or address alone (never by resolving it):
    localhost, *.localhost (RFC 6761), 127.0.0.0/8 and ::1. The local stack listens there."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def region_in_url(url: str) -> str | None:
    match = EXECUTE_API_HOST.match((urlsplit(url).hostname or "").lower())
    return match.group(1) if match else None


class SessionFactory:
    """A boto3 session made on first use (boto3 is slow to import, and a local call never needs it),
    as the AWS CLI takes --profile and --region."""

    def __init__(self, profile: str | None, region: str | None):
        self.profile = profile
        self.region = region
        self._session: boto3.Session | None = None

    def __call__(self) -> "boto3.Session":
        if self._session is None:
            import boto3
            from botocore.exceptions import ProfileNotFound

            try:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
            except ProfileNotFound as exc:
                raise UsageError(str(exc)) from None
        return self._session
