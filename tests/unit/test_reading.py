"""Property tests of the reading layer every vendor adapter shares (jobrelay.vendors.reading), and of
the excerpts kept of answers we could not read (jobrelay.vendors.redaction): whatever shape or
spelling a vendor's docs allow, no record is lost, none is read twice, and no secret leaves."""

import json
import math
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from jobrelay.domain.errors import VendorProtocolError
from jobrelay.vendors.reading import (
    CaselessModel,
    Page,
    PageTally,
    as_int,
    collection,
    fold,
    follow_pages,
    has_key,
    lookup,
    nothing,
)
from jobrelay.vendors.redaction import MASK, excerpt, register_secret

KEY_NAMES = st.from_regex(r"[a-z]{1,8}(_[a-z]{1,6})?", fullmatch=True)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))
RECORDS = st.dictionaries(KEY_NAMES.filter(lambda k: fold(k) != "id"), SCALARS, min_size=1, max_size=5)


def respelled(key: str, data: st.DataObject) -> str:
    """`key` in a casing and with separators a vendor's docs might use."""
    cased = "".join(c.upper() if data.draw(st.booleans()) else c for c in key)
    return cased.replace("_", data.draw(st.sampled_from(["_", "-", "", " "])))


# --- keys --------------------------------------------------------------------------------------------


@given(key=KEY_NAMES, value=SCALARS, data=st.data())
def test_lookup_finds_a_key_in_any_casing_and_separators(key, value, data):
    mapping = {respelled(key, data): value}
    assert lookup(mapping, key, default="missing") == value
    assert has_key(mapping, respelled(key, data))


@given(key=KEY_NAMES, data=st.data())
def test_lookup_takes_the_first_of_several_names_the_mapping_holds(key, data):
    other = key + "x"
    mapping = {respelled(other, data): 2, respelled(key, data): 1}
    assert lookup(mapping, key, other) == 1 and lookup(mapping, "absent", other) == 2
    assert lookup(mapping, "absent", default=None) is None and not has_key(mapping, "absent")


@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers())))
def test_lookup_in_something_that_is_not_an_object_is_the_default(value):
    assert lookup(value, "x", default="d") == "d"


class Counts(CaselessModel):
    total_records_received: int
    job_id: str | None = None


@given(total=st.integers(), data=st.data())
def test_caseless_models_fill_fields_from_any_spelling(total, data):
    parsed = Counts.model_validate({respelled("total_records_received", data): total, respelled("job_id", data): "7"})
    assert (parsed.total_records_received, parsed.job_id) == (total, "7")


# --- numbers -----------------------------------------------------------------------------------------


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_whole_numbers_read_alike_as_numbers_and_as_strings(number):
    assert as_int(number) == as_int(str(number)) == as_int(f" {number} ") == as_int(float(number)) == number


def _not_whole(number: float) -> bool:
    return math.isnan(number) or math.isinf(number) or not number.is_integer()


@given(
    st.one_of(
        st.booleans(),
        st.none(),
        st.floats().filter(_not_whole),
        st.text().filter(lambda t: not re.fullmatch(r"\s*[+-]?\d+\s*", t)),
    )
)
def test_anything_else_is_not_a_number(value):
    assert as_int(value) is None


# --- collections -------------------------------------------------------------------------------------


@given(records=st.lists(RECORDS, max_size=8))
def test_a_list_is_its_records(records):
    assert collection(records, id_key="id", what="x") == records


@given(
    records=st.dictionaries(st.from_regex(r"[0-9]{1,6}", fullmatch=True), RECORDS, min_size=1, max_size=8),
    id_key=st.sampled_from(["jobid", "sendid", "id"]),
)
def test_an_object_keyed_by_id_keeps_every_record_and_writes_its_key_in(records, id_key):
    assume(all(not has_key(record, id_key) for record in records.values()))
    read = collection(records, id_key=id_key, what="x")
    assert len(read) == len(records)
    assert [r[id_key] for r in read] == list(records)  # in the vendor's order
    assert [{k: v for k, v in r.items() if k != id_key} for r in read] == list(records.values())


@given(records=st.dictionaries(st.from_regex(r"[0-9]{1,6}", fullmatch=True), RECORDS, min_size=1, max_size=5), data=st.data())
def test_a_record_that_holds_its_id_already_keeps_it(records, data):
    spelled = respelled("job_id", data)
    inside = {key: {**record, spelled: f"own-{key}"} for key, record in records.items()}
    read = collection(inside, id_key="jobid", what="x")
    assert read == list(inside.values())


@given(record=RECORDS)
def test_a_single_object_is_one_record(record):
    assume(not all(isinstance(v, dict) for v in record.values()))
    assert collection(record, id_key="id", what="x") == [record]


@given(st.sampled_from([None, "", [], {}]))
def test_nothing_is_no_record(value):
    assert nothing(value) and collection(value, id_key="id", what="x") == []


@given(
    items=st.lists(st.one_of(st.integers(), st.text(), st.lists(st.integers())), min_size=1, max_size=4),
    records=st.lists(RECORDS, max_size=3),
)
def test_an_item_that_is_not_an_object_is_a_protocol_error_naming_the_collection(items, records):
    with pytest.raises(VendorProtocolError, match="the pages: item"):
        collection(records + items, id_key="id", what="the pages")


# --- pages -------------------------------------------------------------------------------------------


def vendor(total: int, cap: int, *, next_style: str = "number", say_more: bool = True, log: list | None = None):
    """A paginated vendor holding records 0..total-1, sending at most `cap` a page whatever we ask for.
    next_style "number": its next is the record after those it sent (the docs); "cursor": an opaque
    token; "none": it says nothing about more pages (say_more False: it says "no more" on the last)."""
    cursors = {f"c{n}": n for n in range(total + 1)}

    def fetch(offset: int, cursor: str | None) -> Page:
        start = cursors[cursor] if cursor is not None else offset
        if log is not None:
            log.append(start)
        records = [{"n": n} for n in range(start, min(start + cap, total))]
        end = start + len(records)
        if next_style == "none":
            return Page(records=records, more=None)
        if end >= total:
            return Page(records=records, more=False)
        if next_style == "cursor":
            return Page(records=records, more=True, cursor=f"c{end}")
        return Page(records=records, more=True, vendor_next=end)

    return fetch


@given(
    total=st.integers(0, 300),
    cap=st.integers(1, 50),
    limit=st.integers(1, 80),
    next_style=st.sampled_from(["number", "cursor", "none"]),
)
def test_pages_capped_at_any_size_give_every_record_exactly_once_and_end(total, cap, limit, next_style):
    tally = PageTally()
    pages = list(
        follow_pages(vendor(total, min(cap, limit), next_style=next_style), first=0, what="x", max_pages=1000, tally=tally)
    )
    numbers = [record["n"] for page in pages for record in page.records]
    assert numbers == list(range(total))
    assert tally.records == total and tally.pages == len(pages) and tally.next_disagreements == []


@given(total=st.integers(1, 200), cap=st.integers(1, 20), extra=st.integers(1, 20))
def test_a_next_counted_from_the_limit_asked_is_tallied_and_nothing_is_skipped(total, cap, extra):
    """The vendor sends `cap` records but says the next page starts `cap + extra` later."""
    asked: list[int] = []

    def fetch(offset: int, cursor: str | None) -> Page:
        asked.append(offset)
        records = [{"n": n} for n in range(offset, min(offset + cap, total))]
        end = offset + len(records)
        return Page(records=records, more=end < total, vendor_next=offset + cap + extra)

    tally = PageTally()
    numbers = [r["n"] for page in follow_pages(fetch, first=0, what="x", max_pages=1000, tally=tally) for r in page.records]
    assert numbers == list(range(total))
    assert asked == list(range(0, total, cap))  # each page from the records actually received
    assert len(tally.next_disagreements) == len(asked) - 1


@given(first=st.integers(0, 1), records=st.lists(RECORDS, min_size=1, max_size=4))
def test_a_page_that_repeats_the_one_before_is_a_protocol_error(first, records):
    calls = []

    def fetch(offset: int, cursor: str | None) -> Page:
        calls.append(offset)
        return Page(records=records, more=True, vendor_next=offset + len(records))

    with pytest.raises(VendorProtocolError, match="repeats"):
        list(follow_pages(fetch, first=first, what="x", max_pages=100))
    assert len(calls) == 2


@given(max_pages=st.integers(1, 30))
def test_pages_that_never_end_stop_at_the_cap(max_pages):
    def fetch(offset: int, cursor: str | None) -> Page:
        return Page(records=[{"n": offset}], more=True)

    with pytest.raises(VendorProtocolError, match=f"did not end after {max_pages} pages"):
        list(follow_pages(fetch, first=0, what="x", max_pages=max_pages))


def test_a_cursor_seen_before_is_a_protocol_error():
    def fetch(offset: int, cursor: str | None) -> Page:
        return Page(records=[{"n": offset}], more=True, cursor="same")

    with pytest.raises(VendorProtocolError, match="'same' again"):
        list(follow_pages(fetch, first=0, what="x", max_pages=10))


# --- excerpts ----------------------------------------------------------------------------------------

# Tokens as accounts hold them: letters and digits, at least one letter (an all-digit one is below).
SECRETS = st.from_regex(r"[A-Za-z0-9]{6,12}[A-Za-z][A-Za-z0-9]{5,11}", fullmatch=True)


@given(secret=SECRETS, before=st.text(max_size=50), after=st.text(max_size=50))
def test_a_registered_secret_never_appears_in_an_excerpt_of_text(secret, before, after):
    register_secret(secret)
    shown = excerpt(f"{before}{secret}{after}".encode())
    assert secret not in shown


@given(secret=SECRETS, key=st.sampled_from(["usertoken", "UserToken", "api_key", "password", "client_secret"]), other=RECORDS)
def test_values_under_secret_keys_are_masked_however_deep(secret, key, other):
    shown = excerpt({"response": {"data": [{**other, key: secret}]}})
    assert secret not in shown and MASK in shown


@given(text=st.text(min_size=1, max_size=5000), limit=st.integers(20, 500))
def test_an_excerpt_is_bounded_and_says_how_long_the_answer_was(text, limit):
    shown = excerpt(text, limit=limit)
    assert len(shown) <= limit + 40
    if len(" ".join(text.split())) > limit:
        assert shown.endswith("characters in all)")


def test_a_url_query_is_masked():
    shown = excerpt(json.dumps({"url": "https://files.example.org/r.json?signature=abcdef123456&x=1"}))
    assert "abcdef123456" not in shown and "https://files.example.org/r.json" in shown


def test_an_all_digit_secret_sent_back_as_a_json_number_is_masked():
    register_secret("100000000007")
    assert "100000000007" not in excerpt(b'{"echo": 100000000007}')


def test_a_paging_error_shows_the_answer_the_offending_page_came_in():
    def fetch(offset, cursor):
        return Page(records=[{"id": 1}], more=True, answer=lambda: '{"records": [{"id": 1}], "more": true}')

    with pytest.raises(VendorProtocolError, match="repeats page 1") as stuck:
        list(follow_pages(fetch, first=0, what="the vendor's pages", max_pages=10))
    assert stuck.value.answer == '{"records": [{"id": 1}], "more": true}'


def test_a_vendors_error_reason_that_echoes_a_credential_never_shows_it():
    from jobrelay.vendors.http import said
    from jobrelay.vendors.redaction import register_secret

    register_secret("tok-7d1e55a0c4")
    assert "tok-7d1e55a0c4" not in said("invalid usertoken tok-7d1e55a0c4 for user jane")
    assert said("invalid usertoken tok-7d1e55a0c4").startswith(": invalid usertoken ")
