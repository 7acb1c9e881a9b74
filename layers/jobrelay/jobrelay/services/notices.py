"""Telling the world a job ended: an EventBridge event, and a signed callback to the submitter.

Both are at-least-once. Events carry (job_id, status, version) and callbacks a stable `webhook-id`
of "<job_id>:<status>", so receivers can drop the duplicates a retried step may produce.
Callbacks are signed per the Standard Webhooks spec (https://www.standardwebhooks.com) with the
account's signing secret; the `standardwebhooks` package does the signing.

A callback goes where its URL leads only after that place is checked (jobrelay.domain.callback_targets):
the host is normalised, a name is resolved once here and every address it resolves to is checked,
and the connection is made to a checked address, never to the name, so a second lookup cannot
answer differently (DNS rebinding). The name still goes in the Host header and as the TLS server
name, and the certificate is verified for it. A target refused is refused for good
(CallbackTargetRefused, not retried).
"""

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from jobrelay.domain.errors import CallbackDeliveryError
from jobrelay.domain.job import Job
from jobrelay.domain.status import JobStatus
from jobrelay.ports import EventPublisher, SecretStore
from jobrelay.settings import Settings

if TYPE_CHECKING:
    import httpx

    from jobrelay.domain.callback_targets import CallbackTarget, IPAddress

DETAIL_TYPES: dict[JobStatus, str] = {
    JobStatus.SUCCEEDED: "Job Succeeded",
    JobStatus.PARTIAL: "Job Partially Succeeded",
    JobStatus.FAILED: "Job Failed",
    JobStatus.TIMED_OUT: "Job Timed Out",
    JobStatus.CANCELLED: "Job Cancelled",
}
CALLBACK_TIMEOUT_SECONDS = 10.0


def job_summary(job: Job) -> dict[str, Any]:
    """What an event or a callback says about a job: enough to act on, no presigned links (they
    expire) and nothing backend-only."""
    return {
        "job_id": job.job_id,
        "operation": job.operation,
        "account": job.account,
        "status": job.status.value,
        "version": job.version,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "result": job.result.model_dump(mode="json") if job.result else None,
        "reconciliation": job.reconciliation.model_dump(mode="json") if job.reconciliation else None,
        "error": job.error.model_dump(mode="json") if job.error else None,
    }


class HostResolver(Protocol):
    """A callback host's addresses, in the order to try them (socket.getaddrinfo's, by default)."""

    def __call__(self, host: str, port: int) -> "Sequence[IPAddress]": ...


def resolve_host(host: str, port: int) -> "list[IPAddress]":
    """The system resolver's addresses for `host` (raises OSError when it has none)."""
    import ipaddress
    import socket

    addresses: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class Notices:
    def __init__(
        self,
        events: EventPublisher,
        secrets: SecretStore,
        settings: Settings,
        http_client: "httpx.Client | None" = None,
        resolver: HostResolver = resolve_host,
    ):
        self._events = events
        self._secrets = secrets
        self._settings = settings
        self._http = http_client  # an httpx.Client; built on first use (httpx is slow to import)
        self._resolve = resolver

    def announce(self, job: Job) -> None:
        self._events.publish(DETAIL_TYPES[job.status], job_summary(job))

    def deliver_callback(self, job: Job, timeout: float = CALLBACK_TIMEOUT_SECONDS) -> int:
        """POST the signed summary to the job's callback_url; returns the HTTP status. Raises
        CallbackTargetRefused when the URL leads somewhere callbacks may not go (no retry changes
        that), CallbackDeliveryError for anything else but a 2xx, so the state machine retries with
        backoff."""
        if not job.callback_url:
            raise ValueError("the job has no callback_url")
        # Imported with the first callback: this module is on the cold start of most functions.
        from jobrelay.domain.callback_targets import parse_callback_url

        target = parse_callback_url(job.callback_url, allow_local=self._settings.allow_local_callbacks)
        addresses = self._checked_addresses(target)
        body = json.dumps(job_summary(job), separators=(",", ":"))
        headers = {"content-type": "application/json", **self._signature_headers(job, body)}
        return self._post(target, addresses, body, headers, timeout)

    def _checked_addresses(self, target: "CallbackTarget") -> "list[IPAddress]":
        """Where to connect: the URL's own address, or every address its name resolves to, each
        one checked (one refused address refuses the name: which one a client would get is not
        ours to know)."""
        from jobrelay.domain.callback_targets import CallbackTargetRefused, connectable, refusal_of

        if target.address is not None:
            return [target.address]
        try:
            resolved = list(self._resolve(target.host, target.port))
        except OSError as exc:  # socket.gaierror among them: perhaps for now only, so retried
            raise CallbackDeliveryError(f"callback host {target.host} could not be resolved ({exc})") from None
        if not resolved:
            raise CallbackDeliveryError(f"callback host {target.host} could not be resolved (no addresses)")
        for address in resolved:
            refusal = refusal_of(address, allow_local=self._settings.allow_local_callbacks)
            if refusal is not None:
                # The address stays out of the message: a job's timeline is no way to learn what our
                # resolver says about names inside our network.
                raise CallbackTargetRefused(
                    f"callback host {target.host} resolves to {refusal.what}; callbacks go to public addresses only"
                )
        return [connectable(address) for address in resolved]

    def _post(
        self, target: "CallbackTarget", addresses: "list[IPAddress]", body: str, headers: dict[str, str], timeout: float
    ) -> int:
        """POST to the first address that takes a connection, within `timeout` overall (as a
        client trying a name's addresses in turn would)."""
        import httpx

        by_name = target.address is None
        if by_name:
            # The request's URL carries the checked address, so the name goes where a server
            # looks for it: the Host header, and TLS's server name (SNI), which is also the name
            # the certificate is verified for (httpcore's `sni_hostname` request extension).
            headers = {**headers, "host": target.host_header}
        extensions = {"sni_hostname": target.host} if by_name and target.scheme == "https" else {}
        # A connection kept open would serve the next callback to the same address whatever its
        # name, without a TLS handshake for that name: every callback has a connection of its own.
        headers["connection"] = "close"
        deadline = time.monotonic() + timeout
        failure: Exception | None = None
        for address in addresses:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                response = self._client().post(
                    target.url_for(address), content=body, headers=headers, timeout=left, extensions=extensions
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent: the next address
                failure = exc
                continue
            except httpx.HTTPError as exc:
                raise CallbackDeliveryError(f"callback to {target.host} failed: {type(exc).__name__}") from None
            if not 200 <= response.status_code < 300:
                raise CallbackDeliveryError(f"callback to {target.host} answered HTTP {response.status_code}")
            return response.status_code
        reason = type(failure).__name__ if failure is not None else "ConnectTimeout"
        raise CallbackDeliveryError(f"callback to {target.host} failed: {reason}")

    def _signature_headers(self, job: Job, body: str) -> dict[str, str]:
        from standardwebhooks import Webhook

        name = self._settings.callback_secret_name(job.account)
        try:
            secret = self._secrets.get_json(name)["signing_secret"]
        except KeyError:
            raise CallbackDeliveryError(
                f"no callback signing secret is configured for account {job.account!r} (secret {name!r})"
            ) from None
        message_id = f"{job.job_id}:{job.status.value}"
        timestamp = datetime.now(UTC)
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
        }

    def _client(self) -> "httpx.Client":
        if self._http is None:
            import httpx

            # No proxy from the environment: the connection goes to the address that was checked.
            self._http = httpx.Client(follow_redirects=False, trust_env=False)
        return self._http
