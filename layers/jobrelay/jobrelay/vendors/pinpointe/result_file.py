"""Counting the records of a Pinpointe result file while it streams into the result store.

The file is stored byte for byte as Pinpointe sent it; the same chunks are fed to an incremental
JSON parser (ijson, push mode: no second download, never the whole file in memory) that finds the
record collection the ASSUMPTIONS block of api.py describes (RESULT_FILE_*), counts its records and
reads the file's own count, so Collect can reconcile the two.

Only the few containers at the top of the document are followed key by key; inside a record the
parser's events are merely counted in and out (the fast path that keeps a 1 GiB file cheap).
"""

from dataclasses import dataclass
from typing import Any

import ijson

from jobrelay.domain.errors import VendorProtocolError
from jobrelay.vendors.pinpointe.api import RESULT_FILE_COUNT_KEYS, RESULT_FILE_RECORD_KEYS, RESULT_FILE_WRAPPER_KEYS
from jobrelay.vendors.reading import as_int, fold
from jobrelay.vendors.redaction import excerpt

HEAD_BYTES = 1024  # what an excerpt of a file we cannot read shows
FEED_BYTES = 64 * 1024  # the parser's events for this many bytes are held at a time

_WRAPPERS = frozenset(fold(key) for key in RESULT_FILE_WRAPPER_KEYS)
_RECORDS = frozenset(fold(key) for key in RESULT_FILE_RECORD_KEYS)
_COUNTS = frozenset(fold(key) for key in RESULT_FILE_COUNT_KEYS)
_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})

# The roles of the containers followed (any other container is skipped whole).
_ENVELOPE = "envelope"  # the top object, or one under `response`/`data` in an envelope
_COLLECTION = "collection"  # the records: a list, or an object keyed by id (or one record)


@dataclass
class _Frame:
    role: str
    is_map: bool
    key: str | None = None  # the current key, in a map


@dataclass(frozen=True)
class FileCount:
    """What the file held: its records and, when it gave one, its own count."""

    records: int
    vendor_count: int | None
    records_key: str | None  # the key the records were under; None for a bare top-level list
    shape: str  # "list", "keyed_by_id", "single" or "bare_list"


class ResultFileCounter:
    """Feed it every chunk of the file in order (`feed`), then `finish` for the count. Raises
    VendorProtocolError, with an excerpt of the file's first bytes, for a file that is not JSON or
    holds no record collection."""

    def __init__(self, what: str):
        self._what = what
        self._events = ijson.sendable_list()
        self._parser = ijson.basic_parse_coro(self._events)
        self._head = bytearray()
        self._frames: list[_Frame] = []
        self._skip = 0  # depth inside a container we do not follow (a record, or anything else)
        self._records = 0
        self._map_values = 0  # a collection object: its values that are objects (records keyed by id)
        self._scalar_in_map = False  # a collection object with a plain value is one record, not a keyed set
        self._collection: tuple[str | None, bool] | None = None  # (key, is_map) once found
        self._count: int | None = None
        self._count_seen = False

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < HEAD_BYTES:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
        for start in range(0, len(chunk), FEED_BYTES):
            try:
                self._parser.send(chunk[start : start + FEED_BYTES])
            except ijson.JSONError:
                raise self._unreadable("is not JSON") from None
            self._consume()

    def finish(self) -> FileCount:
        try:
            self._parser.close()
        except ijson.JSONError:
            raise self._unreadable("is not JSON (it ends before its JSON does)") from None
        self._consume()
        if self._collection is None:
            names = "/".join(f"`{key}`" for key in RESULT_FILE_RECORD_KEYS[:2])
            raise self._unreadable(f"holds no record collection (no {names} list, nor a top-level list)")
        key, is_map = self._collection
        if key is None:
            shape = "bare_list"
        elif not is_map:
            shape = "list"
        else:
            shape = "single" if self._scalar_in_map else "keyed_by_id"
        return FileCount(records=self._records, vendor_count=self._count, records_key=key, shape=shape)

    def _unreadable(self, why: str) -> VendorProtocolError:
        return VendorProtocolError(f"{self._what} {why}", answer=excerpt(bytes(self._head)))

    def _consume(self) -> None:
        events = self._events
        for event, value in events:
            if self._skip:  # the hot path: inside a record
                if event in _OPEN:
                    self._skip += 1
                elif event in _CLOSE:
                    self._skip -= 1
                continue
            self._event(event, value)
        del events[:]

    def _event(self, event: str, value: Any) -> None:
        frames = self._frames
        parent = frames[-1] if frames else None
        if event == "map_key":
            parent.key = value  # type: ignore[union-attr]
        elif event in _OPEN:
            role = self._role_of_child(parent, is_map=event == "start_map")
            if role is None:
                self._skip = 1
            else:
                frames.append(_Frame(role, event == "start_map"))
        elif event in _CLOSE:
            frames.pop()
        else:
            self._scalar(parent, value)

    def _role_of_child(self, parent: _Frame | None, *, is_map: bool) -> str | None:
        """The role of a container about to open under `parent`; None to skip it (counting it first
        when it is a record)."""
        if parent is None:  # the document itself
            if is_map:
                return _ENVELOPE
            self._collection = (None, False)
            return _COLLECTION
        if parent.role == _COLLECTION:
            if parent.is_map:
                self._map_values += 1
                if not self._scalar_in_map:
                    self._records = self._map_values
            else:
                self._records += 1
            return None
        key = fold(parent.key) if parent.role == _ENVELOPE and parent.key is not None else None
        if key is None:
            return None
        if key in _RECORDS and self._collection is None:
            self._collection = (parent.key, is_map)
            return _COLLECTION
        if key in _WRAPPERS:
            if is_map:
                return _ENVELOPE
            if self._collection is None:  # {"data": [...]}: the wrapper holds the records themselves
                self._collection = (parent.key, False)
                return _COLLECTION
        return None

    def _scalar(self, parent: _Frame | None, value: Any) -> None:
        if parent is None:
            return  # a bare scalar document: finish() finds no collection
        if parent.role == _COLLECTION:
            if not parent.is_map:
                raise VendorProtocolError(
                    f"{self._what}: record {self._records + 1} of its list is not a JSON object",
                    answer=excerpt(bytes(self._head)),
                )
            self._scalar_in_map = True
            self._records = 1
        elif parent.role == _ENVELOPE and parent.key is not None and fold(parent.key) in _COUNTS and not self._count_seen:
            self._count = as_int(value)
            self._count_seen = self._count is not None
