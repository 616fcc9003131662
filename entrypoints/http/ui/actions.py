"""The dashboard's actions: each a POST with a CSRF token, calling the same use case
as the API, then a redirect (303) to a page that shows the outcome. Where to go back
to is chosen from a fixed set, never taken from the form: no open redirect."""

from __future__ import annotations

import math
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from domain.dead_letters import DeadLetterMessages
from domain.errors import InvalidInput
from domain.limits import DEFAULT_REDRIVE, MAX_REDRIVE, MAX_REDRIVE_PER_SECOND
from domain.services import TaskService
from entrypoints.http.routes import task_id_param
from entrypoints.http.ui.csrf import Form, checked_form, logged_in, text_field
from entrypoints.http.ui.session import SessionCodec


class Actions:
    def __init__(
        self,
        service: Callable[[], TaskService],
        messages: Callable[[], DeadLetterMessages],
        codec: SessionCodec,
    ) -> None:
        self.service = service
        self.messages = messages
        self.codec = codec

    async def _form(self, request: Request) -> Form:
        logged_in(request)
        return await checked_form(request, self.codec)

    async def cancel(self, request: Request) -> Response:
        await self._form(request)
        task = await self.service().cancel(task_id_param(request))
        return done(f"/ui/tasks/{task.id}", "cancelled")

    async def retry(self, request: Request) -> Response:
        form = await self._form(request)
        budget = whole_number(form, "max_attempts")
        task = await self.service().retry(task_id_param(request), extra_attempts=budget)
        if text_field(form, "back") == "dead-letters":
            return done("/ui/dead-letters", "retried")
        return done(f"/ui/tasks/{task.id}", "retried")

    async def redrive(self, request: Request) -> Response:
        """Retry FAILED tasks, all or of one type, at a chosen rate."""
        form = await self._form(request)
        task_type = text_field(form, "type") or None
        limit = whole_number(form, "limit") or DEFAULT_REDRIVE
        if not 1 <= limit <= MAX_REDRIVE:
            raise InvalidInput("limit", f"must be between 1 and {MAX_REDRIVE}")
        per_second = decimal(form, "per_second")
        if per_second is None:
            retried = await self.service().retry_failed(task_type=task_type, limit=limit)
        else:
            retried = await self.service().retry_failed(
                task_type=task_type, limit=limit, per_second=per_second
            )
        return done("/ui/dead-letters", "redriven", count=len(retried))

    async def redrive_message(self, request: Request) -> Response:
        await self._form(request)
        await self.messages().redrive(request.path_params["message_id"])
        return done("/ui/dead-letters", "message-redriven")

    async def drop_message(self, request: Request) -> Response:
        await self._form(request)
        await self.messages().drop(request.path_params["message_id"])
        return done("/ui/dead-letters", "message-dropped")


def done(path: str, notice: str, *, count: int | None = None) -> RedirectResponse:
    query = f"?notice={notice}" + ("" if count is None else f"&count={count}")
    return RedirectResponse(path + query, status_code=303)


def whole_number(form: Form, name: str) -> int | None:
    text = text_field(form, name)
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise InvalidInput(name, f"must be a whole number, not {text[:20]!r}")
    return int(text)


def decimal(form: Form, name: str) -> float | None:
    """A rate in (0, MAX_REDRIVE_PER_SECOND], or None when the field is empty."""
    text = text_field(form, name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_REDRIVE_PER_SECOND):
        raise InvalidInput(name, f"must be a number in (0, {MAX_REDRIVE_PER_SECOND:g}]")
    return value
