"""The dashboard's pages (GET). Each one calls the same use cases as the API
(``TaskService``, ``DeadLetterMessages``) and renders a template; none queries a
backend directly, so every backend works alike."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from domain.dead_letters import DeadLetterMessages
from domain.limits import DEFAULT_REDRIVE, DEFAULT_REDRIVE_PER_SECOND
from domain.models import TaskStatus
from domain.services import TaskService
from entrypoints.http.errors import MalformedTaskId
from entrypoints.http.parsing import status_param
from entrypoints.http.routes import task_id_param
from entrypoints.http.ui.csrf import logged_in
from entrypoints.http.ui.render import Renderer
from entrypoints.http.ui.views import (
    CANCELLABLE,
    STATUSES,
    overview_numbers,
    progress_of,
    task_fields,
)
from entrypoints.http.ui.workers import WorkerSightings

PAGE_SIZE = 50
"""Tasks a list page shows."""
POISON_SHOWN = 50
"""Dead-letter queue messages the dead-letters page lists."""
BODY_PREVIEW_CHARS = 200


class Pages:
    def __init__(
        self,
        service: Callable[[], TaskService],
        messages: Callable[[], DeadLetterMessages],
        renderer: Renderer,
        sightings: WorkerSightings,
        refresh_seconds: float,
    ) -> None:
        """``refresh_seconds``: how often the overview fetches its figures."""
        self.service = service
        self.messages = messages
        self.renderer = renderer
        self.sightings = sightings
        self.refresh_ms = round(refresh_seconds * 1000)

    async def overview(self, request: Request) -> Response:
        logged_in(request)
        numbers = overview_numbers(await self.service().metrics())
        return self.renderer.page(
            request, "overview.html", numbers=numbers, refresh_ms=self.refresh_ms
        )

    async def overview_json(self, request: Request) -> Response:
        """The overview's figures, fetched by ui.js every few seconds."""
        logged_in(request)
        return JSONResponse(overview_numbers(await self.service().metrics()))

    async def tasks(self, request: Request) -> Response:
        logged_in(request)
        query = request.query_params
        status = status_param(query.get("status") or TaskStatus.PENDING.value)
        cursor = query.get("cursor") or None
        page = await self.service().list(status, limit=PAGE_SIZE, cursor=cursor)
        return self.renderer.page(
            request,
            "tasks.html",
            statuses=STATUSES,
            status=status.value,
            tasks=page.items,
            next_cursor=page.next_cursor,
            first_page=cursor is None,
        )

    async def jump(self, request: Request) -> Response:
        """``/ui/tasks/jump?id=...``: to the task's page, whatever form its id takes."""
        logged_in(request)
        raw = request.query_params.get("id", "").strip()
        try:
            task_id = str(uuid.UUID(raw))
        except ValueError:
            raise MalformedTaskId(raw) from None
        return RedirectResponse(f"/ui/tasks/{task_id}", status_code=303)

    async def task(self, request: Request) -> Response:
        logged_in(request)
        service = self.service()
        task = await service.get(task_id_param(request))
        return self.renderer.page(
            request,
            "task.html",
            task=task,
            fields=task_fields(task),
            progress=progress_of(task),
            can_cancel=task.status in CANCELLABLE and not task.cancel_requested,
            can_retry=task.status is TaskStatus.FAILED,
            max_attempts_limit=service.limits.max_attempts_limit,
        )

    async def dead_letters(self, request: Request) -> Response:
        logged_in(request)
        cursor = request.query_params.get("cursor") or None
        service, messages = self.service(), self.messages()
        page = await service.list(TaskStatus.FAILED, limit=PAGE_SIZE, cursor=cursor)
        poison = await messages.list(limit=POISON_SHOWN)
        previews = [(m, m.body_preview(BODY_PREVIEW_CHARS)) for m in poison]
        return self.renderer.page(
            request,
            "dead_letters.html",
            tasks=page.items,
            next_cursor=page.next_cursor,
            first_page=cursor is None,
            messages=previews,
            depth=await messages.count(),
            task_types=sorted(service.task_types.names()),
            default_limit=DEFAULT_REDRIVE,
            default_per_second=DEFAULT_REDRIVE_PER_SECOND,
        )

    async def workers(self, request: Request) -> Response:
        logged_in(request)
        service = self.service()
        live = await service.live_workers()
        rows = self.sightings.update(live, service.clock.now())
        return self.renderer.page(request, "workers.html", rows=rows)
