"""Errors, in two families, and the errors of the ports' contracts.

Step errors cross the Lambda/Step Functions boundary: the state machine's Retry and Catch match on
the exception's class name (the Lambda payload's `errorType`), so these names are part of the
contract with statemachines/job.asl.json and must not be renamed.

Service errors are what the API turns into 4xx answers.

A port's own errors (RecordsFileChanged, IdempotencyKeyTaken) are raised by its adapter for the
service that uses the port to handle: they cross neither boundary.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobrelay.domain.idempotency import IdempotencyClaim


class StepError(Exception):
    """Base of errors a step raises on purpose. `code` is the job error code users see."""

    code = "INTERNAL"


class VendorTransientError(StepError):
    """The vendor answered 5xx/429, timed out or dropped the connection: retried with backoff.

    `vendor_answered` tells the two apart where it matters (a bulk import's stage request): an
    error answer means the vendor did not take the request; a timeout or a dropped connection means
    nobody knows whether it did."""

    code = "VENDOR_UNAVAILABLE"

    def __init__(self, message: str, *, vendor_answered: bool = True, request_sent: bool = True):
        super().__init__(message)
        self.vendor_answered = vendor_answered
        self.request_sent = request_sent  # False: no connection was made, so nothing left us

    @property
    def may_have_arrived(self) -> bool:
        """Whether the vendor may have received the request although we never heard back."""
        return self.request_sent and not self.vendor_answered


class VendorUnavailable(StepError):
    """A transient vendor error that did not pass: the same request failed every attempt its budget
    allowed (jobrelay.domain.request_retries), or an import made no progress for too long. Those
    retries were made inside the step, so the state machine does not retry this one: it fails the
    job. Deliberately not matched by any Retry of statemachines/job.asl.json."""

    code = "VENDOR_UNAVAILABLE"


class VendorRejected(StepError):
    """The vendor refused the request for good (bad credentials, invalid params): not retried."""

    code = "VENDOR_REJECTED"


class VendorJobFailed(StepError):
    """The vendor ran the job and reports that it failed."""

    code = "VENDOR_FAILED"


class VendorProtocolError(StepError):
    """The vendor answered something we cannot read even defensively (malformed body), or a result
    link that fails our checks. Retried a few times (bodies are sometimes cut), then fails the job.

    `answer` is a bounded, redacted excerpt of what the vendor said (jobrelay.vendors.redaction), put
    on the job's timeline so an operator sees it; never the raw body."""

    code = "VENDOR_PROTOCOL"

    def __init__(self, message: str, *, answer: str | None = None):
        super().__init__(message)
        self.answer = answer


class VendorOutcomeUnknown(StepError):
    """A call that may have created something at the vendor (an export started, an import opened)
    got no answer, or one we cannot read. Sending it again could start the work twice, so it is
    never retried: the job fails (code VENDOR_PROTOCOL) saying what may exist at the vendor.
    Deliberately not matched by any Retry of statemachines/job.asl.json."""

    code = "VENDOR_PROTOCOL"

    def __init__(self, message: str, *, answer: str | None = None):
        super().__init__(message)
        self.answer = answer


class JobDeadlineExceeded(StepError):
    """The job's overall deadline passed before the vendor finished."""

    code = "DEADLINE_EXCEEDED"


class InvalidSource(StepError):
    """The records file cannot be imported: not of its declared format, unreadable, or without a
    single valid record."""

    code = "INVALID_SOURCE"


class CallbackDeliveryError(StepError):
    """The submitter's callback URL did not accept the notice: retried, then recorded, never fatal."""

    code = "CALLBACK_FAILED"


STEP_ERRORS: dict[str, type[StepError]] = {
    cls.__name__: cls
    for cls in (
        VendorTransientError,
        VendorUnavailable,
        VendorRejected,
        VendorJobFailed,
        VendorProtocolError,
        VendorOutcomeUnknown,
        JobDeadlineExceeded,
        InvalidSource,
        CallbackDeliveryError,
    )
}


class RecordsFileChanged(Exception):
    """A records file is no longer the version a bulk import started reading: a RecordsSource read
    given `if_match` (the ETag the import started with) found it replaced since. The bulk-import
    service ends the import with InvalidSource."""


class IdempotencyKeyTaken(Exception):
    """JobStore.create was given an Idempotency-Key's claim while a live claim holds that key
    (jobrelay.domain.idempotency): nothing was written; `claim` is the one that holds it."""

    def __init__(self, claim: "IdempotencyClaim"):
        super().__init__(f"the Idempotency-Key names job {claim.job_id}")
        self.claim = claim


class ServiceError(Exception):
    """An answer for the API: HTTP status, stable code, readable message, optional details."""

    status = 400
    code = "BAD_REQUEST"
    retry_after: int | None = None  # seconds: sent as Retry-After, for an answer that asking again later changes

    def __init__(self, message: str, details: object | None = None):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(ServiceError):
    status = 422
    code = "INVALID_REQUEST"


class JobNotFound(ServiceError):
    status = 404
    code = "NOT_FOUND"


class JobConflict(ServiceError):
    status = 409
    code = "CONFLICT"


class IdempotencyKeyReused(JobConflict):
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInProgress(JobConflict):
    """The first request with this Idempotency-Key is still creating its job: ask again after
    `retry_after` seconds (a submission takes well under one) to get that job."""

    code = "IDEMPOTENCY_IN_PROGRESS"
    retry_after = 1


class ScheduleNotFound(ServiceError):
    status = 404
    code = "NOT_FOUND"


class ScheduleExists(ServiceError):
    status = 409
    code = "SCHEDULE_EXISTS"


class JobEndedMeanwhile(Exception):
    """The job ended (a cancel from the API, the sweeper) while a step was working on it: the step
    stops and leaves the job as it is. Not a step error: the execution ends quietly."""
