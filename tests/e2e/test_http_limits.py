"""Connection limits of a real ``taskq api`` (uvicorn + the guarded protocol) on
loopback: header size and count (431), slow headers and stalled bodies (408), open
connections (503), and a lingering close so an early 413 reaches urllib."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Server, running_server
from tests.support.raw_http import Exchange, rss_kib, send_slowly, send_until_answered

pytestmark = pytest.mark.e2e

TIMEOUT = 1.0
"""The header and body-idle timeouts of the server under test, seconds."""
GET = b"GET /health HTTP/1.1\r\nHost: test\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "TASKQ_BACKEND": "memory",
        "TASKQ_HEADER_TIMEOUT_SECONDS": str(TIMEOUT),
        "TASKQ_BODY_IDLE_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    with running_server(tmp_path_factory.mktemp("limits"), env=env, command="api") as server:
        yield server


def port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def huge_header(server: Server, size: int) -> Exchange:
    return send_until_answered(
        port(server), GET + b"X-Big: ", filler=b"a" * 65536, filler_bytes=size
    )


def test_ten_clients_sending_20_mb_headers_get_431_and_the_server_stays_small(
    server: Server,
) -> None:
    assert huge_header(server, 1024 * 1024).status == 431  # warm up the code path
    before = rss_kib(server.process.pid)

    results: list[Exchange] = []
    threads = [
        threading.Thread(target=lambda: results.append(huge_header(server, 20 * 1024 * 1024)))
        for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    peak = before
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_kib(server.process.pid))
        time.sleep(0.01)
    for thread in threads:
        thread.join()

    assert [r.status for r in results] == [431] * 10, [r.response[:80] for r in results]
    assert all(r.sent < 20 * 1024 * 1024 for r in results)  # refused before the end
    assert b"larger than 65536 bytes" in results[0].response
    assert peak - before < 4 * 1024, f"RSS grew {peak - before} KiB"


@pytest.mark.parametrize(
    "head",
    [
        GET + b"X-Big: " + b"a" * (8 * 1024 * 1024) + b"\r\n\r\n",
        GET + b"".join(b"X-%d: v\r\n" % n for n in range(10_000)) + b"\r\n",
        GET + b"".join(b"X-%d: v\r\n" % n for n in range(101)) + b"\r\n",
    ],
    ids=["8 MB header", "10,000 headers", "101 headers"],
)
def test_oversized_or_too_many_headers_are_431(server: Server, head: bytes) -> None:
    exchange = send_until_answered(port(server), head)

    assert exchange.status == 431, exchange.response[:200]
    assert b"connection: close" in exchange.response.lower()


def test_headers_just_under_the_limits_are_served(server: Server) -> None:
    headers = {f"x-{n}": "v" * 500 for n in range(95)}  # ~50 KiB in 95 headers
    response = httpx.get(server.url + "/health", headers=headers)

    assert response.status_code == 200


def test_a_body_arriving_with_the_headers_past_the_header_limit_is_read_as_body(
    server: Server,
) -> None:
    # Past the 64 KiB header limit, within the 192 KiB payload limit.
    task = {"type": "email", "payload": {"to": "a@b.io", "note": "a" * 150_000}}
    body = json.dumps(task).encode()
    head = (
        b"POST /tasks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    exchange = send_until_answered(port(server), head + body)  # one write: one read

    assert exchange.status == 201, exchange.response[:300]


def test_headers_sent_too_slowly_are_408_within_the_timeout(server: Server) -> None:
    parts = [b"GET /health HTTP/1.1\r\n"] + [b"X-Slow: 1\r\n"] * 40
    exchange = send_slowly(port(server), parts, pause=0.2)

    assert exchange.status == 408, exchange.response
    assert b"request headers not received within 1 s" in exchange.response
    assert exchange.seconds < TIMEOUT + 7  # the 408, then at most the linger


def test_a_connection_that_sends_nothing_is_closed_with_408(server: Server) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as sock:
        response = sock.recv(65536)

    assert response.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < TIMEOUT + 2


def test_a_stalled_body_is_408_and_the_connection_closed(server: Server) -> None:
    head = (
        b"POST /tasks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as sock:
        sock.sendall(head)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk

    assert response.startswith(b"HTTP/1.1 408 "), response
    assert b"request body stalled" in response
    assert time.monotonic() - started < TIMEOUT + 2


def test_a_body_stalled_after_an_early_413_closes_without_a_second_answer(
    server: Server,
) -> None:
    head = (
        b"POST /tasks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2097152\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port(server)), timeout=10) as sock:
        sock.sendall(head + b"x" * 1000)  # keep-alive, then silence
        response = b""
        while chunk := sock.recv(65536):
            response += chunk

    assert response.startswith(b"HTTP/1.1 413 ")
    assert response.count(b"HTTP/1.1 ") == 1, response


def test_a_body_sent_slowly_but_steadily_is_not_cut_off(server: Server) -> None:
    body = json.dumps({"type": "email", "payload": "slow@example.com"}).encode()
    head = (
        b"POST /tasks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    pieces = [body[n : n + 8] for n in range(0, len(body), 8)]  # ~2 s in all
    exchange = send_slowly(port(server), [head, *pieces], pause=TIMEOUT / 3)

    assert exchange.status == 201, exchange.response


def test_an_early_413_reaches_urllib_every_time(server: Server) -> None:
    statuses: list[int | str] = []
    for _ in range(20):
        request = urllib.request.Request(
            server.url + "/tasks",
            data=b"x" * (2 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
            exc.close()
        except OSError as exc:
            statuses.append(type(exc).__name__)

    assert statuses == [413] * 20


def test_past_max_connections_a_client_gets_503_and_later_is_served(tmp_path: Path) -> None:
    env = {"TASKQ_BACKEND": "memory", "TASKQ_MAX_CONNECTIONS": "4"}
    with running_server(tmp_path, env=env, command="api") as server:
        held = [socket.create_connection(("127.0.0.1", port(server))) for _ in range(4)]
        try:
            time.sleep(0.2)  # all four accepted
            crowded = httpx.get(server.url + "/health", headers={"Connection": "close"})
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        served = httpx.get(server.url + "/health")

    assert crowded.status_code == 503
    assert crowded.headers["retry-after"] == "1"
    assert "too many open connections" in crowded.json()["error"]
    assert served.status_code == 200
