"""How a MyPreferences account authenticates (docs/VENDORS.md 2.2), and the account secret that says so.

Two schemes sit behind one interface: each is an `httpx.Auth`, httpx's own extension point for
authentication. The client passes every request through the account's auth flow, which sets the
Authorization header and may send requests of its own (the OAuth token request) or look at the
answer (to renew an OAuth token refused with 401). The client code is the same for both schemes.

- OAuth 2.0 client credentials: a bearer token from the account's token endpoint, cached until
  shortly before it expires.
- PNAUTHINFO3-HMAC-SHA256: a header signed fresh for every request (a signature lives 15 minutes).

Secrets are SecretStr from the moment the secret is read; only the auth flows reveal them, to sign
or to ask for a token. Errors and logs name the setting, never its value.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Annotated, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from jobrelay.domain.errors import VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.domain.job import utcnow
from jobrelay.vendors.http import VendorAccount
from jobrelay.vendors.mypreferences.api import (
    CONCURRENT_IMPORTS_DEFAULT,
    MAX_STAGE_CONCURRENCY,
    OAUTH_DEFAULT_TOKEN_SECONDS,
    OAUTH_RENEWAL_MARGIN,
    PNAUTHINFO3_SCHEME,
    SIGNATURE_BACKDATE,
    STAGE_CONCURRENCY_DEFAULT,
    vendor_message,
)
from jobrelay.vendors.redaction import excerpt, register_secret

# --- the account secret ----------------------------------------------------------------------------


class OAuthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: Literal["oauth"]
    token_url: str = Field(description="MyPreferences' OAuth token endpoint for the account's environment")
    oauth_client_id: Annotated[str, Field(min_length=1)]  # not the MyPreferences clientId (docs/VENDORS.md 2.2 A)
    oauth_client_secret: Annotated[SecretStr, Field(min_length=1)]


class PnAuthInfo3Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scheme: Literal["pnauthinfo3"]
    secret: Annotated[SecretStr, Field(min_length=1)]


class MyPreferencesAccount(VendorAccount):
    """One MyPreferences account (one user of one organisation), as stored in its secret."""

    vendor_title = "MyPreferences"

    base_url: str = Field(description="the environment's host, e.g. https://pmstg.mypreferences.com")
    client_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")] = Field(
        description="the organisation's MyPreferences account id (it goes into every path)"
    )
    user_id: Annotated[str, Field(min_length=1, max_length=256)]
    auth: Annotated[OAuthSettings | PnAuthInfo3Settings, Field(discriminator="scheme")]
    stage_concurrency: Annotated[int, Field(ge=1, le=MAX_STAGE_CONCURRENCY)] = STAGE_CONCURRENCY_DEFAULT  # see api.py
    max_concurrent_jobs: Annotated[int, Field(ge=1)] | None = CONCURRENT_IMPORTS_DEFAULT  # see api.py
    read_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0  # also the write timeout: stages are large

    @field_validator("base_url")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        # The help site shows URLs under /Profiles/; our paths carry it, so a base ending in it is trimmed.
        return value.strip().rstrip("/").removesuffix("/Profiles")

    def urls(self) -> dict[str, str]:
        urls = {"base_url": self.base_url}
        if isinstance(self.auth, OAuthSettings):
            urls["auth.token_url"] = self.auth.token_url
        return urls

    def authenticator(self) -> httpx.Auth:
        """The auth flow this account's scheme calls for."""
        if isinstance(self.auth, OAuthSettings):
            return OAuthClientCredentials(
                self.auth.token_url,
                self.auth.oauth_client_id,
                self.auth.oauth_client_secret,
                scope=f"{self.client_id}/{self.user_id}",
                timeout=self.timeout,
            )
        return PnAuthInfo3(self.client_id, self.user_id, self.auth.secret)


# --- OAuth 2.0 client credentials (docs/VENDORS.md 2.2 A) ------------------------------------------------


class OAuthClientCredentials(httpx.Auth):
    """Bearer tokens from the client-credentials grant, cached until OAUTH_RENEWAL_MARGIN before
    they expire. An API call refused with 401 while we thought the token valid gets one new token
    and one retry; a second 401 is the caller's to report."""

    requires_response_body = True  # the token answer is read inside the flow

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        scope: str,
        timeout: httpx.Timeout,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()  # one adapter may serve concurrent stage calls
        self._token: str | None = None
        self._renew_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        token = self._cached_token()
        fresh = token is None
        if token is None:
            token = yield from self._new_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and not fresh:
            self._forget(token)
            token = yield from self._new_token()
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def _cached_token(self) -> str | None:
        with self._lock:
            return self._token if self._token and self._clock() < self._renew_at else None

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:  # another call may have renewed it already
                self._token = None

    def _new_token(self) -> Generator[httpx.Request, httpx.Response, str]:
        asked_at = self._clock()
        response = yield self._token_request()
        token, lifetime = self._read_token(response)
        with self._lock:
            self._token = token
            self._renew_at = asked_at + max(lifetime - OAUTH_RENEWAL_MARGIN.total_seconds(), lifetime / 2)
        return token

    def _token_request(self) -> httpx.Request:
        credentials = f"{self._client_id}:{self._client_secret.get_secret_value()}".encode()
        return httpx.Request(
            "POST",
            self._token_url,
            data={"grant_type": "client_credentials", "scope": self._scope},
            headers={"Authorization": "Basic " + base64.b64encode(credentials).decode(), "Accept": "application/json"},
            # A request made inside an auth flow does not inherit the call's timeouts: give its own.
            extensions={"timeout": self._timeout.as_dict()},
        )

    def _read_token(self, response: httpx.Response) -> tuple[str, float]:
        status = response.status_code
        if status == 429 or status >= 500:
            raise VendorTransientError(f"MyPreferences' OAuth token endpoint answered HTTP {status}")
        if not response.is_success:
            reason = vendor_message(response.content)
            raise VendorRejected(
                f"MyPreferences' OAuth token endpoint refused the account's client credentials (HTTP {status}"
                f"{': ' + reason if reason else ''}); check oauth_client_id, oauth_client_secret and the scope "
                f"{self._scope!r}"
            )
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise VendorProtocolError(
                "MyPreferences' OAuth token endpoint answered without an access_token", answer=excerpt(response.content)
            )
        register_secret(token)  # masked in any excerpt (and the vendor call log) from now on
        lifetime = body.get("expires_in")
        try:
            seconds = float(lifetime) if lifetime is not None else OAUTH_DEFAULT_TOKEN_SECONDS
        except (TypeError, ValueError):
            seconds = OAUTH_DEFAULT_TOKEN_SECONDS
        return token, max(seconds, 0.0)


# --- PNAUTHINFO3-HMAC-SHA256 (docs/VENDORS.md 2.2 B) ------------------------------------------------------


class PnAuthInfo3(httpx.Auth):
    """The custom HMAC header, signed fresh for every request: a signature is only valid for 15
    minutes from its timestamp, and an import lasts hours."""

    def __init__(self, client_id: str, user_id: str, secret: SecretStr, *, now: Callable[[], datetime] = utcnow):
        self._client_id = client_id
        self._user_id = user_id
        self._secret = secret
        self._now = now

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        timestamp = pnauthinfo3_timestamp(self._now() - SIGNATURE_BACKDATE)
        request.headers["Authorization"] = pnauthinfo3_header(
            self._client_id, self._user_id, timestamp, self._secret.get_secret_value()
        )
        yield request


def pnauthinfo3_timestamp(moment: datetime) -> str:
    """UTC with milliseconds and "Z", as the third-party client writes it: 2020-10-06T18:09:12.667Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def pnauthinfo3_signature(client_id: str, user_id: str, timestamp: str, secret: str) -> str:
    """base64(HMAC-SHA256(key=secret, msg="<clientId>:<userId>:<timestamp>")): the string-to-sign
    comes from a third-party client, not the vendor's text (docs/VENDORS.md 2.2 B, Unknown 14)."""
    message = f"{client_id}:{user_id}:{timestamp}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def pnauthinfo3_header(client_id: str, user_id: str, timestamp: str, secret: str) -> str:
    signature = pnauthinfo3_signature(client_id, user_id, timestamp, secret)
    return f"{PNAUTHINFO3_SCHEME} Credential={user_id}/{timestamp} Signature={signature}"
