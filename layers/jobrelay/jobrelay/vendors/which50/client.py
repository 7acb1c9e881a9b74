"""HTTP to Which50: the account secret, its API key, and the calls of a contact-list import
(docs/VENDORS.md 3.3, 3.4).

Every outcome leaves here either as a parsed answer or as one of the step errors the state machine
understands (docs/DESIGN.md, State machine): VendorTransientError is retried; VendorRejected and
VendorProtocolError end the job with a readable reason; VendorOutcomeUnknown (creating an import
job that may or may not exist now) ends it without sending the call again. Logs carry call names
and HTTP statuses, never a header or a body; errors carry a redacted excerpt of an answer.
"""

import json
import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from pydantic import Field, SecretStr, field_validator

from jobrelay.domain.errors import VendorOutcomeUnknown, VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.vendors.http import StatusCheck, VendorAccount, json_body, said, transport_errors_as_transient
from jobrelay.vendors.redaction import excerpt
from jobrelay.vendors.which50.api import (
    AUTH_HEADER,
    AUTH_SCHEME,
    DEFAULT_BASE_URL,
    FIELDS_PATH,
    IMPORT_JOB_PATH,
    IMPORT_PATH,
    LIST_PATH,
    MAX_STAGE_CONCURRENCY,
    QUERY_LIST_SEPARATOR,
    REQUEST_CONTENT_TYPE,
    RUN_PATH,
    STAGE_CONCURRENCY_DEFAULT,
    ContactList,
    ImportJob,
    SchemaField,
    batch_warnings,
    read_fields,
    read_model,
    vendor_message,
)

log = logging.getLogger(__name__)


class Which50Account(VendorAccount):
    """One Which50 account, as stored in its secret (jobrelay/which50/<account>)."""

    vendor_title = "Which50"

    base_url: str = Field(default=DEFAULT_BASE_URL, description="the API's root, e.g. https://app.which50.com/Which50API")
    api_key: Annotated[SecretStr, Field(min_length=1)]
    auth_header: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9-]+$")] = AUTH_HEADER
    auth_scheme: Annotated[str, Field(max_length=40, pattern=r"^[A-Za-z0-9_-]*$")] = AUTH_SCHEME
    read_timeout_seconds: Annotated[float, Field(gt=0)] = 120.0  # also the write timeout: a batch is up to 25 MB
    stage_concurrency: Annotated[int, Field(ge=1, le=MAX_STAGE_CONCURRENCY)] = STAGE_CONCURRENCY_DEFAULT  # see api.py

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.strip().rstrip("/")

    def authenticator(self) -> httpx.Auth:
        return ApiKeyAuth(self.auth_header, self.auth_scheme, self.api_key)


class ApiKeyAuth(httpx.Auth):
    """The account's API key on every request (docs/VENDORS.md 3.2: the assumed scheme, see api.py).
    An httpx.Auth, so the key is added at send time and never sits in a headers dict we build."""

    def __init__(self, header: str, scheme: str, key: SecretStr):
        self._header = header
        self._scheme = scheme
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        key = self._key.get_secret_value()
        request.headers[self._header] = f"{self._scheme} {key}" if self._scheme else key
        yield request


class Which50Client:
    def __init__(self, account: Which50Account, *, http: httpx.Client):
        self._base_url = account.base_url
        self._auth = account.authenticator()
        self._timeout = account.timeout
        self._http = http

    def contact_list(self, list_id: int) -> ContactList:
        body = self._call("GetContactList", "GET", LIST_PATH.format(list_id=list_id), subject=f"contact list {list_id}")
        return read_model(ContactList, body, "GetContactList")

    def fields(self, list_id: int) -> list[SchemaField]:
        return read_fields(self._call("GetFields", "GET", FIELDS_PATH.format(list_id=list_id), subject=f"contact list {list_id}"))

    def create_import(self, list_id: int, field_names: list[str]) -> ImportJob:
        """Create an import job: sent once (see api.py, ASSUMPTIONS). No answer, or one we cannot
        read, may still mean Which50 created it: VendorOutcomeUnknown, never a retry. An error
        answer (5xx, 429) means it did not: VendorTransientError, retried."""
        body = json.dumps({"FieldNames": field_names}).encode()
        path = IMPORT_PATH.format(list_id=list_id)
        may_exist = (
            f"an import job may have been created on Which50 contact list {list_id}; it is never run, so it "
            "imports nothing, and it is not sent again"
        )
        try:
            answer = self._send("CreateImportJob", "POST", path, content=body, subject=f"contact list {list_id}")
        except VendorTransientError as failed:
            if failed.vendor_answered:
                raise
            raise VendorOutcomeUnknown(f"Which50 CreateImportJob got no answer ({failed}): {may_exist}") from None
        try:
            return ImportJob.from_body(json_body(answer, "Which50", "CreateImportJob"), "CreateImportJob")
        except VendorProtocolError as unreadable:
            raise VendorOutcomeUnknown(
                f"{unreadable}: {may_exist}", answer=unreadable.answer or excerpt(answer.content)
            ) from None

    def add_batch(self, list_id: int, job_id: int, body: bytes) -> list[tuple[int, list[str]]]:
        """Post one batch; the per-contact validation warnings Which50 echoes (position, warnings)."""
        path = IMPORT_JOB_PATH.format(list_id=list_id, job_id=job_id)
        answer = self._send("AddBatch", "POST", path, content=body, subject=f"import job {job_id} of contact list {list_id}")
        return batch_warnings(answer.content)

    def run(self, list_id: int, job_id: int, *, custom_events: list[str] | None, match: list[str] | None) -> ImportJob:
        query = {}
        if custom_events:
            query["customevents"] = QUERY_LIST_SEPARATOR.join(custom_events)
        if match:
            query["match"] = QUERY_LIST_SEPARATOR.join(match)
        path = RUN_PATH.format(list_id=list_id, job_id=job_id)
        body = self._call(
            "RunImportJob", "POST", path, content=b"", params=query, subject=f"import job {job_id} of contact list {list_id}"
        )
        return ImportJob.from_body(body, "RunImportJob")

    def import_job(self, list_id: int, job_id: int) -> ImportJob:
        path = IMPORT_JOB_PATH.format(list_id=list_id, job_id=job_id)
        body = self._call("GetImportJob", "GET", path, subject=f"import job {job_id} of contact list {list_id}")
        return ImportJob.from_body(body, "GetImportJob")

    # --- transport -------------------------------------------------------------------------------

    def _call(self, call: str, method: str, path: str, **kwargs: Any) -> Any:
        return json_body(self._send(call, method, path, **kwargs), "Which50", call)

    def _send(
        self,
        call: str,
        method: str,
        path: str,
        *,
        subject: str,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {"Accept": REQUEST_CONTENT_TYPE}
        if content is not None:
            headers["Content-Type"] = REQUEST_CONTENT_TYPE
        with transport_errors_as_transient(f"Which50 {call}"):
            answer = self._http.request(
                method,
                self._base_url + path,
                content=content,
                params=params,
                headers=headers,
                auth=self._auth,
                timeout=self._timeout,
            )
        log.info("Which50 %s answered HTTP %s", call, answer.status_code)
        _Statuses(subject).raise_for_status(answer, call)
        return answer


@dataclass(frozen=True)
class _Statuses(StatusCheck):
    """What Which50's error statuses mean for a call on `subject` (its error bodies: api.vendor_message)."""

    vendor = "Which50"
    subject: str
    reason = staticmethod(vendor_message)

    def refusal(self, status: int, call: str, reason: str | None) -> VendorRejected:
        if status == 401:
            return VendorRejected(
                f"Which50 refused the account's credentials on {call} (HTTP 401{said(reason)}); check api_key and the auth "
                "settings in the account secret"
            )
        if status == 403:
            return VendorRejected(
                f"Which50 denied {call} on {self.subject} (HTTP 403{said(reason)}): the API key lacks the permission"
            )
        if status == 404:
            return VendorRejected(f"Which50 has no {self.subject} (HTTP 404 on {call}{said(reason)})")
        return VendorRejected(f"Which50 refused {call} on {self.subject} (HTTP {status}{said(reason)})")
