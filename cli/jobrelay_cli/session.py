"""The global options (given before the command) and what they lead to: where the API is, whether
requests are signed, and one ApiClient for the command, made on first use so that `--help` and
usage errors never touch the network or AWS."""

import shlex
from dataclasses import dataclass, field
from enum import StrEnum

import typer

from jobrelay_cli.client import ApiClient
from jobrelay_cli.endpoint import SessionFactory, is_loopback, resolve_api_url
from jobrelay_cli.signing import Signer


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@dataclass
class Session:
    output: OutputFormat = OutputFormat.table
    api_url: str | None = None
    stack: str | None = None
    profile: str | None = None
    region: str | None = None
    debug: bool = False
    _client: ApiClient | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.json

    def client(self) -> ApiClient:
        if self._client is None:
            sessions = SessionFactory(self.profile, self.region)
            url = resolve_api_url(self.api_url, self.stack, sessions)
            # The local stack (loopback) checks no signatures, and has no AWS credentials to sign with.
            signer = None if is_loopback(url) else Signer(url, sessions)
            self._say(f"API at {url} ({'requests SigV4-signed' if signer else 'loopback: requests not signed'})")
            self._client = ApiClient(url, signer, debug=self._say if self.debug else None)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def command(self, *words: str) -> str:
        """`jobrelay <the global options given> <words>`: a command to suggest that reaches the same API."""
        options = [
            *(["--api-url", self.api_url] if self.api_url else []),
            *(["--stack", self.stack] if self.stack else []),
            *(["--profile", self.profile] if self.profile else []),
            *(["--region", self.region] if self.region else []),
        ]
        return shlex.join(["jobrelay", *options, *words])

    def _say(self, line: str) -> None:
        if self.debug:
            typer.echo(f"debug: {line}", err=True)


def session_of(ctx: typer.Context) -> Session:
    session = ctx.find_object(Session)
    if session is None:  # a command invoked without the app's callback (not through `jobrelay`)
        session = ctx.ensure_object(Session)
    return session
