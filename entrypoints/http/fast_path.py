"""``POST /tasks`` and ``GET /tasks/{task_id}`` without the middleware stack (issue 18).

Under sustained load most requests are these two, and the Starlette stack in front of
their handlers (six middleware layers, the router, the endpoint's dispatch, a wrapped
``send`` per layer) cost more than the handlers themselves. ``FastPath`` serves them
with the same handlers (``Endpoints.submit_task``, ``Endpoints.get_task``) and the same
effects as the stack: the caller is admitted by the same ``AuthMiddleware.admit``
(keys, rate limit), errors are answered by the same ``handle_error`` (and the last
resort's 500), and the request is counted in the metrics and the access log under its
route.

Whatever is unusual falls through to the Starlette app, decided before anything with
an effect has happened (the caller is admitted once, on one path): another method or
path, a ``root_path``, a chunked body, a malformed or repeated ``Content-Length``, or
one over the body limit (whose 413 the stack answers after authentication, as it
always has).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from entrypoints.http.auth import AuthMiddleware
from entrypoints.http.body_limit import framing
from entrypoints.http.errors import HANDLED, error_response, handle_error, log_unhandled
from entrypoints.http.observe import UNMATCHED, RequestObserver, log_access

Handler = Callable[[Request], Awaitable[Response]]

TASKS = "/tasks"
TASK = "/tasks/{task_id}"
"""The routes' templates: the label the metrics and the access log give them."""
_PREFIX = "/tasks/"
_NOT_AN_ID = frozenset({"batch"})
"""Segments after ``/tasks/`` that are routes of their own (``GET /tasks/batch``: 405)."""


@dataclass(frozen=True, kw_only=True)
class FastPath:
    submit: Handler
    get: Handler
    max_body_bytes: int
    admission: AuthMiddleware | None
    """The stack's auth check (None where the stack has no auth layer)."""
    observer: RequestObserver | None
    access: bool

    def takes(self, scope: Scope) -> bool:
        """Whether this request is served here (no effect: a False falls through)."""
        if scope["type"] != "http" or scope.get("root_path"):
            return False
        method = scope["method"]
        path: str = scope["path"]
        if path == TASKS:
            if method != "POST":
                return False
        elif method != "GET" or not path.startswith(_PREFIX):
            return False
        else:
            task_id = path[len(_PREFIX) :]
            if not task_id or "/" in task_id or task_id in _NOT_AN_ID:
                return False
        declared, counted = framing(scope)
        return not counted and (declared is None or declared <= self.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request ``takes`` took."""
        started = time.perf_counter()
        path: str = scope["path"]
        if path == TASKS:
            route, handler = TASKS, self.submit
        else:
            route, handler = TASK, self.get
            scope["path_params"] = {"task_id": path[len(_PREFIX) :]}
        status = 500  # what the stack counts when the answer fails before it starts
        try:
            refusal = None if self.admission is None else self.admission.admit(scope)
            if refusal is not None:  # refused before any route was matched
                route = UNMATCHED
                response = refusal
            else:
                response = await _answer(handler, scope, receive)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            seconds = time.perf_counter() - started
            if self.observer is not None:
                self.observer.observe(route, scope["method"], status, seconds)
            if self.access:
                log_access(scope, route, status, seconds)


async def _answer(handler: Handler, scope: Scope, receive: Receive) -> Response:
    """The handler's response, or the error's, as the exception handlers and the last
    resort of the stack would answer it."""
    request = Request(scope, receive)
    try:
        try:
            return await handler(request)
        except HANDLED as exc:
            return await handle_error(request, exc)  # raises what it maps to 500
    except Exception as exc:
        log_unhandled(scope, exc)
        return error_response(500, "internal error")
