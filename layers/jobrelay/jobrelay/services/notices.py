"""Telling the world a job ended: an EventBridge event, and a signed callback to the submitter.

Both are at-least-once. Events carry (job_id, status, version) and callbacks a stable `webhook-id`
of "<job_id>:<status>", so receivers can drop the duplicates a retried step may produce.
Callbacks are signed per the Standard Webhooks spec (https://www.standardwebhooks.com) with the
account's signing secret; the `standardwebhooks` package does the signing.
"""

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobrelay.domain.errors import CallbackDeliveryError
from jobrelay.domain.job import Job
from jobrelay.domain.status import JobStatus
from jobrelay.ports import EventPublisher, SecretStore
from jobrelay.settings import Settings

if TYPE_CHECKING:
    import httpx

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


class Notices:
    def __init__(
        self, events: EventPublisher, secrets: SecretStore, settings: Settings, http_client: "httpx.Client | None" = None
    ):
        self._events = events
        self._secrets = secrets
        self._settings = settings
        self._http = http_client  # an httpx.Client; built on first use (httpx is slow to import)

    def announce(self, job: Job) -> None:
        self._events.publish(DETAIL_TYPES[job.status], job_summary(job))

    def deliver_callback(self, job: Job, timeout: float = CALLBACK_TIMEOUT_SECONDS) -> int:
        """POST the signed summary to the job's callback_url; returns the HTTP status. Raises
        CallbackDeliveryError for anything but a 2xx, so the state machine retries with backoff."""
        if not job.callback_url:
            raise ValueError("the job has no callback_url")
        body = json.dumps(job_summary(job), separators=(",", ":"))
        headers = {"content-type": "application/json", **self._signature_headers(job, body)}
        import httpx

        try:
            response = self._client().post(job.callback_url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise CallbackDeliveryError(f"callback to {_host(job.callback_url)} failed: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise CallbackDeliveryError(f"callback to {_host(job.callback_url)} answered HTTP {response.status_code}")
        return response.status_code

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

            self._http = httpx.Client(follow_redirects=False)
        return self._http


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or "?"
