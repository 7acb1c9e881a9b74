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
"""

import json
import re
import threading
from typing import Any

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
        with _lock:
            _known_secrets.add(value)


def is_secret_key(name: str) -> bool:
    folded = re.sub(r"[\s_\-]+", "", name).casefold()
    return folded in _SECRET_EXACT or any(word in folded for word in _SECRET_WORDS)


def redact(value: Any) -> Any:
    """A JSON value with every secret masked (keys naming secrets, known secrets, URL queries)."""
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else redact(v)) for k, v in value.items()
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
