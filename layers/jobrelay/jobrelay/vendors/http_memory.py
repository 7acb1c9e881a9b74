"""What a vendor request holds in memory, and for how long: no longer than until its answer is read,
and no more than one copy of a piece of its body at a time. Both matter for stage requests (up to
25 MB each, jobrelay.bulk_import.batches), which a Stage step sends by the hundred.

`release_when_closed`, an httpx response event hook. httpx (0.28.1) wraps every response's stream in
a BoundSyncStream that holds the response itself, to set `response.elapsed` when the stream closes, so
every response is in a reference cycle, and with it its request and the whole body that was sent.
CPython frees a cycle only when its cyclic collector runs, after enough objects have been created and
not freed again; a Stage step creates hardly any that last (every record's objects go as the next is
read), so every stage body stayed in memory until the collector happened to run: the step grew by one
body per batch, to some 35 of them (912 MiB) for 10 million MyPreferences records (bench/staging.py;
encode/httpx#3733 proposes the same fix in httpx itself). The hook lets go of httpx's stream once it
is closed, which httpx does as soon as an answer has been read (a streamed one, when its reader closes
it): the response, its request and the body are then freed with the last reference to them, by
reference counting alone. Reading, closing twice, `elapsed` and the transports below (the call log's
recorder among them) behave as before.

`PiecewiseBodies`, a transport. httpcore writes a body to a plain TCP socket as
`while buffer: n = sock.send(buffer); buffer = buffer[n:]`, which copies what is left of it after
every partial send: for a 25 MB body, two copies of up to 25 MB at once, each a fresh allocation of
another size, which the allocator then keeps. (Python's TLS socket takes a whole buffer in one call,
so this is about plain-HTTP base URLs: the sandboxes, the local stack.) Handed the body in pieces of
PIECE_BYTES, it copies at most a piece. The request itself is unchanged (its content, its
Content-Length, what the call log and an auth flow read), only the stream the transport below sends
from.
"""

from collections.abc import Iterator

import httpx

PIECE_BYTES = 1024 * 1024


def release_when_closed(response: httpx.Response) -> None:
    """An httpx response event hook: `httpx.Client(event_hooks={"response": [release_when_closed]})`."""
    if not isinstance(response.stream, httpx.SyncByteStream):
        return
    releasing = _Releasing(response.stream)
    response.stream = releasing
    if response.is_closed:  # made whole before it got here (a mock transport's answer): nothing will close it now
        releasing.close()


class _Releasing(httpx.SyncByteStream):
    """A response's stream that lets go of httpx's own (which holds the response) once closed."""

    def __init__(self, bound: httpx.SyncByteStream):
        self._bound: httpx.SyncByteStream | None = bound

    def __iter__(self) -> Iterator[bytes]:
        if self._bound is None:
            raise httpx.StreamClosed()
        yield from self._bound

    def close(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None:
            bound.close()


class PiecewiseBodies(httpx.BaseTransport):
    """Sends through `inner`, a request body longer than `piece_bytes` in pieces of that size."""

    def __init__(self, inner: httpx.BaseTransport, piece_bytes: int = PIECE_BYTES):
        self._inner = inner
        self._piece_bytes = piece_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # Bytes content only (its stream is a ByteStream, read into the request): a streamed upload
        # already comes in pieces.
        if isinstance(request.stream, httpx.ByteStream):
            try:
                body = request.content
            except httpx.RequestNotRead:
                body = b""
            if len(body) > self._piece_bytes:
                request.stream = _Pieces(body, self._piece_bytes)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class _Pieces(httpx.SyncByteStream):
    """A body read out in pieces, from its start every time it is iterated (an auth flow may send a
    request again)."""

    def __init__(self, body: bytes, piece_bytes: int):
        self._body = body
        self._piece_bytes = piece_bytes

    def __iter__(self) -> Iterator[bytes]:
        view = memoryview(self._body)
        for start in range(0, len(view), self._piece_bytes):
            yield bytes(view[start : start + self._piece_bytes])
