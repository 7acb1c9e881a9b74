"""HTTP to MyPreferences: the five bulk-import calls (docs/VENDORS.md 2.3).

Every outcome leaves here either as a parsed answer or as one of the step errors the state machine
understands (docs/DESIGN.md, State machine): VendorTransientError is retried; VendorRejected and
VendorProtocolError end the job with a readable reason (a protocol error carries a redacted excerpt
of the answer); VendorOutcomeUnknown, for an Initiate that may have opened an import we cannot
address, is never retried (api.py, ASSUMPTIONS). The account's auth flow signs each request
(auth.py). Logs carry call names and HTTP statuses, never a URL (the import's access token is in
the path), a header or a body.
"""

import json
import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import httpx

from jobrelay.domain.errors import VendorOutcomeUnknown, VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.vendors.http import StatusCheck, json_body, said, transport_errors_as_transient
from jobrelay.vendors.mypreferences.api import (
    EXCEPTIONS_PATH,
    EXECUTE_PATH,
    IMPORT_PATH,
    IMPORT_TOKEN_PATH,
    REQUEST_CONTENT_TYPE,
    BulkImportStatus,
    ExceptionsPage,
    InitiateRequest,
    mentions_size,
    vendor_message,
)
from jobrelay.vendors.mypreferences.limits import STAGE_BYTES_MAX
from jobrelay.vendors.redaction import excerpt, register_secret

log = logging.getLogger(__name__)

INITIATE = "Initiate"


class MyPreferencesClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        *,
        auth: httpx.Auth,
        http: httpx.Client,
        timeout: httpx.Timeout,
    ):
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._auth = auth
        self._http = http
        self._timeout = timeout
        self._statuses = _Statuses(self._client_id)

    def initiate(self, request: InitiateRequest) -> BulkImportStatus:
        """Open an import. Initiate is never sent twice for one answer we could not use: see
        `_outcome_unknown`."""
        body = json.dumps(request.wire()).encode()
        watch = _SendWatch(self._auth)
        try:
            answer = self._call(INITIATE, "POST", IMPORT_PATH, content=body, auth=watch)
        except VendorTransientError as lost:
            if not lost.may_have_arrived or not watch.sent:
                raise  # an error answer, or Initiate never left us: nothing was opened
            why = type(lost.__cause__).__name__ if lost.__cause__ else "no answer"
            raise _outcome_unknown(f"got no answer ({why})", None) from lost
        except VendorProtocolError as unreadable:  # a body that is not JSON
            if not watch.sent:  # the OAuth token endpoint's answer, before Initiate went out
                raise
            raise _outcome_unknown("answered with a body that is not JSON", unreadable.answer) from None
        try:
            status = BulkImportStatus.from_body(answer, INITIATE)
        except VendorProtocolError as unreadable:
            raise _outcome_unknown("answered with something that is not an import status", unreadable.answer) from None
        if status.AccessToken is None:
            raise _outcome_unknown("answered without an AccessToken", excerpt(answer))
        register_secret(str(status.AccessToken))  # a per-import credential: masked in any excerpt from now on
        return status

    def stage(self, access_token: int, body: bytes) -> BulkImportStatus:
        return self._status_call("Stage", "POST", IMPORT_TOKEN_PATH, access_token, content=body)

    def execute(self, access_token: int) -> BulkImportStatus:
        return self._status_call("Execute", "POST", EXECUTE_PATH, access_token, content=b"")

    def status(self, access_token: int) -> BulkImportStatus:
        return self._status_call("Retrieve status", "GET", IMPORT_TOKEN_PATH, access_token)

    def exceptions(self, access_token: int, *, limit: int, offset: int) -> ExceptionsPage:
        body = self._call("Retrieve exceptions", "GET", EXCEPTIONS_PATH, access_token, params={"limit": limit, "offset": offset})
        return ExceptionsPage.from_body(body)

    def _status_call(
        self, call: str, method: str, path: str, access_token: int | None = None, *, content: bytes | None = None
    ) -> BulkImportStatus:
        return BulkImportStatus.from_body(self._call(call, method, path, access_token, content=content), call)

    def _call(
        self,
        call: str,
        method: str,
        path: str,
        access_token: int | None = None,
        *,
        content: bytes | None = None,
        params: dict[str, int] | None = None,
        auth: httpx.Auth | None = None,
    ) -> Any:
        url = self._base_url + path.format(client_id=self._client_id, access_token=access_token)
        headers = {"Accept": REQUEST_CONTENT_TYPE}
        if content is not None:
            headers["Content-Type"] = REQUEST_CONTENT_TYPE
        with transport_errors_as_transient(f"MyPreferences {call}"):
            answer = self._http.request(
                method, url, content=content, params=params, headers=headers, auth=auth or self._auth, timeout=self._timeout
            )
        log.info("MyPreferences %s answered HTTP %s", call, answer.status_code)
        self._statuses.raise_for_status(answer, call)
        return json_body(answer, "MyPreferences", call)


@dataclass(frozen=True)
class _Statuses(StatusCheck):
    """What MyPreferences' error statuses mean (its error bodies: api.vendor_message)."""

    vendor = "MyPreferences"
    client_id: str
    reason = staticmethod(vendor_message)

    def refusal(self, status: int, call: str, reason: str | None) -> VendorRejected:
        if status == 401 and call == INITIATE:
            return VendorRejected(
                f"MyPreferences rejected the account's credentials on {call} (HTTP 401{said(reason)}); "
                "check client_id, user_id and the auth settings in the account secret"
            )
        if status == 401:
            return VendorRejected(
                f"MyPreferences refused the import's access token on {call} (HTTP 401{said(reason)}): it expired or is invalid"
            )
        if status == 413 or (status == 400 and mentions_size(reason)):
            return VendorRejected(
                f"stage request too large for MyPreferences on {call} (HTTP {status}{said(reason)}); "
                f"lower batch_bytes (MyPreferences takes at most {STAGE_BYTES_MAX:,} bytes per request)"
            )
        if status == 404:
            return VendorRejected(
                f"MyPreferences {call} answered HTTP 404{said(reason)}; check the clientId {self.client_id!r} "
                "and the base_url in the account secret"
            )
        return super().refusal(status, call, reason)


def _outcome_unknown(what: str, answer: str | None) -> VendorOutcomeUnknown:
    return VendorOutcomeUnknown(
        f"MyPreferences {INITIATE} {what}: an import may have been opened at MyPreferences. It is never executed, "
        "so it imports nothing and expires with its access token, but it counts against the account's daily import "
        f"quota. {INITIATE} is not sent again; submit the job again once you have checked the quota",
        answer=answer,
    )


class _SendWatch(httpx.Auth):
    """Wraps the account's auth flow for one call and notes whether the call's own request went out
    (the OAuth flow may send a token request first: its failures never reached the call)."""

    def __init__(self, inner: httpx.Auth):
        self._inner = inner
        self.requires_request_body = inner.requires_request_body
        self.requires_response_body = inner.requires_response_body
        self.sent = False

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        flow = self._inner.auth_flow(request)
        outgoing = next(flow)
        while True:
            if outgoing is request:
                self.sent = True
            response = yield outgoing
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return
