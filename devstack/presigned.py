"""What S3 checks of a presigned PUT, in front of moto: moto in server mode checks no signature at
all, so an upload that forgets a signed header (the `Content-Type` POST /uploads hands out) would
succeed here and fail on real S3 with `SignatureDoesNotMatch`.

`PresignedPutCheck` wraps moto's WSGI app. For a PUT signed in its query string (SigV4 query
authentication, `X-Amz-Signature=...`) with the local stack's fake credentials, it recomputes the
signature with botocore's own presigner (`S3SigV4QueryAuth`) from the request as it arrived: the
method, the path and query as sent, and the values of exactly the headers `X-Amz-SignedHeaders`
lists. A missing or changed signed header, a changed path or query, or an expired URL is answered as
S3 answers it (403 with S3's XML error); anything else goes to moto untouched. SDK calls sign in
the Authorization header, not the query string, so they never reach the check.

Only the local fake credentials can be checked (their secret is known); a URL presigned with other
fake credentials, which moto accepts everywhere else, is passed through as before.
"""

import hmac
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
DRAIN_CHUNK = 64 * 1024

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Refusal:
    """S3's answer to a presigned request it will not serve: a code, a message, and the extra
    elements S3 puts in its error document (for a signature, what it signed: a user comparing
    `CanonicalRequest` with their own sees which header or parameter differs)."""

    code: str
    message: str
    details: Mapping[str, str]

    def xml(self) -> bytes:
        request_id = uuid.uuid4().hex[:16].upper()
        elements = {"Code": self.code, "Message": self.message, **self.details, "RequestId": request_id}
        body = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in elements.items())
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{body}</Error>'.encode()


def check_presigned(
    method: str, target: str, headers: Mapping[str, str], secret_keys: Mapping[str, str], now: datetime
) -> Refusal | None:
    """S3's refusal of the query-signed request `method target` (target: path and query as sent;
    `headers`: lower-cased names), or None when it would be served or cannot be checked here."""
    parts = urlsplit(target)
    pairs = [pair for pair in parts.query.split("&") if pair]
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if query.get("X-Amz-Algorithm") != ALGORITHM or "X-Amz-Signature" not in query:
        return None  # not SigV4 query authentication: header-signed (SDK) or anonymous
    try:
        access_key, day, region, service, _ = query["X-Amz-Credential"].split("/")
        signed_at = datetime.strptime(query["X-Amz-Date"], AMZ_DATE).replace(tzinfo=UTC)
        expires = int(query["X-Amz-Expires"])
        signed_headers = query["X-Amz-SignedHeaders"].split(";")
    except (KeyError, ValueError):
        return Refusal(
            "AuthorizationQueryParametersError",
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
            {},
        )
    if access_key not in secret_keys:
        return None  # someone else's fake credentials: moto takes them, so does the local stack
    expires_at = signed_at + timedelta(seconds=expires)
    if now > expires_at:
        return Refusal(
            "AccessDenied",
            "Request has expired",
            {"X-Amz-Expires": str(expires), "Expires": _iso(expires_at), "ServerTime": _iso(now)},
        )

    # The request botocore would have signed: the query without the signature (S3SigV4QueryAuth
    # sorts its raw pairs, so their order does not matter), and only the headers it says it signed,
    # with the values they arrived with. A signed header that did not arrive counts as empty, so the
    # CanonicalRequest in the answer shows it (`content-type:`) next to what did arrive.
    unsigned_query = "&".join(pair for pair in pairs if not pair.startswith("X-Amz-Signature="))
    arrived = {name: headers.get(name, "") for name in signed_headers}
    url = f"http://{headers.get('host', '')}{parts.path}?{unsigned_query}"  # the scheme is not signed
    request = AWSRequest(method=method, url=url, headers=arrived)
    request.context["timestamp"] = query["X-Amz-Date"]
    signer = S3SigV4QueryAuth(Credentials(access_key, secret_keys[access_key]), service, region, expires)
    canonical_request = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical_request)
    expected = signer.signature(string_to_sign, request)
    # The credential's day must be X-Amz-Date's: the signing key is derived from the one, the scope
    # signed from the other.
    if day == query["X-Amz-Date"][:8] and hmac.compare_digest(expected, query["X-Amz-Signature"]):
        return None
    return Refusal(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        {
            "AWSAccessKeyId": access_key,
            "StringToSign": string_to_sign,
            "SignatureProvided": query["X-Amz-Signature"],
            "CanonicalRequest": canonical_request,
        },
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class PresignedPutCheck:
    """WSGI middleware: S3's check of presigned PUTs (see the module docstring) before `app`."""

    def __init__(self, app: WSGIApp, secret_keys: Mapping[str, str], now: Callable[[], datetime] | None = None):
        self._app = app
        self._secret_keys = dict(secret_keys)
        self._now = now or (lambda: datetime.now(UTC))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "PUT" or "X-Amz-Signature=" not in environ.get("QUERY_STRING", ""):
            return self._app(environ, start_response)
        refusal = check_presigned("PUT", _target(environ), _headers(environ), self._secret_keys, self._now())
        if refusal is None:
            return self._app(environ, start_response)
        _drain(environ)  # the next request on this keep-alive connection starts after the body
        body = refusal.xml()
        start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]


def _target(environ: dict[str, Any]) -> str:
    """The path and query exactly as the client sent them (werkzeug keeps them in RAW_URI; PATH_INFO
    is decoded, and the signature covers the encoded path)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        parts = urlsplit(raw)  # an absolute-form target keeps only its path and query
        return f"{parts.path}?{parts.query}" if parts.query else parts.path
    query = environ.get("QUERY_STRING", "")
    return environ.get("PATH_INFO", "") + (f"?{query}" if query else "")


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {name[5:].replace("_", "-").lower(): value for name, value in environ.items() if name.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):  # WSGI keeps these two without the HTTP_ prefix
        if environ.get(name):
            headers[name.replace("_", "-").lower()] = environ[name]
    return headers


def _drain(environ: dict[str, Any]) -> None:
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's stream ends with the body
        while stream.read(DRAIN_CHUNK):
            pass
        return
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    while remaining > 0 and (chunk := stream.read(min(remaining, DRAIN_CHUNK))):
        remaining -= len(chunk)
