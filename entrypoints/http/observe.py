"""Request metrics and the access log, as one light ASGI middleware.

Per request: two clock reads, a wrapped ``send`` to see the status, and one cached
counter and histogram update. The route is the matched route's template
(``/tasks/{task_id}``), never the raw path, so the label set stays bounded.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from entrypoints.http.errors import tracking

access_log = logging.getLogger("taskq.access")

UNMATCHED = "<unmatched>"
"""The route label of a request no route matched (a 404 for an unknown path)."""
QUIET_ROUTES = frozenset({"/health", "/metrics"})
"""Probes and scrapes: never in the access log."""
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""An ``X-Request-Id`` a client sends is believed (and logged) only in this shape."""


class RequestObserver(Protocol):
    def observe(self, route: str, method: str, status: int, seconds: float) -> None: ...


class ObserveMiddleware:
    def __init__(
        self, app: ASGIApp, *, observer: RequestObserver | None, access: bool = False
    ) -> None:
        self.app = app
        self.observer = observer
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        tracked = tracking(send)
        try:
            await self.app(scope, receive, tracked)
        finally:
            seconds = time.perf_counter() - started
            status = 500 if tracked.status is None else tracked.status  # none: it failed
            matched = scope.get("route")
            route = getattr(matched, "path", None) or UNMATCHED
            if self.observer is not None:  # None: TASKQ_METRICS=false, the access log only
                self.observer.observe(route, scope["method"], status, seconds)
            if self.access and route not in QUIET_ROUTES:
                log_access(scope, route, status, seconds)


def log_access(scope: Scope, route: str, status: int, seconds: float) -> None:
    access_log.info(
        "%s %s %d",
        scope["method"],
        route,
        status,
        extra={
            "method": scope["method"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "request_id": request_id(scope),
        },
    )


def request_id(scope: Scope) -> str:
    """The client's ``X-Request-Id`` if it has a safe shape, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex
