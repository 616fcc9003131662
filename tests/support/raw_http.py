"""HTTP by hand over a socket: what a hostile or careless client does that httpx won't
(oversized or endless headers, stalled bodies, idle connections)."""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Exchange:
    """What came back, how much of the request went out, and how long it took."""

    response: bytes
    sent: int
    seconds: float

    @property
    def status(self) -> int | None:
        if not self.response.startswith(b"HTTP/1.1 "):
            return None
        return int(self.response[9:12])


def send_until_answered(
    port: int, head: bytes, filler: bytes = b"", filler_bytes: int = 0, timeout: float = 20
) -> Exchange:
    """Send ``head`` and then ``filler`` repeated up to ``filler_bytes``, stopping as
    soon as the server answers (as curl does); read until the server closes."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setblocking(False)
    pending, sent, response = head, 0, b""
    try:
        while time.monotonic() - started < timeout:
            sending = bool(pending) or sent < len(head) + filler_bytes
            readable, writable, _ = select.select([sock], [sock] if sending else [], [], 1)
            if readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                response += data
                pending, filler_bytes = b"", 0  # answered: stop sending, as curl does
            elif writable:
                if not pending:
                    pending = filler
                try:
                    count = sock.send(pending)
                except OSError:
                    pending, filler_bytes = b"", 0
                    continue
                sent += count
                pending = pending[count:]
    finally:
        sock.close()
    return Exchange(response, sent, time.monotonic() - started)


def send_slowly(port: int, parts: list[bytes], pause: float, timeout: float = 20) -> Exchange:
    """Send ``parts`` one by one, ``pause`` seconds apart (stopping when the server
    answers or closes), then read until it closes."""
    started = time.monotonic()
    sent, response = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for part in parts:
            readable, _, _ = select.select([sock], [], [], pause)
            if readable:
                break
            try:
                sock.sendall(part)
            except OSError:
                break
            sent += len(part)
        try:
            while chunk := sock.recv(65536):
                response += chunk
        except OSError:
            pass
    return Exchange(response, sent, time.monotonic() - started)


def rss_kib(pid: int) -> int:
    """The resident set size of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")
