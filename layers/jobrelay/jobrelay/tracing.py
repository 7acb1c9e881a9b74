"""X-Ray traces without the X-Ray SDK: a subsegment per step invocation, annotated with the job id,
operation, vendor and step, and a subsegment per vendor call under it.

Why not Powertools' Tracer: it needs aws-xray-sdk (and wrapt), which the layer does not ship; adding
them grows the layer and the cold start of every function (the SDK patches botocore on import),
and the schedules function is already near its cold-start budget (docs/DESIGN.md). What we need is
small: with `Tracing: Active`, Lambda makes the function's segment and gives its trace header to the
invocation (`_X_AMZN_TRACE_ID`: Root, Parent, Sampled); a subsegment is one JSON document sent over
UDP to the X-Ray daemon Lambda runs (`AWS_XRAY_DAEMON_ADDRESS`), as the SDK itself sends them
(https://docs.aws.amazon.com/xray/latest/devguide/xray-api-sendingdata.html). Nothing is sent when
the invocation is not sampled, outside Lambda, or with POWERTOOLS_TRACE_DISABLED=true (the local
stack). A failure to send is ignored: tracing never breaks the work.
"""

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

_HEADER = b'{"format": "json", "version": 1}\n'
_ANNOTATION_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass
class Subsegment:
    name: str
    trace_id: str
    parent_id: str
    id: str = field(default_factory=lambda: _new_id())
    start_time: float = field(default_factory=time.time)
    annotations: dict[str, str | int | float | bool] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def annotate(self, **values: str | int | float | bool | None) -> None:
        for key, value in values.items():
            if value is not None and set(key) <= _ANNOTATION_KEY_CHARS:
                self.annotations[key] = value

    def document(self, end_time: float) -> dict[str, Any]:
        document: dict[str, Any] = {
            "name": self.name[:200],
            "id": self.id,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "type": "subsegment",
            "start_time": self.start_time,
            "end_time": end_time,
            **self.extra,
        }
        if self.annotations:
            document["annotations"] = self.annotations
        return document


def _new_id() -> str:
    return os.urandom(8).hex()


_current: ContextVar[Subsegment | None] = ContextVar("jobrelay_subsegment", default=None)


def _trace_header() -> dict[str, str]:
    raw = os.environ.get("_X_AMZN_TRACE_ID", "")
    return dict(part.split("=", 1) for part in raw.split(";") if "=" in part)


def enabled() -> bool:
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    header = _trace_header()
    return bool(os.environ.get("AWS_XRAY_DAEMON_ADDRESS") and header.get("Root") and header.get("Sampled") == "1")


def _send(document: dict[str, Any]) -> None:
    import socket  # only when a trace is sent: a handler module stays cheap to load

    address = os.environ.get("AWS_XRAY_DAEMON_ADDRESS", "")
    host, _, port = address.rpartition(":")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(_HEADER + json.dumps(document, separators=(",", ":"), default=str).encode(), (host, int(port)))
    except (OSError, ValueError):
        pass


@contextmanager
def subsegment(name: str, **annotations: str | int | float | bool | None) -> Iterator[Subsegment | None]:
    """A subsegment of the invocation's trace (or of the enclosing subsegment) around the block;
    None (and nothing sent) when tracing is off. An exception leaving the block marks it a fault."""
    if not enabled():
        yield None
        return
    parent = _current.get()
    header = _trace_header()
    segment = Subsegment(name, trace_id=header["Root"], parent_id=parent.id if parent else header.get("Parent", ""))
    segment.annotate(**annotations)
    token = _current.set(segment)
    try:
        yield segment
    except BaseException as error:
        segment.extra.setdefault("fault", True)
        segment.extra["cause"] = {"exceptions": [{"id": _new_id(), "type": type(error).__name__}]}
        raise
    finally:
        _current.reset(token)
        _send(segment.document(time.time()))


def current() -> Subsegment | None:
    return _current.get()


def remote_call(name: str, method: str, url: str, status: int | None, started: float, ended: float) -> None:
    """A finished call to a vendor, as a `remote` subsegment of the current one. `url` is the caller's
    redacted form (ids and tokens out of the path, no query string: both can hold credentials)."""
    parent = _current.get()
    if parent is None:
        return
    call = Subsegment(name, trace_id=parent.trace_id, parent_id=parent.id, start_time=started)
    call.extra["namespace"] = "remote"
    call.extra["http"] = {"request": {"method": method, "url": url}}
    if status is None:
        call.extra["fault"] = True
    else:
        call.extra["http"]["response"] = {"status": status}
        if status == 429:
            call.extra["throttle"] = call.extra["error"] = True
        elif status >= 500:
            call.extra["fault"] = True
        elif status >= 400:
            call.extra["error"] = True
    _send(call.document(ended))
