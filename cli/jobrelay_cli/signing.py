"""SigV4 for a deployed API (AWS_IAM authorisation on every route): each request is signed for
`execute-api` with the standard AWS credential chain, as the AWS CLI finds it.

The signature covers exactly what httpx will send: the request is built first, then its method, URL
(with the query string as encoded on the wire), headers and body bytes are handed to botocore's
SigV4Auth, and the headers it adds are copied back. Presigned S3 URLs are never signed here: they
carry their own signature (client.py sends them unsigned).
"""

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError

from jobrelay_cli.endpoint import SessionFactory, region_in_url
from jobrelay_cli.errors import CliError, UsageError

SERVICE = "execute-api"
# What SigV4Auth adds to a request; nothing else of it is copied back.
SIGNATURE_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")


class Signer:
    """Signs httpx requests; credentials and region are looked up on the first request."""

    def __init__(self, api_url: str, sessions: SessionFactory):
        self._api_url = api_url
        self._sessions = sessions
        self._credentials: Credentials | None = None
        self._region: str | None = None

    def sign(self, request: httpx.Request) -> None:
        credentials, region = self._credentials_and_region()
        aws_request = AWSRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers.items()),
            data=request.content,
        )
        try:
            # Frozen per request: credentials that refresh themselves (SSO, a role) stay fresh
            # through a long `watch`.
            SigV4Auth(credentials.get_frozen_credentials(), SERVICE, region).add_auth(aws_request)
        except BotoCoreError as exc:
            raise CliError(f"cannot sign the request with the AWS credentials found: {exc}") from None
        for name in SIGNATURE_HEADERS:
            if name in aws_request.headers:
                request.headers[name] = aws_request.headers[name]

    def _credentials_and_region(self) -> tuple[Credentials, str]:
        if self._credentials is not None and self._region is not None:
            return self._credentials, self._region
        session = self._sessions()
        # The API's own region when its URL names one (https://<id>.execute-api.<region>.amazonaws.com);
        # a custom domain does not, so then --region or the profile's region.
        region = region_in_url(self._api_url) or session.region_name
        if not region:
            raise UsageError(f"cannot tell which AWS region to sign requests to {self._api_url} for: give --region")
        try:
            credentials = session.get_credentials()
        except BotoCoreError as exc:
            raise CliError(f"cannot load AWS credentials to sign requests: {exc}") from None
        if credentials is None:
            raise CliError(
                f"no AWS credentials found to sign requests to {self._api_url} (the API uses AWS_IAM): "
                "configure them as for the AWS CLI (environment, --profile, SSO, an instance role)"
            )
        self._credentials, self._region = credentials, region
        return credentials, region
