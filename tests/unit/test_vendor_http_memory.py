"""What a vendor request holds (jobrelay.vendors.http_memory): once its answer is read, the request and
its body are freed by reference counting, without waiting for the cyclic collector; a big body goes to
the transport in pieces; and answers and bodies arrive exactly as they would without either."""

import gc
import hashlib
import weakref
from collections.abc import Iterator

import httpx
import pytest

from jobrelay.vendors.http_memory import PiecewiseBodies, release_when_closed


class _Body(httpx.SyncByteStream):
    """An answer's body as a transport hands it over, which notes how often it is closed."""

    def __init__(self, chunks: list[bytes]):
        self._chunks = chunks
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    def close(self) -> None:
        self.closed += 1


class _Receiver(httpx.BaseTransport):
    """The far end: reads the request's stream as a socket writer would, piece by piece, and answers
    with what it received."""

    def __init__(self) -> None:
        self.pieces: list[int] = []
        self.received = b""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pieces = list(request.stream)
        self.pieces = [len(piece) for piece in pieces]
        self.received = b"".join(pieces)
        answer = {"received": len(self.received), "content_length": request.headers.get("content-length")}
        return httpx.Response(200, json=answer)


def _client(body: _Body | None = None) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        if body is not None:
            return httpx.Response(200, stream=body, headers={"content-type": "application/json"})
        return httpx.Response(200, json={"received": len(request.content)})

    return httpx.Client(transport=httpx.MockTransport(answer), event_hooks={"response": [release_when_closed]})


@pytest.fixture
def no_cycle_collection() -> Iterator[None]:
    """Only reference counting frees anything, as in a step between two runs of the collector."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_cycle_collection")
def test_a_big_request_is_freed_as_soon_as_its_answer_is_read() -> None:
    with _client() as client:
        sent = []
        for _ in range(3):
            response = client.post("https://vendor.example/stage", content=b"x" * 5_000_000)
            assert response.json() == {"received": 5_000_000}
            sent.append(weakref.ref(response.request))
            del response
        assert [request() for request in sent] == [None, None, None]


@pytest.mark.usefixtures("no_cycle_collection")
def test_a_streamed_answer_is_freed_once_its_reader_closes_it() -> None:
    body = _Body([b'{"a":', b" 1}"])
    with _client(body) as client:
        with client.stream("GET", "https://vendor.example/result") as response:
            assert b"".join(response.iter_bytes()) == b'{"a": 1}'
            request = weakref.ref(response.request)
        assert response.is_closed and body.closed == 1
        assert response.elapsed.total_seconds() >= 0
        del response
        assert request() is None


def test_answers_read_and_close_as_before() -> None:
    body = _Body([b'{"Status": ', b'"Staging"}'])
    with _client(body) as client:
        response = client.get("https://vendor.example/status")
    assert response.json() == {"Status": "Staging"}
    assert response.elapsed.total_seconds() >= 0  # set by httpx's own stream as it closes
    assert body.closed == 1  # the transport's stream is closed once, as without the hook
    response.close()  # closing again is harmless
    assert body.closed == 1
    with pytest.raises(httpx.StreamClosed):
        next(iter(response.stream))


def test_a_big_body_arrives_whole_in_pieces_with_its_length_and_content_kept() -> None:
    receiver = _Receiver()
    body = bytes(range(256)) * 10_000 + b"tail"  # 2,560,004 bytes: two whole pieces and a short one
    with httpx.Client(transport=PiecewiseBodies(receiver, piece_bytes=1_000_000)) as client:
        response = client.post("https://vendor.example/stage", content=body)
        assert response.request.content == body  # what the call log and an auth flow read
    assert response.json() == {"received": len(body), "content_length": str(len(body))}
    assert receiver.pieces == [1_000_000, 1_000_000, 560_004]
    assert hashlib.sha256(receiver.received).digest() == hashlib.sha256(body).digest()


def test_a_request_sent_again_sends_its_whole_body_again() -> None:
    """An auth flow that answers a 401 by signing again sends the same request object twice."""
    receiver = _Receiver()
    transport = PiecewiseBodies(receiver, piece_bytes=4)
    request = httpx.Request("POST", "https://vendor.example/stage", content=b"0123456789")
    for _ in range(2):
        transport.handle_request(request)
        assert receiver.received == b"0123456789" and receiver.pieces == [4, 4, 2]


@pytest.mark.parametrize(
    ("content", "pieces"),
    [(b"", [0]), (b"small", [5]), (iter([b"a streamed ", b"upload"]), [11, 6])],
    ids=["empty", "small", "streamed"],
)
def test_small_empty_and_streamed_bodies_go_as_they_are(content: bytes | Iterator[bytes], pieces: list[int]) -> None:
    receiver = _Receiver()
    with httpx.Client(transport=PiecewiseBodies(receiver, piece_bytes=8)) as client:
        response = client.post("https://vendor.example/x", content=content)
    assert receiver.pieces == pieces
    assert response.json()["received"] == sum(pieces)
