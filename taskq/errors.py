"""What the client raises: one hierarchy under ``TaskqError``.

An answer the server refused becomes the ``APIError`` subclass for its status, carrying
the server's message (the ``error`` of its JSON body, ``entrypoints/http/errors.py``)
and the whole body. A task that ended badly raises ``TaskFailed`` or ``TaskCancelled``
from ``handle.result()``, and a wait past its deadline ``ResultTimeout``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from taskq.models import TaskInfo


class TaskqError(Exception):
    """Every error the client raises."""


class InvalidBaseURL(TaskqError, ValueError):
    """The server's URL (argument, ``TASKQ_URL`` or ``PORT``) is not one."""


class ServerUnreachable(TaskqError, ConnectionError):
    """No answer from the server (refused, reset, timed out), after any retries."""

    def __init__(self, url: str, cause: Exception) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"cannot reach the server at {url}: {cause or type(cause).__name__}")


class APIError(TaskqError):
    """The server answered with an error status. ``message`` is its ``error`` (or the
    body's text), ``body`` the parsed JSON body (``{}`` when there is none)."""

    status_code: int = 0

    def __init__(self, status_code: int, message: str, body: dict[str, Any]) -> None:
        self.status_code = status_code
        self.message = message
        self.body = body
        super().__init__(f"{status_code}: {message}")


class BadRequest(APIError):
    """400: the request is not JSON, or not what the route reads."""


class Unauthorized(APIError):
    """401: no API key, or the server wants one."""


class Forbidden(APIError):
    """403: the API key is not valid."""


class NotFound(APIError):
    """404: no such task, dead letter or route."""


class Conflict(APIError):
    """409: the task's state forbids it, or an idempotency key was used for another task."""


class PayloadTooLarge(APIError):
    """413: the body (or a payload) is over the server's limit."""


_LOCATION = re.compile(r"^([\w.\[\]-]+): ")
"""The field a 422's message names first (``payload.width: Field required``)."""


class InvalidRequest(APIError):
    """422: failed validation. ``location`` is the field the server names first
    (``payload.width``), ``errors`` the structured problems when the server sends them."""

    def __init__(self, status_code: int, message: str, body: dict[str, Any]) -> None:
        super().__init__(status_code, message, body)
        found = _LOCATION.match(message)
        location = body.get("location")
        self.location: str | None = (
            str(location) if location is not None else found.group(1) if found else None
        )
        errors = body.get("errors")
        self.errors: list[Any] = list(errors) if isinstance(errors, list) else []


class RetryableError(APIError):
    """An answer that says "later": ``retry_after`` is the server's ``Retry-After`` in
    seconds (None without one). Raised once the client's retries are spent."""

    def __init__(self, status_code: int, message: str, body: dict[str, Any]) -> None:
        super().__init__(status_code, message, body)
        self.retry_after: float | None = None


class RateLimited(RetryableError):
    """429: too many requests (or failed authentications) from this caller."""


class Unavailable(RetryableError):
    """503: back-pressure, or a dependency of the server is down; nothing was changed."""


class ServerError(APIError):
    """Any other 5xx."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
    503: Unavailable,
}


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; None if absent or bad."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_for(response: httpx.Response) -> APIError:
    """The exception for a non-2xx answer, with the server's message."""
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    body = parsed if isinstance(parsed, dict) else {}
    message = body.get("error")
    if not isinstance(message, str):
        message = response.text.strip() or response.reason_phrase
    status = response.status_code
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    error = kind(status, message, body)
    if isinstance(error, RetryableError):
        error.retry_after = retry_after_seconds(response.headers.get("retry-after"))
    return error


class TaskFailed(TaskqError):
    """The task ended FAILED: ``task`` is it, ``error`` its last error."""

    def __init__(self, task: TaskInfo) -> None:
        self.task = task
        self.error = task.error
        super().__init__(f"task {task.id} ({task.type}) failed: {task.error}")


class TaskCancelled(TaskqError):
    """The task ended CANCELLED: ``task`` is it."""

    def __init__(self, task: TaskInfo) -> None:
        self.task = task
        super().__init__(f"task {task.id} ({task.type}) was cancelled")


class ResultTimeout(TaskqError, TimeoutError):
    """The task was not finished by the deadline; ``task`` is its last known state."""

    def __init__(self, task: TaskInfo, timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        super().__init__(
            f"task {task.id} ({task.type}) not finished after {timeout:g} s: {task.status}"
        )
