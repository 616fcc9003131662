"""The dashboard's flow page: each task type with its limits, running count and pause
(pause and resume buttons), and the periodic schedules with their next fire. It calls
the same use cases as ``GET /task-types`` and ``GET /schedules``
(``TaskTypeLimits``, ``ScheduleService``)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from domain.flow_settings import TaskTypeLimits
from domain.schedule_service import ScheduleService
from entrypoints.http.ui.actions import done
from entrypoints.http.ui.csrf import checked_form, logged_in
from entrypoints.http.ui.render import Renderer
from entrypoints.http.ui.session import SessionCodec

PATH = "/ui/flow"


class FlowPage:
    def __init__(
        self,
        limits: Callable[[], TaskTypeLimits],
        schedules: Callable[[], ScheduleService],
        renderer: Renderer,
        codec: SessionCodec,
    ) -> None:
        """``limits`` and ``schedules`` give the use cases (the container's providers)."""
        self.limits = limits
        self.schedules = schedules
        self.renderer = renderer
        self.codec = codec

    async def page(self, request: Request) -> Response:
        logged_in(request)
        flows = await self.limits().all()
        return self.renderer.page(
            request,
            "flow.html",
            flows=[flows[name] for name in sorted(flows)],
            schedules=await self.schedules().list(),
        )

    async def pause(self, request: Request) -> Response:
        return await self._set_paused(request, paused=True)

    async def resume(self, request: Request) -> Response:
        return await self._set_paused(request, paused=False)

    async def _set_paused(self, request: Request, *, paused: bool) -> Response:
        logged_in(request)
        await checked_form(request, self.codec)
        await self.limits().change(request.path_params["type"], {"paused": paused})
        return done(PATH, "paused" if paused else "resumed")
