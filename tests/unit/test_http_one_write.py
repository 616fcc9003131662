"""One write per small response (entrypoints/http/protocol.py): uvicorn's httptools
protocol, with our subclass, driven over a transport that records each write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from entrypoints.http.protocol import ONE_WRITE_MAX_BYTES, GuardedHttpToolsProtocol

ASGIApp = Any


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


async def exchange(app: ASGIApp, request: bytes) -> RecordingTransport:
    config = Config(app, http=GuardedHttpToolsProtocol, log_level="critical", lifespan="off")
    config.load()
    protocol = GuardedHttpToolsProtocol(config, ServerState(), {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(50):
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport


def answering(body: bytes, *, chunks: int = 1, length: bool = True) -> ASGIApp:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-length", b"%d" % (len(body) * chunks))] if length else []
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index in range(chunks):
            more = index < chunks - 1
            await send({"type": "http.response.body", "body": body, "more_body": more})

    return app


GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


async def test_a_small_response_goes_out_in_one_write() -> None:
    transport = await exchange(answering(b'{"ok":true}'), GET)
    (write,) = transport.writes
    assert write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(b'\r\n\r\n{"ok":true}')


async def test_an_empty_body_goes_out_with_its_head() -> None:
    transport = await exchange(answering(b""), GET)
    (write,) = transport.writes
    assert write.endswith(b"content-length: 0\r\n\r\n")


@pytest.mark.parametrize(
    ("app", "request_bytes"),
    [
        (answering(b"x" * (ONE_WRITE_MAX_BYTES + 1)), GET),  # large: as it comes
        (answering(b"chunk", chunks=3, length=False), GET),  # streamed (chunked)
        (answering(b"body"), b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n"),  # no body to wait for
    ],
)
async def test_other_responses_write_their_head_at_once(app: ASGIApp, request_bytes: bytes) -> None:
    transport = await exchange(app, request_bytes)
    assert transport.writes[0].endswith(b"\r\n\r\n")


async def test_a_head_held_for_a_body_that_never_comes_is_written_before_the_close() -> None:
    async def fails_after_the_head(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"10")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        raise RuntimeError("the body could not be made")

    transport = await exchange(fails_after_the_head, GET)
    (write,) = transport.writes
    assert write.startswith(b"HTTP/1.1 200 OK") and write.endswith(b"\r\n\r\n")
    assert transport.closed


async def test_100_continue_is_written_before_the_body_is_read() -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive())["body"]
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    request = (
        b"POST / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"
    )
    transport = await exchange(echo, request)
    continued, answer = transport.writes
    assert continued == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\nhi")
