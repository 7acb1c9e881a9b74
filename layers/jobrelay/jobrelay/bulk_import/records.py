"""The records file of a bulk import (JSON Lines or CSV), read as a stream of records.

Memory: the file arrives as chunks of bytes and is cut into lines before anything is decoded, so
the reader holds one chunk and one line, never more (a line longer than `max_line_bytes` is
dropped as it streams by and reported as an error record).

Lines and offsets: `SourceRecord.line` is the file's own 1-based line number, blank lines included,
so users can find it in their editor; for CSV the header is line 1. `end_offset` and `next_line`
say where reading resumes after the record: `read_records(..., start_offset=end_offset,
start_line=next_line)` yields exactly the records that follow, with the same numbers. A UTF-8 byte
order mark at the start of the file is dropped (its bytes still count in the offsets). Lines end
with "\\n" or "\\r\\n"; blank lines are skipped. A line that cannot be read (invalid UTF-8, not JSON,
not an object, a malformed CSV row) becomes a record with an `error`: it is never sent, and
reading goes on.

CSV is read with the standard library's csv module rather than pandas: it streams row by row in
constant memory, keeps every value a string (pandas guesses types, turning "007" into 7), costs
nothing at cold start, and is not one more dependency of the layer. The first row is the header;
its names map the cells onto the nested record the vendor expects:

  - a dotted name is a path: "CustomerName.FirstName" sets record["CustomerName"]["FirstName"];
  - a part made of digits is a position in a list: "Emails.0.EmailAddress" and
    "Emails.1.EmailAddress" make record["Emails"] a list of objects, in the order of the positions;
  - an empty cell is absent: its key is not set, an object whose cells are all empty is left out,
    and a list keeps only its entries that have a value (so it has no holes);
  - values stay strings: the vendor's model turns "true" or "3" into what it needs, and says why
    when it cannot; an explicit empty string cannot be expressed in CSV (use JSON Lines for that);
  - names are trimmed; names cannot contain dots themselves; a header with an empty name, a name
    twice, or a path that is both a value and an object ("Emails" with "Emails.0.EmailAddress") or
    both a list and an object ("Emails.0.X" with "Emails.Home") is refused as a whole
    (SourceFileError).

A quoted CSV field may span lines: the csv module decides where a row ends, pulling one physical
line at a time, so a row's `line` is its first line and `next_line` follows its last. A row with
more or fewer cells than the header is an error record; a row whose cells are all empty is skipped
like a blank line. A quote left open swallows the lines after it until csv's field size limit
(128 KiB), then the row is reported as an error record; the rows read after it may be misaligned,
but each is still checked against the header and the vendor's model, never sent on trust.
"""

import codecs
import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

RecordFormat = Literal["jsonl", "csv"]

MiB = 1024 * 1024
# Far above any contact record (vendors take a few MB per request at most), far below a Lambda's memory.
DEFAULT_MAX_LINE_BYTES = 4 * MiB


class SourceFileError(ValueError):
    """The file as a whole cannot be read as records: an empty or invalid CSV header, for one."""


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record of the file, or the reason it could not be read (exactly one of data, error)."""

    line: int  # 1-based line of the file where the record starts
    end_offset: int  # byte offset just after the record's last line: resume reading there
    next_line: int  # the number of the line after the record's last line: the one at end_offset
    data: dict[str, Any] | None = None
    error: str | None = None


def read_records(
    chunks: Iterable[bytes],
    fmt: RecordFormat,
    *,
    start_offset: int = 0,
    start_line: int = 1,
    header: Sequence[str] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[SourceRecord]:
    """The records of `chunks`, the file's bytes from `start_offset` (where line `start_line`
    begins). A CSV file read from the middle needs its `header`, as `read_header` gives it; read
    from its start, it takes the header from its first row, which must then equal `header` if
    one is given (SourceFileError otherwise)."""
    lines = _physical_lines(chunks, start_offset, start_line, max_line_bytes)
    if fmt == "jsonl":
        if header is not None:
            raise ValueError("JSON Lines files have no header")
        return _jsonl_records(lines)
    if fmt == "csv":
        if start_offset == 0:
            return _csv_from_the_start(_csv_rows(lines), header)
        if header is None:
            raise ValueError("a CSV file read from the middle needs its header (read_header)")
        return _csv_records(_csv_rows(lines), _CsvLayout(header))
    raise ValueError(f"unknown records format {fmt!r}: use 'jsonl' or 'csv'")


def read_header(chunks: Iterable[bytes]) -> list[str]:
    """The column names of a CSV file, from a stream of the file from its start; reads no further
    than the header row. Raises SourceFileError when the header cannot be used. Given a sample of
    the file rather than its stream, a header longer than the sample would read as complete:
    read_records, which checks a given header against the file's, then refuses it."""
    header = _first_row(_csv_rows(_physical_lines(chunks, 0, 1, DEFAULT_MAX_LINE_BYTES)))
    _CsvLayout(header)  # refuse it now rather than at the first record
    return header


def sniff(first_bytes: bytes, fmt: RecordFormat) -> str | None:
    """A readable reason when the file whose first bytes these are is clearly not `fmt`, else None.
    The bytes may stop in the middle of a line: such a line is judged only by how it begins."""
    if reason := _not_text(first_bytes):
        return reason
    whole_lines = first_bytes[: first_bytes.rfind(b"\n") + 1]
    opening = first_bytes.removeprefix(codecs.BOM_UTF8).lstrip()[:1]
    if fmt == "jsonl":
        return _sniff_jsonl(opening, whole_lines)
    if fmt == "csv":
        return _sniff_csv(opening, whole_lines)
    raise ValueError(f"unknown records format {fmt!r}: use 'jsonl' or 'csv'")


# --- lines -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    end_offset: int
    content: bytes  # without its "\n" (a "\r" before it stays: csv needs it inside quoted fields)
    terminated: bool  # ended by "\n": every line but perhaps the file's last
    problem: str | None = None  # why the line is unreadable, whatever its content (too long)


class _Unreadable(Exception):
    """What is wrong with a line, phrased to follow "line is" / "line N is"."""


class _LineCutter:
    """Cuts a stream of bytes into lines. Only "\\n" ends a line, and that byte never occurs inside
    a multi-byte UTF-8 character, so lines can be cut before decoding, wherever the chunks split."""

    def __init__(self, offset: int, number: int, max_line_bytes: int):
        self._offset = offset  # of the next chunk's first byte
        self._number = number  # of the line being cut
        self._max_line_bytes = max_line_bytes
        self._pending = bytearray()  # the start of a line whose end is in a later chunk
        self._too_long = False  # the line passed max_line_bytes: its bytes are dropped as they come
        self._at_file_start = offset == 0  # where a byte order mark may be

    def feed(self, chunk: bytes) -> Iterator[_Line]:
        start = 0
        while (newline := chunk.find(b"\n", start)) != -1:
            yield self._line(chunk[start:newline], self._offset + newline + 1, terminated=True)
            start = newline + 1
        rest = chunk[start:]
        if not self._too_long and len(self._pending) + len(rest) > self._max_line_bytes:
            self._too_long = True
            self._pending.clear()
        if not self._too_long:
            self._pending += rest
        self._offset += len(chunk)

    def finish(self) -> Iterator[_Line]:
        if self._pending or self._too_long:
            yield self._line(b"", self._offset, terminated=False)

    def _line(self, end: bytes, end_offset: int, terminated: bool) -> _Line:
        content = bytes(self._pending) + end if self._pending else end
        self._pending.clear()
        number, self._number = self._number, self._number + 1
        at_file_start, self._at_file_start = self._at_file_start, False
        if self._too_long or len(content) > self._max_line_bytes:
            self._too_long = False
            return _Line(number, end_offset, b"", terminated, f"longer than {self._max_line_bytes} bytes")
        if at_file_start:
            content = content.removeprefix(codecs.BOM_UTF8)
        return _Line(number, end_offset, content, terminated)


def _physical_lines(chunks: Iterable[bytes], offset: int, number: int, max_line_bytes: int) -> Iterator[_Line]:
    cutter = _LineCutter(offset, number, max_line_bytes)
    for chunk in chunks:
        yield from cutter.feed(chunk)
    yield from cutter.finish()


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = content[error.start]
        raise _Unreadable(f"not valid UTF-8 (byte 0x{byte:02x} at position {error.start + 1})") from None


def _is_blank(content: bytes) -> bool:
    return not content.strip()


# --- JSON Lines --------------------------------------------------------------------------------


def _jsonl_records(lines: Iterator[_Line]) -> Iterator[SourceRecord]:
    for line in lines:
        if line.problem or not _is_blank(line.content):
            yield _jsonl_record(line)


def _jsonl_record(line: _Line) -> SourceRecord:
    try:
        if line.problem:
            raise _Unreadable(line.problem)
        data = _json_object(_decode(line.content))
    except _Unreadable as reason:
        return SourceRecord(line.number, line.end_offset, line.number + 1, error=f"line is {reason}")
    return SourceRecord(line.number, line.end_offset, line.number + 1, data=data)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise _Unreadable(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(value, dict):
        raise _Unreadable("not a JSON object")
    return value


# --- CSV ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    end_offset: int
    next_line: int
    cells: list[str]
    problem: str | None = None  # a whole sentence: "line 7 is not valid UTF-8 (...)"


class _CsvFeed:
    """Gives csv.reader the file's lines one at a time, decoded, and notes which lines the row being
    read spans and whether one of them was unreadable. csv must pull the lines itself: only it
    knows whether a line ends the row or falls inside a quoted field."""

    def __init__(self, lines: Iterator[_Line]):
        self._lines = lines
        self._first: _Line | None = None
        self._last: _Line | None = None
        self._problem: str | None = None

    def start_row(self) -> None:
        self._first = self._problem = None

    def row(self, cells: list[str], problem: str | None = None) -> _Row:
        assert self._first is not None and self._last is not None  # csv read at least one line for it
        # An unreadable line explains the row better than what csv then made of it.
        problem = self._problem or problem
        return _Row(self._first.number, self._last.end_offset, self._last.number + 1, cells, problem)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._first = self._first or line
        self._last = line
        if line.problem:
            self._note(line, line.problem)
            return "\n"
        try:
            text = _decode(line.content)
        except _Unreadable as reason:
            self._note(line, str(reason))
            # Still give csv the line, so that the row ends where it would have ended.
            text = line.content.decode("utf-8", errors="surrogateescape")
        return text + "\n" if line.terminated else text

    def _note(self, line: _Line, reason: str) -> None:
        self._problem = self._problem or f"line {line.number} is {reason}"


def _csv_rows(lines: Iterator[_Line]) -> Iterator[_Row]:
    """The file's rows, blank ones skipped. strict: a malformed row is an error, not a guess."""
    feed = _CsvFeed(lines)
    reader = csv.reader(feed, strict=True)
    while True:
        feed.start_row()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # csv drops the rest of the line and starts afresh at the next
            yield feed.row([], f"row is not valid CSV ({error})")
            continue
        row = feed.row(cells)
        if row.problem or any(cells):
            yield row


def _first_row(rows: Iterator[_Row]) -> list[str]:
    row = next(rows, None)
    if row is None:
        raise SourceFileError("the file is empty: a CSV file needs a header row")
    if row.problem:
        raise SourceFileError(f"the header row cannot be read: {row.problem}")
    return row.cells


Path = tuple[str | int, ...]


class _CsvLayout:
    """Where each column's cells go in the nested record (the rules are in the module's doc)."""

    def __init__(self, names: Sequence[str]):
        self.width = len(names)
        self._paths = [_path(position, name) for position, name in enumerate(names, start=1)]
        _check_shape(self._paths)

    def record(self, cells: Sequence[str]) -> dict[str, Any]:
        tree: dict[str | int, Any] = {}
        for path, value in zip(self._paths, cells, strict=True):
            if value == "":
                continue
            node = tree
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
        return _with_lists(tree)


def _path(position: int, name: str) -> Path:
    name = name.strip()
    if not name:
        raise SourceFileError(f"column {position} of the header has no name")
    parts = name.split(".")
    if "" in parts:
        raise SourceFileError(f"column {name!r} has an empty part between its dots")
    # The record itself is an object, so its first part is always a name.
    return (parts[0], *(int(part) if part.isascii() and part.isdigit() else part for part in parts[1:]))


def _check_shape(paths: list[Path]) -> None:
    """Refuse a header whose paths cannot all hold in one record. The tree built here has a
    column's path at its leaf and a dict for each group of columns."""
    tree: dict[str | int, Any] = {}
    for path in paths:
        node = tree
        for depth, part in enumerate(path[:-1], start=1):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SourceFileError(f"{_dotted(path[:depth])!r} is both a column and a group of columns")
        if path[-1] in node:
            twice = not isinstance(node[path[-1]], dict)
            what = "appears twice" if twice else "is both a column and a group of columns"
            raise SourceFileError(f"{_dotted(path)!r} {what}")
        node[path[-1]] = path
        if len({isinstance(key, int) for key in node}) > 1:
            raise SourceFileError(f"{_dotted(path[:-1])!r} mixes list positions and field names")


def _dotted(path: Path) -> str:
    return ".".join(map(str, path))


def _with_lists(node: dict[str | int, Any]) -> Any:
    """Turn the nodes keyed by list positions into lists, in position order."""
    values = {key: _with_lists(value) if isinstance(value, dict) else value for key, value in node.items()}
    if isinstance(next(iter(values)), int):  # never empty: a node exists once a value is set under it
        return [values[position] for position in sorted(values)]
    return values


def _csv_from_the_start(rows: Iterator[_Row], known: Sequence[str] | None) -> Iterator[SourceRecord]:
    header = _first_row(rows)
    if known is not None and list(known) != header:
        # A header read from a sample too short for it, or from another version of the file.
        raise SourceFileError(f"the file's header row is not the header given: {header!r}, not {list(known)!r}")
    yield from _csv_records(rows, _CsvLayout(header))


def _csv_records(rows: Iterator[_Row], layout: _CsvLayout) -> Iterator[SourceRecord]:
    for row in rows:
        yield _csv_record(row, layout)


def _csv_record(row: _Row, layout: _CsvLayout) -> SourceRecord:
    at = (row.line, row.end_offset, row.next_line)
    if row.problem:
        return SourceRecord(*at, error=row.problem)
    if len(row.cells) != layout.width:
        return SourceRecord(*at, error=f"row has {len(row.cells)} fields, the header has {layout.width}")
    return SourceRecord(*at, data=layout.record(row.cells))


# --- sniffing ----------------------------------------------------------------------------------

# What users upload by mistake, by the bytes it starts with.
_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?)",
    b"\xd0\xcf\x11\xe0": "an .xls workbook",
    b"\x1f\x8b": "gzip-compressed",
    b"%PDF": "a PDF document",
}


def _not_text(first_bytes: bytes) -> str | None:
    if _is_blank(first_bytes.removeprefix(codecs.BOM_UTF8)):
        return "the file is empty"
    for signature, what in _SIGNATURES.items():
        if first_bytes.startswith(signature):
            return f"the file is {what}, not text: upload it as plain UTF-8 text"
    if first_bytes.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "the file is UTF-16 text: save it as UTF-8"
    if b"\x00" in first_bytes:
        return "the file contains NUL bytes: it is binary, not text"
    return None


def _sniff_jsonl(opening: bytes, whole_lines: bytes) -> str | None:
    if opening == b"[":
        return "the file starts with '[': it is one JSON array, not JSON Lines (one JSON object per line)"
    if opening != b"{":
        return "the file does not start with '{': JSON Lines has one JSON object per line"
    for line in _physical_lines([whole_lines], 0, 1, DEFAULT_MAX_LINE_BYTES):
        if not _is_blank(line.content):
            try:
                _json_object(_decode(line.content))
            except _Unreadable as reason:
                return f"line {line.number} is {reason}: JSON Lines has one JSON object per line"
            return None
    return None  # the first line goes on past these bytes


def _sniff_csv(opening: bytes, whole_lines: bytes) -> str | None:
    if opening in (b"{", b"["):
        return "the file looks like JSON, not CSV"
    if not whole_lines:
        return None  # the header row goes on past these bytes
    try:
        header = read_header([whole_lines])
    except SourceFileError as error:
        return str(error)
    if len(header) == 1 and any(separator in header[0] for separator in ";\t|"):
        return f"the header has one column, {header[0]!r}: a CSV file must be separated by commas"
    return None
