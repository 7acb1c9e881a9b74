"""Reading vendors' answers leniently: an error answer as one short, readable reason, and a
counter that is missing or null as 0.

MyPreferences and Which50 both run on ASP.NET Web API and document no error body (docs/VENDORS.md 2.4,
3.5): both are read as that framework's default, {"Message": ..., "ModelState": {field: [messages]}},
falling back to the body's text. This module imports no HTTP library, so payload modules can use it.
"""

import json
from typing import Annotated, Any

from pydantic import BeforeValidator

MAX_MESSAGE_CHARS = 300
ASPNET_MESSAGE_KEYS = ("Message", "message", "ExceptionMessage")
ASPNET_DETAILS_KEY = "ModelState"


def error_message(
    content: bytes, *, message_keys: tuple[str, ...] = ASPNET_MESSAGE_KEYS, details_key: str | None = ASPNET_DETAILS_KEY
) -> str | None:
    """The readable reason in an error answer, shortened to MAX_MESSAGE_CHARS; None if there is none.
    A JSON object gives its first message key present plus any per-field details; a body that is
    not JSON is taken as text; any other JSON says nothing."""
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        message = next((v.strip() for k in message_keys if isinstance(v := body.get(k), str) and v.strip()), "")
        details = body.get(details_key) if details_key else None
        if isinstance(details, dict):
            problems = [str(p) for value in details.values() for p in (value if isinstance(value, list) else [value])]
            message = "; ".join(filter(None, [message, *problems]))
    else:
        message = content.decode("utf-8", errors="replace").strip() if body is None else ""
    message = " ".join(message.split())
    if not message:
        return None
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 3] + "..."


def _zero_if_missing(value: Any) -> Any:
    return 0 if value is None else value


# A counter of a vendor's status answer: null (or absent, with a default of 0) reads as 0.
Counter = Annotated[int, BeforeValidator(_zero_if_missing)]
