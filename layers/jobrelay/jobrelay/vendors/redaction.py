"""Bounded, redacted excerpts of what a vendor answered, safe for a job's timeline and for logs.

When a vendor answers something we cannot read, the operator needs to see what it said (that is how
a wrong assumption about an undocumented shape is found), but no credential may ever leave with it.
Three layers of masking, each enough on its own for what it covers:

1. every secret value an account holds (tokens, keys, passwords) is registered when its account is
   read (`register_secret`) and masked wherever it appears, in any form of answer;
2. in JSON, the value of every key that names a secret (token, secret, password, signature, key,
   authorization, credential, ...) is masked, however deep;
3. in any text, auth header values (Bearer, Basic, ApiKey, PNAUTHINFO3 signatures), `name=value`
   pairs whose name names a secret, every URL's query string and the token segment of our own
   webhook URLs are masked.

The excerpt is then cut to `limit` characters and says how long the answer was.

The vendor call log (jobrelay.vendors.recording) uses the same layers for URLs (`redact_path`,
`redact_query`), headers (`redact_headers`: every header whose name names a secret is masked whole)
and the first bytes of bodies too large to keep (`excerpt_of_head`).
"""

import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

MASK = "***"
DEFAULT_LIMIT = 1000
MIN_SECRET_CHARS = 6  # shorter values (a flag, a digit) would mask innocent text everywhere

_SECRET_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "signature",
    "apikey",
    "authorization",
    "credential",
    "privatekey",
    "accesskey",
    "sessionkey",
    "cookie",
    "auth",
)
_SECRET_EXACT = frozenset({"key", "sig", "pin"})

_known_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask `value` in every excerpt from now on (for the life of the process)."""
    if value and len(value) >= MIN_SECRET_CHARS:
        # As it may also appear: escaped in a JSON string, percent-encoded in a URL or a form.
        forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value, safe="")}
        with _lock:
            _known_secrets.update(forms)


def is_secret_key(name: str) -> bool:
    folded = re.sub(r"[\s_\-]+", "", name).casefold()
    return folded in _SECRET_EXACT or any(word in folded for word in _SECRET_WORDS)


def redact(value: Any) -> Any:
    """A JSON value with every secret masked (keys naming secrets, known secrets, URL queries)."""
    if isinstance(value, dict):
        return {
            (redact_text(k) if isinstance(k, str) else k): (
                MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else redact(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # An all-digit secret (a MyPreferences AccessToken) may come back as a JSON number.
        shown = redact_text(str(value))
        return value if shown == str(value) else shown
    return value


_AUTH_VALUES = re.compile(r"(?i)\b(bearer|basic|apikey|api-key|token)(\s+)[A-Za-z0-9._~+/=\-]{6,}")
_SIGNATURE = re.compile(r"(?i)(signature|credential)(\s*=\s*)[^\s,;\"']+")
_NAMED_PAIR = re.compile(
    r"(?i)([\"']?[A-Za-z_\-]*(?:token|secret|password|passwd|apikey|api_key|signature|authorization|credential)"
    r"[A-Za-z_\-]*[\"']?)(\s*[:=]\s*[\"']?)([^\"'&\s,;}]+)"
)
_URL_QUERY = re.compile(r"(?i)(https?://[^\s\"'?#]+)\?[^\s\"'#]*")
_WEBHOOK_TOKEN = re.compile(r"(/webhooks/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/)[A-Za-z0-9_\-]+")


def redact_text(text: str) -> str:
    with _lock:
        known = sorted(_known_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _WEBHOOK_TOKEN.sub(rf"\1{MASK}", text)
    text = _URL_QUERY.sub(rf"\1?{MASK}", text)
    text = _AUTH_VALUES.sub(rf"\1\2{MASK}", text)
    text = _SIGNATURE.sub(rf"\1\2{MASK}", text)
    return _NAMED_PAIR.sub(rf"\1\2{MASK}", text)


def excerpt(answer: bytes | str | Any, limit: int = DEFAULT_LIMIT) -> str:
    """A redacted excerpt of a vendor's answer: raw bytes or text (JSON is masked key by key, anything
    else as text) or an already parsed JSON value; at most `limit` characters plus a note of the
    answer's full length when it was cut."""
    if isinstance(answer, bytes | bytearray):
        answer = bytes(answer).decode("utf-8", errors="replace")
    if isinstance(answer, str):
        try:
            parsed = json.loads(answer)
        except (ValueError, RecursionError):
            shown, size = redact_text(answer), len(answer)
        else:
            shown, size = json.dumps(redact(parsed), ensure_ascii=False), len(answer)
    else:
        shown = json.dumps(redact(answer), ensure_ascii=False, default=str)
        size = len(shown)
    shown = " ".join(shown.split())
    if len(shown) > limit:
        return f"{shown[:limit]}... ({size:,} characters in all)"
    return shown


# --- the vendor call log's parts ------------------------------------------------------------------

HEADER_LIMIT = 300  # characters of one header value kept
# Query parameters that make a link a signed capability (a presigned S3 or GCS link, a SAS `sig`):
# every value of such a query is masked.
_SIGNED_PARAM = re.compile(r"(?i)^(x-(amz|goog)-.*|.*signature.*|sig)$")


def redact_path(path: str) -> str:
    """A URL path with known secrets (a per-import token in it) and our webhook tokens masked."""
    return redact_text(path)


def redact_query(query: str) -> str:
    """A URL query (as sent, percent-encoded) with every value masked whose name names a secret or
    which holds one; in a signed link (a signature parameter, a presigned S3/GCS one) every value."""
    if not query:
        return query
    pairs = [part.partition("=") for part in query.split("&")]
    names = [unquote_plus(name) for name, _, _ in pairs]
    capability = any(_SIGNED_PARAM.match(name) for name in names)
    shown = []
    for (raw_name, equals, value), name in zip(pairs, names, strict=True):
        plain = unquote_plus(value)
        if value and (capability or is_secret_key(name) or redact_text(plain) != plain):
            value = MASK
        shown.append(f"{redact_text(raw_name)}{equals}{value}")
    return "&".join(shown)


def redact_headers(headers: Iterable[tuple[str, str]], limit: int = HEADER_LIMIT) -> dict[str, str]:
    """Headers by lower-cased name: the value of every header whose name names a secret
    (Authorization, X-Api-Key, Cookie, ...) masked whole, the others redacted as text; repeated
    headers joined with ", "."""
    shown: dict[str, str] = {}
    for name, value in headers:
        key = redact_text(name).lower()
        text = MASK if is_secret_key(key) else redact_text(value)
        if len(text) > limit:
            text = text[:limit] + "..."
        shown[key] = f"{shown[key]}, {text}" if key in shown else text
    return shown


def excerpt_of_head(head: bytes, size: int | None, limit: int = DEFAULT_LIMIT) -> str:
    """A redacted excerpt of the first bytes of a body too large to keep whole (a result file, a
    stage batch): masked as text, and, since the cut may fall inside a secret, the text's end is
    dropped where it could be the start of a known one."""
    shown = _drop_secret_start(redact_text(head.decode("utf-8", errors="replace")))
    shown = " ".join(shown.split())[:limit]
    return f"{shown}... ({size:,} bytes in all)" if size is not None else f"{shown}..."


def _drop_secret_start(text: str) -> str:
    with _lock:
        known = list(_known_secrets)
    cut = 0
    for secret in known:
        for length in range(min(len(secret) - 1, len(text)), cut, -1):
            if text.endswith(secret[:length]):
                cut = length
                break
    return text[: len(text) - cut] if cut else text
