"""A small HTTP/1.1 keep-alive load generator on asyncio streams.

httpx spends more CPU per request than the server under test does, and on a 2-core
machine the load generator must not be the bottleneck; this client writes requests and
parses answers (status line, Content-Length) by hand. Each connection carries one
request at a time; ``connections`` bounds the concurrency.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    pass


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self._reader = reader
        self._writer = writer
        self._host = host

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Length: {len(data)}\r\n"
        if data:
            head += "Content-Type: application/json\r\n"
        self._writer.write(head.encode() + b"\r\n" + data)
        status_line = await self._reader.readline()
        if not status_line:
            raise HttpError("connection closed")
        status = int(status_line.split(b" ", 2)[1])
        length, is_json = 0, False
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"content-type":
                is_json = b"json" in value.lower()
        payload = await self._reader.readexactly(length) if length else b""
        if not payload:
            return status, None
        return status, json.loads(payload) if is_json else payload  # a page: its bytes

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass


@dataclass
class SubmitResult:
    submitted: int
    errors: int
    first_submit: float
    last_submit: float
    refused: int = 0
    """503s (back-pressure, with Retry-After): counted in ``errors`` too."""
    ids: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


async def submit_many(
    url: str,
    count: int,
    body: Callable[[int], Any],
    *,
    connections: int = 32,
    time_limit: float = 120.0,
    keep_ids: bool = False,
    max_outstanding: Callable[[], bool] | None = None,
) -> SubmitResult:
    """POST /tasks ``count`` times over ``connections`` keep-alive connections; stop
    early after ``time_limit`` seconds."""
    conns = [await Connection.open(url) for _ in range(connections)]
    result = SubmitResult(0, 0, time.perf_counter(), 0.0)
    next_index = 0
    deadline = time.perf_counter() + time_limit

    async def run(conn: Connection) -> None:
        nonlocal next_index
        while next_index < count and time.perf_counter() < deadline:
            if max_outstanding is not None:
                while max_outstanding():
                    await asyncio.sleep(0.001)
            index = next_index
            next_index += 1
            started = time.perf_counter()
            status, answer = await conn.request("POST", "/tasks", body(index))
            result.latencies.append(time.perf_counter() - started)
            if status != 201:
                result.errors += 1
                result.refused += status == 503
                continue
            result.submitted += 1
            if keep_ids:
                result.ids.append(answer["id"])

    try:
        await asyncio.gather(*(run(c) for c in conns))
    finally:
        result.last_submit = time.perf_counter()
        await asyncio.gather(*(c.close() for c in conns))
    return result


async def wait_completed(
    url: str, target: int, *, time_limit: float = 120.0, interval: float = 0.02
) -> tuple[float, dict[str, Any]]:
    """Poll GET /metrics until ``completed_tasks`` reaches ``target``; return the time
    it was first seen there (perf_counter) and the metrics."""
    conn = await Connection.open(url)
    deadline = time.perf_counter() + time_limit
    try:
        while True:
            status, metrics = await conn.request("GET", "/metrics")
            if status != 200:
                raise HttpError(f"GET /metrics answered {status}: {metrics}")
            if metrics["completed_tasks"] >= target:
                return time.perf_counter(), metrics
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{metrics['completed_tasks']} of {target} completed: {metrics}")
            await asyncio.sleep(interval)
    finally:
        await conn.close()


async def wait_drained(url: str, *, time_limit: float = 120.0) -> dict[str, Any]:
    """Poll GET /metrics until no task is PENDING or PROCESSING; return the metrics."""
    conn = await Connection.open(url)
    deadline = time.perf_counter() + time_limit
    try:
        while True:
            _, metrics = await conn.request("GET", "/metrics")
            if metrics["pending_tasks"] == 0 and metrics["processing_tasks"] == 0:
                return dict(metrics)
            if time.perf_counter() > deadline:
                raise TimeoutError(f"not drained after {time_limit}s: {metrics}")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
