"""uvicorn's httptools protocol with the connection limits it lacks.

uvicorn (httptools) buffers request headers without bound, waits forever for a client
that sends its headers or body slowly, accepts any number of connections, and closes a
``Connection: close`` exchange while the client may still be sending the body it was
refused for, so the client sees a reset instead of the answer. This subclass adds:

- header bytes and header count per request: 431, counted in ``data_received`` only
  until the headers are complete (the parser never holds more than the limit);
- the time to receive a request's headers, and the silence allowed while its body
  arrives: 408;
- open connections per process: one more is answered 503 and closed;
- a lingering close: after an answer that ends the connection before the request was
  read (413, 431, 408, 503), up to ``LINGER_MAX_BYTES`` more are read and discarded for
  up to ``LINGER_SECONDS``, so an ordinary client that sends its whole body before
  reading gets the status instead of a reset;
- one write per small response: uvicorn writes a response's head and body apart, two
  sends on the socket per request (``_CycleTransport`` joins them).

The per-request cost is a few attribute checks and two clock reads: one per-connection
timer checks the deadlines and re-arms itself, instead of a timer per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from asyncio import TimerHandle
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from bootstrap.settings import Settings

log = logging.getLogger("taskq.http")

LINGER_SECONDS = 5.0
"""How long a connection being closed after an early answer keeps discarding input."""
LINGER_MAX_BYTES = 8 * 1024 * 1024
"""How much of a refused request's remainder is read and discarded before closing."""
ONE_WRITE_MAX_BYTES = 64 * 1024
"""A response with a body up to this size goes out in one write, head and body."""
CROWDED_WARNING_INTERVAL_SECONDS = 10.0
"""At most one log line this often about connections refused for being over the limit."""

# Where a connection is in its current request (ints: compared on every read).
_HEADERS = 0  # receiving the request line and headers (or nothing yet)
_BODY = 1  # headers complete, body not
_IDLE = 2  # request read: the app answers, or the connection waits for the next one
_LINGER = 3  # answered and closing: input is discarded


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 100
    header_timeout: float = 10.0
    body_idle_timeout: float = 30.0
    max_connections: int = 4096

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            header_timeout=settings.header_timeout_seconds,
            body_idle_timeout=settings.body_idle_timeout_seconds,
            max_connections=settings.max_connections,
        )


class _TooManyHeaders(Exception):
    """Raised from the parser callback to stop parsing (httptools then raises a
    ``HttpParserCallbackError``, which uvicorn answers through ``send_400_response``)."""


class _CrowdedWarning:
    def __init__(self) -> None:
        self.refused = 0
        self.next_at = 0.0

    def refused_one(self, now: float, limit: int) -> None:
        self.refused += 1
        if now >= self.next_at:
            log.warning(
                "refused %d connections: %d are open, the limit (TASKQ_MAX_CONNECTIONS)",
                self.refused,
                limit,
            )
            self.refused = 0
            self.next_at = now + CROWDED_WARNING_INTERVAL_SECONDS


_crowded = _CrowdedWarning()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Pass ``GuardedHttpToolsProtocol.with_limits(limits)`` as uvicorn's ``http``."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    @classmethod
    def with_limits(cls, limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
        return type(cls.__name__, (cls,), {"limits": limits})

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._max_header_bytes = self.limits.max_header_bytes
        self._max_header_count = self.limits.max_header_count
        self._phase = _HEADERS
        self._header_bytes = 0
        self._phase_started = 0.0
        self._last_read = 0.0
        self._linger_left = 0
        self._watchdog: TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None

    # -- connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        crowded = len(self.connections) >= self.limits.max_connections
        super().connection_made(transport)
        self._phase_started = self.loop.time()
        self._arm(self.limits.header_timeout)
        if crowded:
            _crowded.refused_one(self._phase_started, self.limits.max_connections)
            self._refuse(
                503,
                "too many open connections; retry shortly",
                headers=[(b"retry-after", b"1")],
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._phase == _LINGER:
            self.transport.close()
            return
        super().shutdown()

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase == _LINGER:
            self._linger_left -= len(data)
            if self._linger_left <= 0:
                self.transport.close()
            return
        if phase == _IDLE:  # the first bytes of the next request
            phase = self._phase = _HEADERS
            self._phase_started = self.loop.time()
            self._header_bytes = 0
        if phase == _HEADERS:
            self._header_bytes += len(data)
            if self._header_bytes > self._max_header_bytes:
                self._feed_up_to_the_header_limit(data)
                return
        else:
            self._last_read = self.loop.time()
        super().data_received(data)

    def _feed_up_to_the_header_limit(self, data: bytes) -> None:
        """Feed only what fits the limit: if the headers end within it, the rest is
        fed as usual (it is body, or the next request); otherwise 431."""
        room = len(data) - (self._header_bytes - self._max_header_bytes)
        if room > 0:
            super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._phase == _HEADERS:
            self._refuse(431, f"request headers are larger than {self._max_header_bytes} bytes")
            return
        self.data_received(data[room:])

    # -- parser callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's own three lines, with the count first: called for every header,
        # so it stays one call, not two.
        headers = self.headers
        if len(headers) >= self._max_header_count:
            self._refusal = (431, f"more than {self._max_header_count} request headers")
            raise _TooManyHeaders
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._last_read = self.loop.time()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # None: upgraded, or refused
            # One write per small response; and if the client asked to close after this
            # exchange and the app answers before reading the whole body, a lingering
            # close (see ``_CycleTransport``).
            cycle.transport = _CycleTransport(self, cycle, linger=not cycle.keep_alive)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _IDLE

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
            return
        self._refuse(*self._refusal)

    # -- deadlines ----------------------------------------------------------------------

    def _arm(self, delay: float) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog = self.loop.call_later(delay, self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._watchdog = None
        if self.transport.is_closing():
            return
        limits = self.limits
        now = self.loop.time()
        phase = self._phase
        if phase == _LINGER:
            self.transport.close()
            return
        if phase == _HEADERS and not self._answering_earlier_request():
            left = limits.header_timeout - (now - self._phase_started)
            if left <= 0:
                self._refuse(
                    408, f"request headers not received within {limits.header_timeout:g} s"
                )
                return
        elif phase == _BODY and not self.flow.read_paused:
            left = limits.body_idle_timeout - (now - self._last_read)
            if left <= 0:
                self._refuse(
                    408,
                    f"request body stalled: nothing received for {limits.body_idle_timeout:g} s",
                )
                return
        else:  # nothing to time: the app is answering, or keep-alive's own timer runs
            left = min(limits.header_timeout, limits.body_idle_timeout)
        self._arm(left)

    def _answering_earlier_request(self) -> bool:
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete

    # -- refusing and closing -----------------------------------------------------------

    def _refuse(
        self, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        """Answer ``status`` with a JSON error, then close lingering."""
        cycle = self.cycle
        if cycle is not None:
            if self._phase == _BODY:
                # answered already (an early 413), or an earlier pipelined request is
                # still being answered
                cannot_answer = cycle.response_started or bool(self.pipeline)
            else:  # the cycle is an earlier request's: is its answer still going out?
                cannot_answer = not cycle.response_complete
            if cannot_answer:
                self.transport.close()
                return
            if self._phase == _BODY:
                # The app may be waiting for the body: it now sees a disconnect, and
                # anything it sends is dropped.
                cycle.disconnected = True
                cycle.message_event.set()
        body = json.dumps({"error": message}).encode()
        content = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *headers]:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self._linger()

    def close_after_response(self) -> None:
        """The app answered and the connection ends: linger if the body is unread."""
        if self._phase == _BODY:
            self._linger()
        else:
            self.transport.close()

    def _linger(self) -> None:
        """Stop parsing; send FIN after the answer; discard input until the client
        closes, ``LINGER_MAX_BYTES`` arrived, or ``LINGER_SECONDS`` passed."""
        self._phase = _LINGER
        self._linger_left = LINGER_MAX_BYTES
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(LINGER_SECONDS)


class _CycleTransport(asyncio.Transport):
    """What a request/response cycle writes to.

    uvicorn writes a response's head and its body in two ``write`` calls, two sends on
    the socket. The head of a small response (with a ``Content-Length`` up to
    ``ONE_WRITE_MAX_BYTES``, not to a HEAD request) is held here until the body's first
    write, and both go out in one. A streamed (chunked) or large response is written as
    it comes. A held head is never left behind: the body always follows it, and a
    cycle that stops before its body closes the connection, which flushes it first.

    ``linger``: the client asked to close after this exchange. uvicorn's cycle closes at
    once after the response, which resets a connection whose client is still sending
    the body; the protocol's ``close_after_response`` closes lingering instead.
    """

    def __init__(
        self, protocol: GuardedHttpToolsProtocol, cycle: RequestResponseCycle, *, linger: bool
    ) -> None:
        super().__init__()
        self._protocol = protocol
        self._transport = protocol.transport
        self._cycle = cycle
        self._linger = linger
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
            return
        if not self._head_seen and self._cycle.response_started:  # this is the head
            self._head_seen = True
            cycle = self._cycle
            if (
                cycle.chunked_encoding is False
                and cycle.expected_content_length <= ONE_WRITE_MAX_BYTES
                and cycle.scope["method"] != "HEAD"
            ):
                self._head = bytes(data)
                return
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)
        if self._linger:
            self._protocol.close_after_response()
        else:
            self._transport.close()
