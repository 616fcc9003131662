"""Request body limit, enforced while the body streams in.

A ``Content-Length`` over the limit is refused before the app runs; a body without one
(chunked) is counted chunk by chunk and refused as soon as it passes the limit, so an
unbounded body is never buffered.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.errors import BodyTooLarge, TrackedSend, error_response

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
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and _DIGITS.fullmatch(declared.strip()):
            if int(declared) > self.max_body_bytes:
                await self._refuse(scope, receive, send)
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

        tracked = TrackedSend(send)
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
