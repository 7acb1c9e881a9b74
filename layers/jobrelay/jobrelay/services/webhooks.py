"""Receiving a vendor's completion webhook on a job's capability URL.

The URL is the whole credential (docs/DESIGN.md, Security): a 256-bit token per job, of which only the
SHA-256 is stored; it is compared in constant time, an unknown job and a wrong token get the same
404, and the token never reaches a log line. The notice is kept (raw, in S3) and only wakes the
job: the poll that follows cross-checks it with the vendor rather than trusting the POST
(docs/VENDORS.md 1.7).
"""

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobrelay.api.errors import MAX_WEBHOOK_BYTES
from jobrelay.domain.errors import JobNotFound, ServiceError
from jobrelay.domain.ids import plausible_job_id
from jobrelay.domain.job import Job, JobPatch, TimelineEvent, WebhookNotice, utcnow
from jobrelay.domain.status import JobStatus
from jobrelay.domain.vendor_calls import BodySummary, VendorCall
from jobrelay.ports import JobStore, VendorCallLog, Workflow
from jobrelay.telemetry import Metrics

logger = logging.getLogger(__name__)

WAITING = frozenset({JobStatus.STARTING, JobStatus.RUNNING})


class PayloadTooLarge(ServiceError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


@dataclass(frozen=True)
class WebhookAck:
    outcome: str  # "resumed" | "recorded" | "duplicate" | "ignored"

    def body(self) -> dict[str, Any]:
        return {"received": True, "outcome": self.outcome}


class WebhookReceiver:
    def __init__(
        self,
        store: JobStore,
        workflow: Workflow,
        save_raw: Callable[[str, bytes], str],
        parse_notice: Callable[[str, bytes], WebhookNotice],
        now: Callable[[], datetime] = utcnow,
        calls: VendorCallLog | None = None,
        metrics: Metrics | None = None,
    ):
        """`save_raw(key, body) -> s3 uri` keeps the payload; `parse_notice(vendor, body)` reads
        the vendor's notice (jobid, status, result_url, each maybe missing), never raising.
        `calls`: the vendor call log, where every webhook a job received is kept (direction "in")."""
        self._store = store
        self._workflow = workflow
        self._save_raw = save_raw
        self._parse_notice = parse_notice
        self._now = now
        self._calls = calls
        self._metrics = metrics or Metrics()

    def receive(self, vendor: str, job_id: str, token: str, body: bytes) -> WebhookAck:
        """Counted (Webhooks, by vendor and outcome): accepted (resumed, recorded), ignored (late,
        early, a duplicate) or refused (too large, an unknown job or token)."""
        try:
            ack = self._receive(vendor, job_id, token, body)
        except ServiceError:
            self._metrics.webhook(vendor, "refused")
            raise
        self._metrics.webhook(vendor, "accepted" if ack.outcome in ("resumed", "recorded") else "ignored")
        return ack

    def _receive(self, vendor: str, job_id: str, token: str, body: bytes) -> WebhookAck:
        if len(body) > MAX_WEBHOOK_BYTES:  # the one check of the size: refused before any lookup
            raise PayloadTooLarge(f"request bodies are limited to {MAX_WEBHOOK_BYTES} bytes")
        job = self._authenticate(vendor, job_id, token)
        # Only a webhook on a job's own capability URL is logged: nobody else can write to its log.
        arrived_at, started = self._now(), time.monotonic()
        ack = self._act_on(vendor, job, body)
        self._log_webhook(vendor, job_id, body, ack, arrived_at, started)
        return ack

    def _act_on(self, vendor: str, job: Job, body: bytes) -> WebhookAck:
        job_id = job.job_id
        if job.status not in WAITING:
            # Late (the job ended) or early (not started yet): harmless, acknowledged, noted.
            self._store.append_event(
                job_id, TimelineEvent(at=self._now(), event="webhook_ignored", detail={"status": job.status.value})
            )
            return WebhookAck("ignored")
        if job.webhook_notice is not None and job.webhook_pending:
            return WebhookAck("duplicate")  # the previous notice has not been acted on yet

        received_at = self._now()
        raw_uri = self._save_raw(f"webhooks/{job_id}/{received_at.strftime('%Y%m%dT%H%M%S%fZ')}.json", body)
        notice = self._parse_notice(vendor, body).model_copy(update={"raw_s3_uri": raw_uri})
        written = self._store.update(
            job_id,
            JobPatch(webhook_received_at=received_at, webhook_notice=notice),
            # Not the result link: it is a capability URL, and the notice is only a hint.
            TimelineEvent(
                at=received_at, event="webhook_received", detail=notice.model_dump(exclude={"result_url"}, exclude_none=True)
            ),
        )
        if written is None:  # ended between our read and our write
            return WebhookAck("ignored")
        if written.task_token and self._workflow.resume(written.task_token, {"via": "webhook"}):
            return WebhookAck("resumed")
        # No wait is parked right now: the next WaitForWebhook sees this notice and resumes at once.
        return WebhookAck("recorded")

    def _log_webhook(self, vendor: str, job_id: str, body: bytes, ack: WebhookAck, arrived_at: datetime, started: float) -> None:
        if self._calls is None:
            return
        from jobrelay.services.vendor_calls import Recording, keep
        from jobrelay.vendors.redaction import MASK, excerpt

        answer = json.dumps(ack.body()).encode()
        try:
            call = VendorCall(
                at=arrived_at,
                direction="in",
                step="webhook",
                method="POST",
                path=f"/webhooks/{vendor}/{job_id}/{MASK}",  # the token is the credential: never kept
                status=200,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
                request=BodySummary(size=len(body), sha256=hashlib.sha256(body).hexdigest(), excerpt=excerpt(body)),
                response=BodySummary(
                    size=len(answer),
                    sha256=hashlib.sha256(answer).hexdigest(),
                    content_type="application/json",
                    excerpt=excerpt(answer),
                ),
            )
        except Exception as exc:  # the log is an aid: the webhook was acted on all the same
            logger.warning("the webhook of job %s was not logged (%s)", job_id, type(exc).__name__)
            return
        keep(call, Recording(job_id, "webhook", self._calls))

    def _authenticate(self, vendor: str, job_id: str, token: str) -> Job:
        job = self._store.get(job_id) if plausible_job_id(job_id) and _plausible_token(token) else None
        expected = job.webhook_token_sha256 if job and job.vendor == vendor else None
        presented = hashlib.sha256(token.encode()).hexdigest()
        # compare_digest even when there is nothing to compare against, so timing says nothing.
        matches = hmac.compare_digest(presented, expected or "0" * 64)
        if job is None or expected is None or not matches:
            raise JobNotFound("not found")
        return job


def _plausible_token(value: str) -> bool:
    return 0 < len(value) <= 128 and all(c.isalnum() or c in "_-" for c in value)
