"""Reading an import's records file as a stream: lines, offsets, formats, chunk boundaries, resuming."""

import codecs
import csv
import io
import json
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobrelay.bulk_import.records import SourceFileError, SourceRecord, read_header, read_records, sniff

BOM = codecs.BOM_UTF8

JSONL = b"".join(
    [
        BOM + b'{"Email": "ada@example.org", "Name": "Ada"}\r\n',  # 1: BOM, CRLF
        b"\n",  # 2: blank
        b"   \r\n",  # 3: blank
        '{"Email": "zoë@example.org", "Name": "Zoë € 😀"}\n'.encode(),  # 4: multi-byte characters
        b'{"Email": "bad\xff@example.org"}\n',  # 5: invalid UTF-8
        b"[1, 2]\n",  # 6: JSON, not an object
        b'{"Email": \n',  # 7: not JSON
        b'{"Email": "last@example.org"}',  # 8: no newline at the end
    ]
)

CSV = b"".join(
    [
        BOM + b"Email,CustomerName.FirstName,Emails.0.EmailAddress,Emails.1.EmailAddress,Note\r\n",  # 1
        b"ada@example.org,Ada,ada@home.example,,\r\n",  # 2
        b'zoe@example.org,,,zoe@work.example,"two\r\nlines, with a comma"\r\n',  # 3-4: a quoted newline
        b",,,,\r\n",  # 5: every cell empty: skipped
        b"\r\n",  # 6: blank
        b"short,row\r\n",  # 7: two fields of five
        "zoë@example.org,Zoë,,,€\n".encode(),  # 8: multi-byte characters, LF alone
        b"bad\xff@example.org,,,,\n",  # 9: invalid UTF-8
        b'x@example.org,"unclosed"quote,,,\n',  # 10: malformed quoting
        b"last@example.org,,,,",  # 11: no newline at the end
    ]
)


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    return (data[start : start + size] for start in range(0, len(data), size))


def read(data: bytes, fmt: str, chunk_size: int = 1 << 20, **options) -> list[SourceRecord]:
    return list(read_records(chunked(data, chunk_size), fmt, **options))


def summary(records: list[SourceRecord]) -> list[tuple[int, object]]:
    return [(record.line, record.data if record.error is None else record.error) for record in records]


# --- JSON Lines --------------------------------------------------------------------------------


def test_jsonl_gives_each_line_its_record_or_its_error_and_skips_blank_lines() -> None:
    assert summary(read(JSONL, "jsonl")) == [
        (1, {"Email": "ada@example.org", "Name": "Ada"}),
        (4, {"Email": "zoë@example.org", "Name": "Zoë € 😀"}),
        (5, "line is not valid UTF-8 (byte 0xff at position 15)"),
        (6, "line is not a JSON object"),
        (7, "line is not valid JSON (Expecting value at column 11)"),
        (8, {"Email": "last@example.org"}),
    ]


@pytest.mark.parametrize(("data", "fmt"), [(JSONL, "jsonl"), (CSV, "csv")], ids=["jsonl", "csv"])
def test_a_record_ends_where_its_last_line_ends(data: bytes, fmt: str) -> None:
    records = read(data, fmt)

    for record in records:
        assert record.end_offset == len(data) or data[record.end_offset - 1 : record.end_offset] == b"\n"
        last_line = data[: record.end_offset].removesuffix(b"\n").count(b"\n") + 1
        assert record.next_line == last_line + 1
    assert records[-1].end_offset == len(data)


@pytest.mark.parametrize(("data", "fmt"), [(JSONL, "jsonl"), (CSV, "csv")], ids=["jsonl", "csv"])
def test_every_chunk_size_gives_the_same_records(data: bytes, fmt: str) -> None:
    whole = read(data, fmt)

    for size in range(1, 65):
        assert read(data, fmt, chunk_size=size) == whole, f"chunks of {size} bytes"


def test_the_byte_order_mark_is_dropped_but_counted_in_offsets() -> None:
    first = read(BOM + b'{"a": 1}\n{"b": 2}\n', "jsonl")[0]

    assert (first.data, first.end_offset) == ({"a": 1}, len(BOM) + 9)
    # only at the start of the file: elsewhere it is part of the line (and not JSON)
    assert read(b'{"a": 1}\n' + BOM + b'{"b": 2}\n', "jsonl")[1].error.startswith("line is not valid JSON")


def test_a_file_of_blank_lines_or_nothing_has_no_records() -> None:
    assert read(b"", "jsonl") == []
    assert read(BOM + b"\n\r\n  \n", "jsonl") == []


def test_a_line_longer_than_the_limit_is_an_error_and_reading_goes_on() -> None:
    data = b'{"a": 1}\n{"long": "' + b"x" * 100 + b'"}\n{"b": 2}\n{"long": "' + b"y" * 100 + b'"}'

    for size in (1, 7, 64, len(data)):
        records = read(data, "jsonl", chunk_size=size, max_line_bytes=40)
        assert summary(records) == [
            (1, {"a": 1}),
            (2, "line is longer than 40 bytes"),
            (3, {"b": 2}),
            (4, "line is longer than 40 bytes"),
        ]
        assert [record.end_offset for record in records] == [9, 122, 131, len(data)]


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_maps_dotted_headers_to_nested_records() -> None:
    assert summary(read(CSV, "csv")) == [
        (
            2,
            {
                "Email": "ada@example.org",
                "CustomerName": {"FirstName": "Ada"},
                "Emails": [{"EmailAddress": "ada@home.example"}],
            },
        ),
        # Emails.0 is empty, so the list holds Emails.1 alone: lists have no holes
        (3, {"Email": "zoe@example.org", "Emails": [{"EmailAddress": "zoe@work.example"}], "Note": "two\r\nlines, with a comma"}),
        (7, "row has 2 fields, the header has 5"),
        (8, {"Email": "zoë@example.org", "CustomerName": {"FirstName": "Zoë"}, "Note": "€"}),
        (9, "line 9 is not valid UTF-8 (byte 0xff at position 4)"),
        (10, "row is not valid CSV (',' expected after '\"')"),
        (11, {"Email": "last@example.org"}),
    ]


def test_a_csv_record_spanning_lines_resumes_after_its_last_line() -> None:
    record = read(CSV, "csv")[1]

    assert (record.line, record.next_line) == (3, 5)


def test_lists_keep_the_order_of_their_positions_and_nest() -> None:
    data = b"Id,Emails.1.EmailAddress,Emails.0.EmailAddress,Emails.0.IsDefault,Tags.0,Tags.2\n1,b@x,a@x,true,t0,t2\n"

    assert read(data, "csv")[0].data == {
        "Id": "1",
        "Emails": [{"EmailAddress": "a@x", "IsDefault": "true"}, {"EmailAddress": "b@x"}],
        "Tags": ["t0", "t2"],
    }


def test_header_names_are_trimmed_and_values_kept_as_they_are() -> None:
    assert read(b" Email , Name\n a@x ,  \n", "csv")[0].data == {"Email": " a@x ", "Name": "  "}


def test_an_invalid_line_inside_a_quoted_field_fails_its_whole_row() -> None:
    data = b'Id,Note\n1,"first\nsec\xffond"\n2,fine\n'

    assert summary(read(data, "csv")) == [
        (2, "line 3 is not valid UTF-8 (byte 0xff at position 4)"),
        (4, {"Id": "2", "Note": "fine"}),
    ]


def test_a_quote_left_open_is_an_error_at_the_end_of_the_file() -> None:
    assert summary(read(b'Id,Note\n1,"never closed\n2,x\n', "csv")) == [(2, "row is not valid CSV (unexpected end of data)")]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"Email,,Name", "column 2 of the header has no name"),
        (b"Email,Name,Email", "'Email' appears twice"),
        (b"Emails.0.EmailAddress,Emails.00.EmailAddress", "'Emails.0.EmailAddress' appears twice"),
        (b"Emails,Emails.0.EmailAddress", "'Emails' is both a column and a group of columns"),
        (b"Emails.0.EmailAddress,Emails", "'Emails' is both a column and a group of columns"),
        (b"Emails.0.EmailAddress,Emails.Home", "'Emails' mixes list positions and field names"),
        (b"CustomerName..FirstName", "column 'CustomerName..FirstName' has an empty part between its dots"),
        (b"Em\xe9il", "the header row cannot be read: line 1 is not valid UTF-8 (byte 0xe9 at position 3)"),
    ],
)
def test_a_header_that_cannot_map_records_refuses_the_file(header: bytes, reason: str) -> None:
    with pytest.raises(SourceFileError) as refused:
        read(header + b"\n1,2,3\n", "csv")
    assert str(refused.value) == reason
    with pytest.raises(SourceFileError):
        read_header([header + b"\n"])


@pytest.mark.parametrize("data", [b"", BOM + b"\r\n\n"], ids=["nothing", "blank lines"])
def test_a_csv_file_without_a_header_row_is_refused(data: bytes) -> None:
    for reading in (lambda: read(data, "csv"), lambda: read_header([data])):
        with pytest.raises(SourceFileError, match="the file is empty: a CSV file needs a header row"):
            reading()


def test_the_header_is_read_without_reading_further() -> None:
    def file() -> Iterator[bytes]:
        yield b"Email,Customer"
        yield b"Name.FirstName\r\nada@example.org,Ada\r\n"
        raise AssertionError("read past the header's chunk")

    assert read_header(file()) == ["Email", "CustomerName.FirstName"]


# --- resuming ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "fmt"), [(JSONL, "jsonl"), (CSV, "csv")], ids=["jsonl", "csv"])
def test_resuming_after_any_record_gives_exactly_the_records_after_it(data: bytes, fmt: str) -> None:
    whole = read(data, fmt)
    header = read_header([data]) if fmt == "csv" else None

    for position, record in enumerate(whole):
        rest = read(
            data[record.end_offset :],
            fmt,
            chunk_size=5,
            start_offset=record.end_offset,
            start_line=record.next_line,
            header=header,
        )
        assert rest == whole[position + 1 :]


def test_a_header_given_for_a_read_from_the_start_must_be_the_files() -> None:
    header = read_header([CSV])

    assert read(CSV, "csv", header=header) == read(CSV, "csv")
    with pytest.raises(SourceFileError, match="not the header given"):
        read(CSV, "csv", header=[*header[:-1], "No"])  # as read from a sample that cut the header short


def test_read_records_says_what_it_needs() -> None:
    with pytest.raises(ValueError, match="needs its header"):
        read_records([b"x"], "csv", start_offset=10)
    with pytest.raises(ValueError, match="no header"):
        read_records([b"x"], "jsonl", header=["Email"])
    with pytest.raises(ValueError, match="unknown records format 'xlsx'"):
        read_records([b"x"], "xlsx")  # type: ignore[arg-type]
    with pytest.raises(SourceFileError, match="appears twice"):
        read_records([b"x"], "csv", start_offset=10, header=["a", "a"])


# --- sniffing ----------------------------------------------------------------------------------

ONE_PER_LINE = "JSON Lines has one JSON object per line"
NOT_TEXT = "not text: upload it as plain UTF-8 text"


@pytest.mark.parametrize(
    ("first_bytes", "fmt", "reason"),
    [
        (JSONL[:50], "jsonl", None),
        (b'\n\n{"a": 1}\n{"b": ', "jsonl", None),
        (b'{"a": "a first line longer than the sample', "jsonl", None),  # judged by its start only
        (
            b'[{"a": 1}, {"a": 2}]',
            "jsonl",
            "the file starts with '[': it is one JSON array, not JSON Lines (one JSON object per line)",
        ),
        (
            b'{\n  "a": 1\n}\n',
            "jsonl",
            f"line 1 is not valid JSON (Expecting property name enclosed in double quotes at column 2): {ONE_PER_LINE}",
        ),
        (b"Email,Name\nada@example.org,Ada\n", "jsonl", f"the file does not start with '{{': {ONE_PER_LINE}"),
        (b"{\xe9}\n", "jsonl", f"line 1 is not valid UTF-8 (byte 0xe9 at position 2): {ONE_PER_LINE}"),
        (CSV[:100], "csv", None),
        (b"Email,CustomerName.FirstName,Emails.0.Email", "csv", None),  # the header goes on
        (b'{"Email": "ada@example.org"}\n', "csv", "the file looks like JSON, not CSV"),
        (b"Email,Name,Email\n", "csv", "'Email' appears twice"),
        (
            b"Email;Name;Phone\na;b;c\n",
            "csv",
            "the header has one column, 'Email;Name;Phone': a CSV file must be separated by commas",
        ),
        (b"", "csv", "the file is empty"),
        (BOM + b" \r\n\n", "jsonl", "the file is empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "csv", f"the file is a ZIP archive (an .xlsx workbook?), {NOT_TEXT}"),
        (b"\x1f\x8b\x08\x00", "jsonl", f"the file is gzip-compressed, {NOT_TEXT}"),
        ("Email\n".encode("utf-16"), "csv", "the file is UTF-16 text: save it as UTF-8"),
        (b'{"a": 1}\n\x00\x01\x02', "jsonl", "the file contains NUL bytes: it is binary, not text"),
    ],
)
def test_sniff_tells_early_when_a_file_is_clearly_not_its_format(first_bytes: bytes, fmt: str, reason: str | None) -> None:
    assert sniff(first_bytes, fmt) == reason  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------------------------


def random_jsonl(rng: random.Random) -> tuple[bytes, list[tuple[int, object]]]:
    """A file of records, blank lines and broken lines, with the records it holds."""
    alphabet = 'abcxyz é€😀"\\\t,'
    lines, expected = [], []
    for number in range(1, rng.randint(1, 60)):
        ending = rng.choice([b"\n", b"\r\n"])
        kind = rng.random()
        if kind < 0.15:
            lines.append(rng.choice([b"", b" ", b"\t"]) + ending)
            continue
        if kind < 0.25:
            lines.append(b'{"cut": "\xc3' + ending)  # a multi-byte character cut short
            expected.append((number, "line is not valid UTF-8 (byte 0xc3 at position 10)"))
            continue
        record = {"id": number, "name": "".join(rng.choices(alphabet, k=rng.randint(0, 20))), "tags": [rng.random()]}
        lines.append(json.dumps(record, ensure_ascii=rng.random() < 0.5).encode() + ending)
        expected.append((number, record))
    return b"".join(lines), expected


def test_random_jsonl_files_read_the_same_whatever_the_chunks() -> None:
    rng = random.Random(20261122)
    for _ in range(200):
        data, expected = random_jsonl(rng)
        whole = read(data, "jsonl")
        assert summary(whole) == expected
        assert read(data, "jsonl", chunk_size=rng.randint(1, 40)) == whole


cell = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)


def nested(identity: str, email: str, phone: str) -> dict[str, object]:
    """The record of the row (Id, Contact.Email, Contact.Phones.0), as the dotted header maps it."""
    contact = {"Email": email} if email else {}
    if phone:
        contact["Phones"] = [phone]
    record: dict[str, object] = {"Id": identity} if identity else {}
    return record | {"Contact": contact} if contact else record


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(cell, min_size=3, max_size=3), max_size=12),
    terminator=st.sampled_from(["\n", "\r\n"]),
    chunk_size=st.integers(1, 50),
)
def test_what_csv_writer_writes_reads_back_with_its_line_numbers(rows: list[list[str]], terminator: str, chunk_size: int) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=terminator)
    writer.writerow(["Id", "Contact.Email", "Contact.Phones.0"])
    expected = []
    for row in rows:
        line = text.getvalue().count("\n") + 1
        writer.writerow(row)
        if any(row):  # a row of empty cells is skipped like a blank line
            expected.append((line, nested(*row)))

    assert summary(read(text.getvalue().encode(), "csv", chunk_size=chunk_size)) == expected
