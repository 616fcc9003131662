"""Request body limit, enforced while the body streams in.

A ``Content-Length`` over the limit is refused before the app runs; a body without one
(chunked) is counted chunk by chunk and refused as soon as it passes the limit, so an
unbounded body is never buffered. A body whose length is declared within the limit is
not counted: the server reads no more than declared.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.errors import BodyTooLarge, error_response, tracking

_DIGITS = re.compile(r"[0-9]+")
"""A well-formed Content-Length; a malformed one is ignored and the body counted."""


class BodyLimitMiddleware:
    """``exempt`` holds the (method, path) of routes that bound their bodies themselves
    (``POST /blobs``: ``TASKQ_MAX_BLOB_BYTES``)."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, exempt: Collection[tuple[str, str]] = ()
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in self.exempt:
            await self.app(scope, receive, send)
            return
        declared, chunked = framing(scope)
        if declared is not None:
            if declared > self.max_body_bytes:
                await self._refuse(scope, receive, send)
                return
            if not chunked:  # the server reads no more than declared: nothing to count
                await self.app(scope, receive, send)
                return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        tracked = tracking(send)
        try:
            await self.app(scope, counting_receive, tracked)
        except BodyTooLarge:
            # Normally the app's exception handler answers; this covers a body read
            # outside it.
            if tracked.started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, str(BodyTooLarge(self.max_body_bytes)))
        await response(scope, receive, send)


def framing(scope: Scope) -> tuple[int | None, bool]:
    """The request's ``Content-Length`` (None if absent, malformed or repeated), and
    whether the body must be counted all the same (a ``Transfer-Encoding`` too, or a
    length that cannot be believed)."""
    declared = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            if declared is not None or not _DIGITS.fullmatch(text):
                return None, True  # twice, or malformed: counted
            declared = int(text)
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked
