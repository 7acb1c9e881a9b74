"""What every vendor's HTTP client shares: the account secret's common part (its URLs, https only,
and its timeouts), transport failures (timeouts, dropped connections) and error answers (StatusCheck)
turned into the step errors the state machine understands, and one connection pool."""

import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, ClassVar, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from jobrelay.domain.errors import VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.domain.operation import validation_details
from jobrelay.vendors.redaction import excerpt, redact_text, register_secret


class HttpTimeouts(BaseModel):
    """Mixed into an account model: every call has explicit timeouts (a vendor that hangs must not
    eat the step's whole Lambda budget). A vendor may raise the read default (large uploads)."""

    connect_timeout_seconds: Annotated[float, Field(gt=0)] = 5.0
    read_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0  # also the write timeout

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout_seconds,
            read=self.read_timeout_seconds,
            write=self.read_timeout_seconds,
            pool=self.connect_timeout_seconds,
        )


class VendorAccount(HttpTimeouts):
    """The part every vendor account's secret shares. Subclasses name the vendor and may list more
    URLs to check (`urls`); every one must be https, or http when `allow_http` says so (the local
    sandbox). Problems are reported by field name, never with the secret's values."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    vendor_title: ClassVar[str]

    allow_http: bool = Field(default=False, description="allow http URLs (the local sandbox)")
    max_concurrent_jobs: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="how many jobs of this account may be at the vendor at once (none: no limit)"
    )
    base_url: str  # each vendor's account says what it is (and may give a default)

    def urls(self) -> dict[str, str]:
        return {"base_url": self.base_url}

    @model_validator(mode="after")
    def _https_unless_allowed(self) -> Self:
        schemes = ("https", "http") if self.allow_http else ("https",)
        for name, url in self.urls().items():
            try:
                parsed = httpx.URL(url)
            except httpx.InvalidURL:
                parsed = None
            if parsed is None or parsed.scheme not in schemes or not parsed.host:
                raise ValueError(f"{name} must be an https URL (http only with allow_http, for the local sandbox)")
        return self

    @model_validator(mode="after")
    def _secrets_never_shown(self) -> Self:
        """Every secret of the account is masked in any excerpt of a vendor answer from now on."""
        _register_secrets(self)
        return self

    @classmethod
    def from_secret(cls, secret: dict[str, Any]) -> Self:
        """The account, or VendorRejected naming what is wrong with the secret."""
        try:
            return cls.model_validate(secret)
        except ValidationError as exc:
            problems = "; ".join(f"{d['field']}: {d['message']}" for d in validation_details(exc))
            raise VendorRejected(f"the {cls.vendor_title} account secret is not valid ({problems})") from None


def _register_secrets(model: BaseModel) -> None:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            register_secret(value.get_secret_value())
        elif isinstance(value, BaseModel):
            _register_secrets(value)


def is_transient(status: int) -> bool:
    """An HTTP status worth retrying: the vendor is overloaded (429) or failing (5xx) for now."""
    return status == 429 or status >= 500


class StatusCheck:
    """How a vendor's HTTP status becomes a step error, the part every vendor shares: an answer that
    `passes` is left for the caller to read; a 429 or 5xx is VendorTransientError (the vendor
    answered, so it did not take the request: safe to send again); anything else is the
    VendorRejected that `refusal` makes. A vendor's subclass names the vendor and overrides only what
    is its own: `reason` (how it reads an error body; by default it is not read), `refusal` (what a
    status means there) and, rarely, `passes`. Fields of a subclass carry what its messages name (a
    client id, the subject of a call)."""

    vendor: ClassVar[str]

    def raise_for_status(self, answer: httpx.Response, call: str) -> None:
        status = answer.status_code
        if self.passes(answer):
            return
        reason = self.reason(answer.content)
        if is_transient(status):
            raise VendorTransientError(f"{self.vendor} {call} answered HTTP {status}{said(reason)}")
        raise self.refusal(status, call, reason)

    def passes(self, answer: httpx.Response) -> bool:
        return answer.is_success

    def reason(self, content: bytes) -> str | None:
        """The short, readable reason in an error answer's body (jobrelay.vendors.answers), or None."""
        return None

    def refusal(self, status: int, call: str, reason: str | None) -> VendorRejected:
        return VendorRejected(f"{self.vendor} refused {call} (HTTP {status}{said(reason)})")


def said(reason: str | None) -> str:
    """A reason as it follows an HTTP status in a message: ": <reason>", or nothing. The reason is the
    vendor's text, and a message reaches the job's error (the API): a vendor that echoes a credential
    back ("invalid usertoken ...") must not show it, so it is redacted like any excerpt."""
    return f": {redact_text(reason)}" if reason else ""


def json_body(answer: httpx.Response, vendor: str, call: str) -> Any:
    """The answer's JSON, or VendorProtocolError naming the call (the state machine retries it a
    few times: bodies are sometimes cut)."""
    try:
        return json.loads(answer.content)
    except (ValueError, RecursionError):
        raise VendorProtocolError(
            f"{vendor} answered {call} (HTTP {answer.status_code}) with a body that is not JSON", answer=excerpt(answer.content)
        ) from None


@contextmanager
def transport_errors_as_transient(what: str) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        said = f"timed out ({type(exc).__name__})" if isinstance(exc, httpx.TimeoutException) else f"failed: {type(exc).__name__}"
        # No connection was made (or none was free in the pool): the request never left us.
        sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        raise VendorTransientError(f"{what} {said}", vendor_answered=False, request_sent=sent) from exc


@functools.cache
def shared_http_client() -> httpx.Client:
    """One connection pool per Lambda container for every vendor, reused across invocations.
    Timeouts are given on every call; redirects are never followed (an answer we did not ask for is
    not one we read, and a result link is checked before it is fetched). Every exchange passes the
    vendor call log's recorder (jobrelay.vendors.recording), which files it in the job's log when a
    step is recording, and is counted and timed (jobrelay.vendors.call_metrics). A request and its
    body are freed once its answer is read, and a big body is written in pieces
    (jobrelay.vendors.http_memory). (A transport given explicitly means httpx reads no proxy from the
    environment: vendors are reached directly.)"""
    from jobrelay.vendors.call_metrics import MeteredTransport
    from jobrelay.vendors.http_memory import PiecewiseBodies, release_when_closed
    from jobrelay.vendors.recording import RecordingTransport

    return httpx.Client(
        follow_redirects=False,
        transport=MeteredTransport(RecordingTransport(PiecewiseBodies(httpx.HTTPTransport()))),
        event_hooks={"response": [release_when_closed]},
    )
