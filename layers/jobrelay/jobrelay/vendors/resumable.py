"""A download that goes on where it broke (RFC 9110, Range requests), never from the first byte.

A result file can be large (docs/DESIGN.md: 1 GiB in flat memory) and is streamed straight into the
result store. When its connection breaks, or the link answers 5xx for a moment, the download asks
again from the first byte it does not have (`Range: bytes=N-`), and the stream the result store
reads simply goes on: nothing is stored twice and the upload is not begun again. Each stretch that
brings bytes gives the retry budget back (jobrelay.domain.request_retries): only a download that
keeps failing without progress fails the job.

The docs of the vendors whose result links we read say nothing of ranges (docs/VENDORS.md 1.8), so
both answers are read: 206 with a Content-Range starting where we asked, appended as it comes; 200
(the whole file again: a server without ranges), whose first N bytes are read and dropped. A 206 for
another range, or a file whose length or ETag changed meanwhile, is a VendorProtocolError: the
pieces would not make one file.
"""

import re
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import httpx

from jobrelay.domain.errors import VendorProtocolError, VendorTransientError
from jobrelay.domain.request_retries import RequestRetry, Streak
from jobrelay.vendors.http import transport_errors_as_transient

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


@dataclass
class _SameFile:
    """What the first answer said of the file, for checking that a resumed answer is the same file."""

    length: int | None = None  # the whole file's length in bytes, when an answer gave it
    etag: str | None = None  # a strong ETag, sent back as If-Range so a changed file comes whole
    # A content-encoded (gzip) answer: ranges would count encoded bytes while we count decoded
    # ones, so such a file is asked for whole again and what we have is dropped.
    encoded: bool = False

    def learn(self, response: httpx.Response) -> None:
        self.encoded = self.encoded or _encoded(response)
        length = _whole_length(response)
        if self.length is None:
            self.length = length
        elif length is not None and length != self.length:
            raise VendorProtocolError(f"the file changed while it was downloaded: {self.length} bytes, now {length}")
        etag = response.headers.get("ETag")
        if self.etag is None and etag and not etag.startswith("W/"):
            self.etag = etag

    def range_headers(self, start: int) -> dict[str, str]:
        if start == 0 or self.encoded:
            return {}
        return {"Range": f"bytes={start}-", **({"If-Range": self.etag} if self.etag else {})}


def resumed_body(
    open_from: Callable[[dict[str, str]], AbstractContextManager[httpx.Response]],
    *,
    check: Callable[[httpx.Response], None],
    what: str,
    retry: RequestRetry,
    chunk_bytes: int,
) -> Generator[bytes]:
    """The file's bytes, in order, each once. `open_from(headers)` opens the link with these extra
    request headers (a Range to resume); `check(response)` raises the step error an unusable answer
    amounts to (VendorTransientError for a 5xx: retried here)."""
    received = 0
    file = _SameFile()
    streak = Streak(retry, what)
    while True:
        try:
            with open_from(file.range_headers(received)) as response:
                check(response)
                drop = _bytes_to_drop(response, received, file.etag, what)
                file.learn(response)
                for chunk in _body_chunks(response, chunk_bytes, what):
                    if drop:
                        dropped = min(drop, len(chunk))
                        chunk, drop = chunk[dropped:], drop - dropped
                    if chunk:
                        received += len(chunk)
                        streak.progressed()
                        yield chunk
            if file.length is not None and received != file.length:
                raise VendorTransientError(f"{what} was cut: {received} of {file.length} bytes arrived")
            return
        except VendorTransientError as error:
            streak.wait_after(error)


def _bytes_to_drop(response: httpx.Response, received: int, etag: str | None, what: str) -> int:
    """How many bytes at the start of this answer we already have."""
    if received == 0:
        return 0
    if response.status_code == 206:
        found = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if found is None or int(found.group(1)) != received:
            raise VendorProtocolError(
                f"{what}: asked to go on from byte {received}, the server sent the range "
                f"{response.headers.get('Content-Range')!r}"
            )
        return 0
    if etag is not None:  # we sent If-Range: a whole answer means the file is not the one we began
        raise VendorProtocolError(f"{what}: the file changed while it was downloaded (its ETag is no longer {etag})")
    return received  # a server without ranges sends it all again


def _whole_length(response: httpx.Response) -> int | None:
    """The whole file's length in the bytes we count (decoded), when the answer says it."""
    if response.status_code == 206:
        found = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        return int(found.group(3)) if found and found.group(3) != "*" else None
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() and not _encoded(response) else None


def _encoded(response: httpx.Response) -> bool:
    return response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")


def _body_chunks(response: httpx.Response, chunk_bytes: int, what: str) -> Iterator[bytes]:
    """The body in chunks of about `chunk_bytes`. The bytes that arrived before a broken connection
    are given out before its error: the download goes on after them."""
    pending: list[bytes] = []
    size = 0
    broken: httpx.TransportError | None = None
    try:
        for piece in response.iter_bytes():
            pending.append(piece)
            size += len(piece)
            if size >= chunk_bytes:
                joined = b"".join(pending)
                for start in range(0, size - chunk_bytes + 1, chunk_bytes):
                    yield joined[start : start + chunk_bytes]
                rest = joined[size - size % chunk_bytes :]
                pending, size = [rest], len(rest)
    except httpx.TransportError as error:
        broken = error
    if size:
        yield b"".join(pending)
    if broken is not None:
        with transport_errors_as_transient(what):
            raise broken
    # Compared with the bytes on the wire (before any content decoding), which Content-Length counts.
    expected = response.headers.get("Content-Length", "")
    if expected.isdigit() and int(expected) != response.num_bytes_downloaded:
        raise VendorTransientError(f"{what} was cut: {response.num_bytes_downloaded} of {expected} bytes arrived")
