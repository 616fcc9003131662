"""A real HTTP/1.1 proxy on 127.0.0.1 in front of a real server, with scripted faults:
what a client's retries meet on a network, reproduced on purpose.

For a request whose method and path have faults left, the next fault applies:
``"unavailable"`` answers 503 with ``Retry-After: 1`` from the proxy itself (the server
never sees the request); ``"drop"`` forwards the request and closes the connection
without the answer (the server acted on it, the client cannot know). Other requests
pass through.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType

import httpx

_BUSY = b'{"error": "the proxy says: unavailable, retry later"}'
UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY), _BUSY)
)
HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    fault: str | None


@dataclass
class FaultyProxy:
    upstream: str
    faults: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._upstream = httpx.AsyncClient(base_url=self.upstream, timeout=30)
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        self._server.close()
        await self._upstream.aclose()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._exchange(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its answer; False when the connection is to close."""
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.rstrip("\r\n").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = dict(_header(line) for line in lines)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        path = target.split("?", 1)[0]
        pending = self.faults.get((method, path), [])
        fault = pending.pop(0) if pending else None
        self.seen.append(Seen(method, path, headers, fault))
        if fault == "unavailable":
            writer.write(UNAVAILABLE)
            await writer.drain()
            return True
        answer = await self._upstream.request(
            method, target, headers=_forwarded(headers.items()), content=body
        )
        if fault == "drop":
            return False
        writer.write(_response(answer))
        await writer.drain()
        return True


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


def _forwarded(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name: value for name, value in headers if name not in HOP_BY_HOP}


def _response(answer: httpx.Response) -> bytes:
    lines = [f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}"]
    lines += [f"{k}: {v}" for k, v in _forwarded(answer.headers.items()).items()]
    lines.append(f"content-length: {len(answer.content)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer.content
