"""A download that breaks goes on where it broke (jobrelay.vendors.resumable), on answers the sandbox
does not give: a 206 for another range, a changed file behind an ETag, a compressed body."""

import gzip
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from jobrelay.domain.errors import VendorProtocolError, VendorTransientError, VendorUnavailable
from jobrelay.domain.request_retries import RequestRetry
from jobrelay.vendors.resumable import resumed_body

FILE = bytes(range(256)) * 40  # 10 KiB


class Broken(httpx.SyncByteStream):
    """A body that sends `data[:cut]`, then its connection breaks (all of a shorter one, unbroken)."""

    def __init__(self, data: bytes, cut: int | None):
        self._data, self._cut = data, (cut if cut is not None and cut < len(data) else None)

    def __iter__(self) -> Iterator[bytes]:
        end = len(self._data) if self._cut is None else self._cut
        for start in range(0, end, 1000):
            yield self._data[start : min(start + 1000, end)]
        if self._cut is not None:
            raise httpx.ReadError("connection reset")


class Server:
    """Answers each GET with the next of `answers(request)`, recording the Range asked for."""

    def __init__(self, answer):
        self.asked: list[dict[str, str | None]] = []
        self._answer = answer
        self.client = httpx.Client(transport=httpx.MockTransport(self._handle))

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.asked.append({"range": request.headers.get("Range"), "if-range": request.headers.get("If-Range")})
        return self._answer(request, len(self.asked))

    def download(self, waits: list[float] | None = None) -> bytes:
        @contextmanager
        def open_from(headers: dict[str, str]) -> Iterator[httpx.Response]:
            with self.client.stream("GET", "https://files.example.org/555.json", headers=headers) as response:
                yield response

        body = resumed_body(
            open_from,
            check=check,
            what="the download",
            retry=RequestRetry(sleep=(waits if waits is not None else []).append),
            chunk_bytes=4096,
        )
        return b"".join(body)


def check(response: httpx.Response) -> None:
    if response.status_code >= 500:
        raise VendorTransientError(f"HTTP {response.status_code}")


def ranged(request: httpx.Request, data: bytes, cut: int | None = None, **headers: str) -> httpx.Response:
    found = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range", ""))
    if not found:
        return httpx.Response(200, headers={"Content-Length": str(len(data)), **headers}, stream=Broken(data, cut))
    first = int(found.group(1))
    rest = data[first:]
    range_headers = {"Content-Range": f"bytes {first}-{len(data) - 1}/{len(data)}", "Content-Length": str(len(rest))}
    return httpx.Response(206, headers={**range_headers, **headers}, stream=Broken(rest, cut))


def test_each_break_is_resumed_from_the_byte_it_broke_at():
    server = Server(lambda request, n: ranged(request, FILE, cut=1500 if n <= 8 else None))
    waits: list[float] = []

    assert server.download(waits) == FILE

    assert [a["range"] for a in server.asked] == [None] + [f"bytes={1500 * n}-" for n in range(1, 7)]
    assert len(waits) == 6  # six breaks, each after progress: the budget came back every time


def test_a_strong_etag_is_sent_back_as_if_range():
    server = Server(lambda request, n: ranged(request, FILE, cut=3000 if n == 1 else None, ETag='"v1"'))
    assert server.download() == FILE
    assert server.asked[1] == {"range": "bytes=3000-", "if-range": '"v1"'}


def test_a_whole_answer_to_if_range_means_the_file_changed():
    def answer(request: httpx.Request, n: int) -> httpx.Response:
        if n == 1:
            return ranged(request, FILE, cut=3000, ETag='"v1"')
        return httpx.Response(200, headers={"ETag": '"v2"'}, content=FILE)  # If-Range failed: the new file, whole

    with pytest.raises(VendorProtocolError, match="changed while it was downloaded"):
        Server(answer).download()


def test_a_range_other_than_the_one_asked_for_is_refused():
    def answer(request: httpx.Request, n: int) -> httpx.Response:
        if n == 1:
            return ranged(request, FILE, cut=3000)
        return httpx.Response(206, headers={"Content-Range": f"bytes 0-{len(FILE) - 1}/{len(FILE)}"}, content=FILE)

    with pytest.raises(VendorProtocolError, match="go on from byte 3000"):
        Server(answer).download()


def test_a_compressed_file_is_asked_for_whole_again_and_its_bytes_are_not_stored_twice():
    packed = gzip.compress(FILE)

    def answer(request: httpx.Request, n: int) -> httpx.Response:
        assert "Range" not in request.headers  # ranges would count compressed bytes
        headers = {"Content-Encoding": "gzip", "Content-Length": str(len(packed))}
        return httpx.Response(200, headers=headers, stream=Broken(packed, cut=len(packed) // 2 if n == 1 else None))

    assert Server(answer).download() == FILE


def test_a_download_that_breaks_before_any_byte_every_time_ends_as_an_unavailable_vendor():
    waits: list[float] = []
    server = Server(lambda request, n: ranged(request, FILE, cut=0))
    with pytest.raises(VendorUnavailable, match="the download failed 6 times in a row"):
        server.download(waits)
    assert len(server.asked) == 6 and len(waits) == 5
