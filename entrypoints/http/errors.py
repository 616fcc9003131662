"""Every error the HTTP API returns is decided here, in one place.

Errors are JSON ``{"error": "<what is wrong, naming the field>"}``. Domain errors map
to status codes by their class; request-level problems (malformed JSON, a body over
the limit, failed schema validation, unknown routes and methods) by theirs. Anything
else is a bug: the last-resort middleware logs it (never the request body) and answers
a JSON 500.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass

import pydantic
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from domain.errors import (
    BacklogFull,
    BlobNotFound,
    BlobTooLarge,
    ConcurrencyConflict,
    DeadLetterNotFound,
    FlowRecordConflict,
    IdempotencyKeyReused,
    IllegalTransition,
    InfrastructureError,
    InvalidInput,
    QueueSendFailed,
    ScheduleNotFound,
    TaskAlreadyExists,
    TaskNotFound,
    TaskQueueError,
    TaskStateConflict,
    TaskTypeNotFound,
)
from entrypoints.http.responses import JSONResponse

logger = logging.getLogger("taskq.http")

RETRY_AFTER_SECONDS = 5
"""What a 503 tells clients to wait before retrying."""


class MalformedBody(Exception):
    """The request body is not JSON, or not a JSON object (400)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class MalformedTaskId(Exception):
    """A task id that cannot exist (ids are UUIDs): answered like an unknown task (404)."""

    def __init__(self, task_id: str) -> None:
        shown = task_id if len(task_id) <= 64 else task_id[:64] + "..."
        super().__init__(f"task {shown!r} not found: task ids are UUIDs")


class BodyTooLarge(Exception):
    """The request body is over the configured limit (413)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request body is larger than the limit of {limit} bytes")


def error_response(
    status_code: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: str,
) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status_code, headers=headers)


@dataclass(frozen=True)
class Problem:
    """An error as the API answers it: a status and a message naming what is wrong."""

    status: int
    message: str


def problem(exc: Exception) -> Problem:
    """The one mapping from an error to its status and message, for a request and for
    each item of a batch alike. Anything it does not know is a bug: 500."""
    if isinstance(exc, pydantic.ValidationError):
        exc = as_invalid_input(exc)
    if isinstance(exc, QueueSendFailed):
        logger.warning("queue send failed for task %s: %s", exc.task_id, exc.detail)
        return Problem(
            503,
            f"the queue is unavailable: task {exc.task_id} could not be enqueued, so it "
            "was not created (or changed); nothing was stored: retry later",
        )
    if isinstance(exc, BacklogFull):  # counted in /metrics, not logged: it comes in floods
        return Problem(503, str(exc))
    if isinstance(exc, InfrastructureError):
        logger.warning("%s unavailable: %s", exc.dependency, exc.detail)
        return Problem(503, f"{exc.dependency} unavailable, retry later")
    if isinstance(exc, InvalidInput):
        return Problem(422, f"{exc.field}: {exc.message}")
    if isinstance(
        exc, TaskNotFound | MalformedTaskId | DeadLetterNotFound | BlobNotFound | ScheduleNotFound
    ):
        return Problem(404, str(exc))
    if isinstance(exc, TaskTypeNotFound):
        return Problem(404, str(exc))
    if isinstance(exc, _CONFLICTS):
        return Problem(409, str(exc))
    if isinstance(exc, MalformedBody):
        return Problem(400, exc.detail)
    if isinstance(exc, BodyTooLarge | BlobTooLarge):
        return Problem(413, str(exc))
    if isinstance(exc, ClientDisconnect):
        return Problem(400, "client disconnected before the body was read")
    logger.error("unmapped error %s", type(exc).__name__)
    return Problem(500, "internal error")


_CONFLICTS = (
    TaskAlreadyExists,
    TaskStateConflict,
    IllegalTransition,
    ConcurrencyConflict,
    IdempotencyKeyReused,
    FlowRecordConflict,
)


def as_invalid_input(exc: pydantic.ValidationError) -> InvalidInput:
    """pydantic's problems as one domain ``InvalidInput``: ``field: message; ...``."""
    # ``msg`` never contains the input value, so no payload leaks into the answer.
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
        ).lstrip(".")
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append((field or "body", message))
    (field, message), *rest = problems
    return InvalidInput(field, "; ".join([message, *(f"{f}: {m}" for f, m in rest)]))


def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"method {request.method} not allowed on {request.url.path}; allowed: {allowed}"
    else:
        message = exc.detail
    return error_response(exc.status_code, message, headers=exc.headers)


async def handle_error(request: Request, exc: Exception) -> Response:
    """The single exception handler: registered for every class it knows."""
    if isinstance(exc, HTTPException):
        return _http_error(request, exc)
    found = problem(exc)
    if found.status == 500:
        raise exc  # the catch-all logs the traceback and answers 500
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if found.status == 503 else None
    return error_response(found.status, found.message, headers=headers)


HANDLED: tuple[type[Exception], ...] = (
    TaskQueueError,
    pydantic.ValidationError,
    MalformedBody,
    MalformedTaskId,
    BodyTooLarge,
    ClientDisconnect,
    HTTPException,
)


def exception_handlers() -> dict[type[Exception], ExceptionHandler]:
    return dict.fromkeys(HANDLED, handle_error)


class TrackedSend:
    """``send``, noting whether the response has started (once it has, an error can
    no longer be answered with a response of its own) and with which status."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status: int | None = None

    @property
    def started(self) -> bool:
        return self.status is not None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


def tracking(send: Send) -> TrackedSend:
    """``send`` tracked: an outer middleware's ``TrackedSend`` is shared, not wrapped
    again (each layer only reads whether and with which status the response started)."""
    return send if isinstance(send, TrackedSend) else TrackedSend(send)


class CatchAllMiddleware:
    """Last resort: an unexpected exception becomes a logged JSON 500.

    Only the exception's type and traceback are logged: its message could quote the
    request body, and payloads are never logged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = tracking(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log_unhandled(scope, exc)
            if tracked.started:
                raise
            await error_response(500, "internal error")(scope, receive, send)


def log_unhandled(scope: Scope, exc: Exception) -> None:
    """The last resort's log line: the exception's type and traceback, never its text."""
    logger.error(
        "unhandled %s on %s %s\n%s",
        type(exc).__name__,
        scope.get("method"),
        scope.get("path"),
        "".join(traceback.format_tb(exc.__traceback__)),
    )
