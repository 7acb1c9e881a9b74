"""Reading what vendors send where their docs leave the shape open (docs/VENDORS.md, Unknowns).

One small layer, shared by every vendor adapter and named in each adapter's ASSUMPTIONS block, so
the rules are the same everywhere and tested once (tests/unit/test_reading.py):

- **Keys** are matched without regard to case or to `_`, `-` and spaces: `jobid`, `Jobid`, `JobId`
  and `job_id` are one key (`fold`, `lookup`, `CaselessModel`).
- **Collections** may come as a list, as an object keyed by id (the key then is the id), as a single
  object, or as nothing (`collection`).
- **Numbers** may come as numbers or as numbers written as strings (`as_int`).
- **Pages** end when the vendor says so: its own "no more" signal, or an empty page; the next page
  starts after the records the vendor actually sent, not after the page size we asked for, so a
  vendor that caps its pages loses nothing; a page that repeats the one before is a protocol error,
  not an endless loop; a page that meets a transient error can be asked for again, with a
  budget of its own (`follow_pages`).

This module imports no HTTP library: payload modules use it.
"""

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from pydantic import BaseModel, PrivateAttr, ValidationError, model_validator

from jobrelay.domain.errors import VendorProtocolError
from jobrelay.domain.request_retries import RequestRetry
from jobrelay.vendors.redaction import excerpt

_SEPARATORS = re.compile(r"[\s_\-]+")


def fold(key: str) -> str:
    """A key as it is compared: case-folded, without `_`, `-` or whitespace."""
    return _SEPARATORS.sub("", key).casefold()


_MISSING = object()


def lookup(mapping: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    """The value of the first of `keys` that `mapping` holds, keys compared by `fold`."""
    if not isinstance(mapping, Mapping):
        return default
    folded: dict[str, Any] = {}
    for name, value in mapping.items():
        if isinstance(name, str):
            folded.setdefault(fold(name), value)
    for key in keys:
        value = folded.get(fold(key), _MISSING)
        if value is not _MISSING:
            return value
    return default


def has_key(mapping: Mapping[str, Any], *keys: str) -> bool:
    return lookup(mapping, *keys, default=_MISSING) is not _MISSING


def text(value: Any) -> str | None:
    """A non-empty string, or a number as text; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def as_int(value: Any) -> int | None:
    """A whole number given as a number or as a string of digits; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def nothing(value: Any) -> bool:
    """No content at all: null, an empty string, list or object."""
    return value is None or (isinstance(value, str | list | dict) and not value)


def collection(value: Any, *, id_key: str, what: str) -> list[dict[str, Any]]:
    """The records of a collection whatever its shape:

    - nothing (null, "", [], {}) is no record;
    - a list is its items;
    - an object whose every value is an object is keyed by id: each value is a record, and its key
      is written into it under `id_key` unless the record holds that key already (compared by fold);
    - any other object is one record.

    An item that is not a JSON object raises VendorProtocolError naming `what`."""
    if nothing(value):
        return []
    if isinstance(value, list):
        records = value
    elif isinstance(value, dict) and all(isinstance(item, dict) for item in value.values()):
        records = [item if has_key(item, id_key) else {id_key: key, **item} for key, item in value.items()]
    else:
        records = [value]
    for position, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise VendorProtocolError(f"{what}: item {position} is not a JSON object")
    return records


class CaselessModel(BaseModel):
    """A model that takes its fields under any casing or separators (see `fold`): `TotalRecordsReceived`,
    `totalRecordsReceived` and `total_records_received` fill the same field. Keys that match no field
    are passed on unchanged (for `extra` to keep or ignore)."""

    @model_validator(mode="before")
    @classmethod
    def _caseless_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = {fold(info.alias or name): name for name, info in cls.model_fields.items()}
        renamed: dict[str, Any] = {}
        for key, value in data.items():
            target = names.get(fold(key), key) if isinstance(key, str) else key
            if target in renamed and target != key:
                continue  # the exact spelling, met first or later, wins over another spelling
            renamed[target] = value
        return renamed


class VendorAnswer(CaselessModel):
    """A vendor's answer read into a model that keeps the answer as it came, so that an error, or a
    status word we do not know, can show an excerpt of exactly what the vendor said."""

    _answer: Any = PrivateAttr(default=None)

    @classmethod
    def read(cls, body: Any, unreadable: Callable[[ValidationError], str]) -> Self:
        """The answer as this model, or VendorProtocolError with the message `unreadable` makes of
        the validation error and a redacted excerpt of the answer."""
        try:
            model = cls.model_validate(body)
        except ValidationError as exc:
            raise VendorProtocolError(unreadable(exc), answer=excerpt(body)) from None
        model._answer = body
        return model

    def excerpt(self) -> str:
        """A bounded, redacted excerpt of the answer this model was read from."""
        return excerpt(self._answer if self._answer is not None else self.model_dump(mode="json", exclude_unset=True))


# --- pages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page as a vendor answered it."""

    records: list[Any]
    # The vendor's own signal: True more pages follow, False this is the last, None it said nothing.
    more: bool | None
    # An opaque continuation the vendor gave (not a record number): sent back as given.
    cursor: str | None = None
    # The vendor's own record number for the next page, when it gave one, to compare with ours.
    vendor_next: int | None = None
    # Makes a redacted excerpt of the answer the page came in; called only when the paging itself
    # fails (a repeated page, pages without end), so the error shows what the vendor sent.
    answer: Callable[[], str] | None = field(default=None, repr=False, compare=False)


@dataclass
class PageTally:
    """What following the pages saw: for summaries and reconciliation."""

    pages: int = 0
    records: int = 0
    # Pages after which the vendor's own next record number disagreed with the records it sent.
    next_disagreements: list[tuple[int, int, int]] = field(default_factory=list)  # (page, vendor_next, ours)


def follow_pages(
    fetch: Callable[[int, str | None], Page],
    *,
    first: int,
    what: str,
    max_pages: int,
    tally: PageTally | None = None,
    retry: RequestRetry | None = None,
) -> Iterator[Page]:
    """Every page of a paginated read, one held at a time. `fetch(offset, cursor)` asks for the page
    starting at record `offset` (numbered from `first`), or at the vendor's opaque `cursor`.

    Pages end when the vendor says there are no more (`more` False) or sends an empty page. Without
    a signal (`more` None) the next page is asked for, so a missing signal costs one empty page, never
    records. The next offset is the current one plus the records actually received: a vendor that
    sends fewer than we asked for loses nothing. A page identical to the one before, a cursor seen
    before, or more than `max_pages` pages is a VendorProtocolError.

    With `retry`, a page that meets a transient error is asked for again, with backoff; each page
    read gives the budget back, so the pages go on where they stopped, never from the first. Without
    it the error leaves at once (a poll's pages: the state machine retries the poll)."""
    tally = tally if tally is not None else PageTally()
    offset, cursor = first, None
    seen_cursors: set[str] = set()
    previous: str | None = None
    for number in range(1, max_pages + 1):
        asking = functools.partial(fetch, offset, cursor)
        page = retry.call(asking, what=f"{what}, page {number}") if retry is not None else asking()
        tally.pages += 1
        tally.records += len(page.records)
        yield page
        if page.more is False or not page.records:
            return
        fingerprint = hashlib.sha256(json.dumps(page.records, sort_keys=True, default=str).encode()).hexdigest()
        if fingerprint == previous:
            raise _paging_error(f"{what}: page {number} repeats page {number - 1}; the pages make no progress", page)
        previous = fingerprint
        offset += len(page.records)
        if page.vendor_next is not None and page.vendor_next != offset:
            tally.next_disagreements.append((number, page.vendor_next, offset))
        if page.cursor is not None:
            if page.cursor in seen_cursors:
                raise _paging_error(f"{what}: page {number} sent the continuation {page.cursor!r} again", page)
            seen_cursors.add(page.cursor)
        cursor = page.cursor
    raise _paging_error(f"{what}: the pages did not end after {max_pages} pages", page)


def _paging_error(message: str, page: Page) -> VendorProtocolError:
    return VendorProtocolError(message, answer=page.answer() if page.answer is not None else None)
