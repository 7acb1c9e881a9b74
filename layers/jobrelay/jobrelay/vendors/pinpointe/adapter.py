"""Pinpointe's side of a job (the VendorJobs port): start an async export, read its status, stream
its result file into our result store.

Pinpointe calls us back when a job ends (VENDORS.md 1.5), so the wait is a webhook with polling as
the fallback. The webhook's notice is only a hint: `poll` cross-checks it with AsyncJobStatus.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator

from jobrelay.domain.errors import VendorJobFailed, VendorProtocolError
from jobrelay.domain.job import Job, JobResult, Progress, utcnow
from jobrelay.operations import OPERATIONS, stored_params
from jobrelay.ports import CollectOutcome, PollOutcome, ResultStore, StartOutcome, VendorState, WaitMode
from jobrelay.vendors.http import VendorAccount, shared_http_client
from jobrelay.vendors.pinpointe.api import (
    ASYNC_METHODS,
    RESULT_CONTENT_TYPE,
    AsyncMethod,
    JobEntry,
    WebhookNotice,
    async_details,
    find_job,
    parse_webhook,
)
from jobrelay.vendors.pinpointe.client import ENDPOINT_PATH, JobsNotFound, PinpointeClient, ResultLinkPolicy

__all__ = ["PinpointeAccount", "PinpointeJobs", "WebhookNotice", "parse_webhook", "pinpointe_jobs"]

log = logging.getLogger(__name__)

RESULT_FILE_NAME = "result.json"


class PinpointeAccount(VendorAccount):
    """One Pinpointe account, as stored in its secret (one secret per account, DESIGN.md Security).
    Its `allow_http` (declared by VendorAccount, before base_url, whose check reads it) also allows
    http result links."""

    vendor_title = "Pinpointe"

    base_url: str = Field(description="the account's host, e.g. https://na01.mypinpointe.com")
    username: Annotated[str, Field(min_length=1)]
    usertoken: Annotated[SecretStr, Field(min_length=1)]
    result_hosts: Annotated[list[str], Field(min_length=1)] = ["*.mypinpointe.com", "*.pinpointe.com"]

    @field_validator("base_url")
    @classmethod
    def _https_host(cls, value: str, info: ValidationInfo) -> str:
        # The Pinpointe UI shows the full endpoint path; accept it as well as the bare host.
        url = value.strip().rstrip("/").removesuffix(ENDPOINT_PATH)
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        schemes = ("https", "http") if info.data.get("allow_http") else ("https",)
        if parsed is None or parsed.scheme not in schemes or not parsed.host:
            raise ValueError(
                "must be an https URL such as https://na01.mypinpointe.com (http only with allow_http, "
                "which is meant for the local sandbox)"
            )
        return url


class PinpointeJobs:
    """The VendorJobs port for one Pinpointe account."""

    wait_mode = WaitMode.WEBHOOK

    def __init__(
        self,
        account: PinpointeAccount,
        *,
        http: httpx.Client | None = None,
        now: Callable[[], datetime] = utcnow,
        not_found_grace_seconds: int,
    ):
        self._client = PinpointeClient(
            account.base_url,
            account.username,
            account.usertoken,
            http=http or httpx.Client(),
            timeout=account.timeout,
        )
        self._links = ResultLinkPolicy(tuple(account.result_hosts), account.allow_http)
        self._now = now
        self._not_found_grace = timedelta(seconds=not_found_grace_seconds)

    def start(self, job: Job, webhook_url: str | None) -> StartOutcome:
        if not webhook_url:
            raise ValueError("Pinpointe's async calls need a webhook URL to notify (VENDORS.md 1.5)")
        method = _async_method(job.operation)
        details = async_details(stored_params(job, OPERATIONS[job.operation].params_model), webhook_url)
        started = self._client.start_async(method, details)
        return StartOutcome(
            vendor_ref={
                "jobid": started.jobid,
                "requestmethod": method.requestmethod,
                "started_at": self._now().isoformat(),
            },
            note=f"Pinpointe job {started.jobid} started ({method.requestmethod})",
        )

    def poll(self, job: Job) -> PollOutcome:
        jobid = _ref(job, "jobid")
        found = self._client.job_status([jobid])
        entry = None if isinstance(found, JobsNotFound) else find_job(found, jobid)
        if entry is None:
            return self._not_listed(job, jobid)
        outcome = _outcome(entry, jobid)
        log.info("Pinpointe job %s is %s (status %r)", jobid, outcome.state, entry.status)
        return outcome

    def collect(self, job: Job, results: ResultStore) -> CollectOutcome:
        jobid = _ref(job, "jobid")
        link = job.vendor_ref.get("result_url") or job.vendor_ref.get("webhook_result_url")
        if not link:
            raise VendorProtocolError(f"Pinpointe gave no result link for job {jobid}")
        with self._client.download(link, self._links) as chunks:
            stored = results.put_stream(job.job_id, RESULT_FILE_NAME, chunks, RESULT_CONTENT_TYPE)
        log.info("Pinpointe job %s: result stored, %d bytes", jobid, stored.size)
        return CollectOutcome(
            result=JobResult(s3_uri=stored.s3_uri, size=stored.size, sha256=stored.sha256, files=[stored])
        )

    def cancel(self, job: Job) -> bool:
        return False  # Pinpointe documents no way to cancel an async job

    def _not_listed(self, job: Job, jobid: str) -> PollOutcome:
        """Pinpointe does not list our job: expected for a moment after the start, fatal after."""
        age = self._now() - datetime.fromisoformat(_ref(job, "started_at"))
        seconds = int(age.total_seconds())
        if age > self._not_found_grace:
            raise VendorJobFailed(f"Pinpointe no longer knows job {jobid} ({seconds} s after it was started)")
        log.info("Pinpointe does not list job %s yet (%d s after its start)", jobid, seconds)
        return PollOutcome(
            state=VendorState.RUNNING,
            progress=Progress(note=f"Pinpointe does not list job {jobid} yet ({seconds} s after its start)"),
        )


def _outcome(entry: JobEntry, jobid: str) -> PollOutcome:
    state = entry.state
    if state is VendorState.DONE:
        updates = {"result_url": entry.result_url} if entry.result_url else {}
        return PollOutcome(state=state, raw_status=entry.status, vendor_ref_updates=updates)
    if state is VendorState.FAILED:
        reason = entry.errormessage or f"Pinpointe reports job {jobid} as {entry.status!r}"
        return PollOutcome(state=state, raw_status=entry.status, message=reason)
    return PollOutcome(state=state, raw_status=entry.status)


def _async_method(operation: str) -> AsyncMethod:
    try:
        return ASYNC_METHODS[operation]
    except KeyError:
        raise ValueError(f"{operation!r} is not a Pinpointe operation") from None



def _ref(job: Job, key: str) -> str:
    value = job.vendor_ref.get(key)
    if not value:
        raise VendorProtocolError(f"job {job.job_id} has no Pinpointe {key} in its vendor reference")
    return str(value)



def pinpointe_jobs(secret: dict[str, Any], *, not_found_grace_seconds: int) -> PinpointeJobs:
    """The adapter for the account whose secret is `secret` (raises VendorRejected if it is invalid)."""
    return PinpointeJobs(
        PinpointeAccount.from_secret(secret),
        http=shared_http_client(),
        not_found_grace_seconds=not_found_grace_seconds,
    )
