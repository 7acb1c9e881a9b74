"""HTTP to MyPreferences: the five bulk-import calls (VENDORS.md 2.3).

Every outcome leaves here either as a parsed answer or as one of the step errors the state machine
understands (DESIGN.md, State machine): VendorTransientError is retried; VendorRejected and
VendorProtocolError end the job with a readable reason. The account's auth flow signs each request
(auth.py). Logs carry call names and HTTP statuses, never a URL (the import's access token is in
the path), a header or a body.
"""

import json
import logging
from typing import Any

import httpx

from jobrelay.domain.errors import VendorProtocolError, VendorRejected, VendorTransientError
from jobrelay.vendors.http import is_transient, json_body, transport_errors_as_transient
from jobrelay.vendors.mypreferences.api import (
    EXCEPTIONS_PATH,
    EXECUTE_PATH,
    IMPORT_PATH,
    IMPORT_TOKEN_PATH,
    REQUEST_CONTENT_TYPE,
    STAGE_BYTES_MAX,
    BulkImportStatus,
    ExceptionsPage,
    InitiateRequest,
    mentions_size,
    vendor_message,
)

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

    def initiate(self, request: InitiateRequest) -> BulkImportStatus:
        body = json.dumps(request.wire()).encode()
        status = self._status_call(INITIATE, "POST", IMPORT_PATH, content=body)
        if status.AccessToken is None:
            raise VendorProtocolError("MyPreferences' answer to Initiate carries no AccessToken")
        return status

    def stage(self, access_token: int, body: bytes) -> BulkImportStatus:
        return self._status_call("Stage", "POST", IMPORT_TOKEN_PATH, access_token, content=body)

    def execute(self, access_token: int) -> BulkImportStatus:
        return self._status_call("Execute", "POST", EXECUTE_PATH, access_token, content=b"")

    def status(self, access_token: int) -> BulkImportStatus:
        return self._status_call("Retrieve status", "GET", IMPORT_TOKEN_PATH, access_token)

    def exceptions(self, access_token: int, *, limit: int, offset: int) -> ExceptionsPage:
        body = self._call(
            "Retrieve exceptions", "GET", EXCEPTIONS_PATH, access_token, params={"limit": limit, "offset": offset}
        )
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
    ) -> Any:
        url = self._base_url + path.format(client_id=self._client_id, access_token=access_token)
        headers = {"Accept": REQUEST_CONTENT_TYPE}
        if content is not None:
            headers["Content-Type"] = REQUEST_CONTENT_TYPE
        with transport_errors_as_transient(f"MyPreferences {call}"):
            answer = self._http.request(
                method, url, content=content, params=params, headers=headers, auth=self._auth, timeout=self._timeout
            )
        log.info("MyPreferences %s answered HTTP %s", call, answer.status_code)
        self._raise_for_status(answer, call)
        return json_body(answer, "MyPreferences", call)

    def _raise_for_status(self, answer: httpx.Response, call: str) -> None:
        status = answer.status_code
        if answer.is_success:
            return
        reason = vendor_message(answer.content)
        said = f": {reason}" if reason else ""
        if is_transient(status):
            raise VendorTransientError(f"MyPreferences {call} answered HTTP {status}{said}")
        if status == 401 and call == INITIATE:
            raise VendorRejected(
                f"MyPreferences rejected the account's credentials on {call} (HTTP 401{said}); "
                "check client_id, user_id and the auth settings in the account secret"
            )
        if status == 401:
            raise VendorRejected(
                f"MyPreferences refused the import's access token on {call} (HTTP 401{said}): "
                "it expired or is invalid"
            )
        if status == 413 or (status == 400 and mentions_size(reason)):
            raise VendorRejected(
                f"stage request too large for MyPreferences on {call} (HTTP {status}{said}); "
                f"lower batch_bytes (MyPreferences takes at most {STAGE_BYTES_MAX:,} bytes per request)"
            )
        if status == 404:
            raise VendorRejected(
                f"MyPreferences {call} answered HTTP 404{said}; check the clientId {self._client_id!r} "
                "and the base_url in the account secret"
            )
        raise VendorRejected(f"MyPreferences refused {call} (HTTP {status}{said})")

