"""``/schedules``: periodic schedules, created, listed and deleted through the API.

Each endpoint parses, calls one use case (``domain/schedule_service.py``) and
serialises; what makes a schedule valid is in ``domain/schedules.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.limits import MAX_SCHEDULE_NAME_LENGTH, MAX_SCHEDULES, SCHEDULE_ON_TIME_SECONDS
from domain.schedule_service import ScheduleService, ScheduleView
from domain.schedules import DEFAULT_TIMEZONE, ScheduleRequest
from entrypoints.http.operation import Answer, Param, by_method, operation
from entrypoints.http.parsing import json_object
from entrypoints.http.responses import JSONResponse
from entrypoints.http.schemas import Timestamp, dump

_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:-]*$"

NAME = Param(
    "name",
    "path",
    {"type": "string", "pattern": _NAME_PATTERN, "maxLength": MAX_SCHEDULE_NAME_LENGTH},
    "The schedule's name.",
    required=True,
)


class ScheduleIn(BaseModel):
    """Body of ``POST /schedules``. Strict types: ``"true"`` is not a boolean."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: str = Field(
        description="Names the schedule (a task type's declared schedule is named after "
        "it); a schedule of the same name is replaced.",
        json_schema_extra={"pattern": _NAME_PATTERN, "maxLength": MAX_SCHEDULE_NAME_LENGTH},
    )
    type: str = Field(description="The registered task type each fire submits.")
    payload: Any = Field(None, description="The payload of every task it submits.")
    cron: str = Field(
        description="5 fields (`minute hour day-of-month month day-of-week`, e.g. "
        "`*/5 * * * *`), or 6 with seconds first (`*/10 * * * * *`)."
    )
    timezone: str = Field(
        DEFAULT_TIMEZONE, description="The IANA timezone `cron` is read in, e.g. `Europe/Paris`."
    )
    missed: Literal["skip", "run_once"] = Field(
        "skip",
        description=f"Fires more than {SCHEDULE_ON_TIME_SECONDS:g} s old when a scheduler "
        "first sees them (no worker process ran): `skip` them, or `run_once`: one task for "
        "all of them, at once.",
    )
    enabled: bool = Field(True, description="A disabled schedule fires nothing.")

    def to_request(self) -> ScheduleRequest:
        return ScheduleRequest(**self.model_dump())


class ScheduleOut(BaseModel):
    name: str
    type: str
    payload: Any = Field(description="The payload of every task it submits.")
    cron: str
    timezone: str
    missed: Literal["skip", "run_once"]
    enabled: bool
    declared: bool = Field(
        description="Declared on its task type (`schedule=` on the decorator) rather than "
        "created through the API."
    )
    created_at: Timestamp = Field(description="Its first fire is the first after this.")
    next_fire_at: Timestamp | None = Field(
        description="The next fire not yet submitted; null while disabled."
    )

    @classmethod
    def of(cls, view: ScheduleView) -> ScheduleOut:
        schedule = view.schedule
        return cls(
            name=schedule.name,
            type=schedule.type,
            payload=schedule.payload,
            cron=schedule.cron,
            timezone=schedule.timezone,
            missed=schedule.missed.value,
            enabled=schedule.enabled,
            declared=schedule.declared,
            created_at=schedule.created_at,
            next_fire_at=view.next_fire_at,
        )


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut] = Field(description="Every schedule, by name.")


_PUT: dict[int, Answer] = {
    200: (ScheduleOut, "The schedule of that name, replaced."),
    201: (ScheduleOut, "The schedule, created."),
    422: "A field is wrong (a cron expression that cannot be read, an unknown timezone "
    f"or task type, a payload the type rejects), or {MAX_SCHEDULES} schedules exist: the "
    "error names the field.",
    503: "The store is unavailable: nothing was changed.",
}


class ScheduleEndpoints:
    def __init__(self, service: Callable[[], ScheduleService]) -> None:
        """``service`` gives the use cases (the container's provider)."""
        self._service = service

    @operation("putSchedule", body=ScheduleIn, responses=_PUT)
    async def put_schedule(self, request: Request) -> Response:
        """Create a periodic schedule, or replace the one of that name

        From then on, one task of `type` with `payload` is submitted at each fire of
        `cron` in `timezone`, however many worker processes run (the first fire is the
        first after now). The README's "Periodic schedules" says what a daylight-saving
        change does.
        """
        body = ScheduleIn.model_validate(await json_object(request))
        view, created = await self._service().put(body.to_request())
        return JSONResponse(dump(ScheduleOut.of(view)), status_code=201 if created else 200)

    @operation(
        "listSchedules",
        responses={
            200: (ScheduleList, "Every schedule, with its next fire."),
            503: "The store is unavailable.",
        },
    )
    async def list_schedules(self, request: Request) -> Response:
        """The periodic schedules, with the time of each one's next fire"""
        views = await self._service().list()
        return JSONResponse(dump(ScheduleList(schedules=[ScheduleOut.of(v) for v in views])))

    @operation(
        "getSchedule",
        params=[NAME],
        responses={
            200: (ScheduleOut, "The schedule, with its next fire."),
            404: "No schedule has this name.",
            422: "The name is not one a schedule can have.",
            503: "The store is unavailable.",
        },
    )
    async def get_schedule(self, request: Request) -> Response:
        """One periodic schedule, with the time of its next fire"""
        view = await self._service().get(request.path_params["name"])
        return JSONResponse(dump(ScheduleOut.of(view)))

    @operation(
        "deleteSchedule",
        params=[NAME],
        responses={
            204: "Deleted: it fires no more (a task already submitted still runs).",
            404: "No schedule has this name.",
            503: "The store is unavailable: nothing was changed.",
        },
    )
    async def delete_schedule(self, request: Request) -> Response:
        """Delete a periodic schedule

        A schedule declared on a task type is stored again when a worker process
        starts: to stop one for good, put it with `enabled: false` instead.
        """
        await self._service().delete(request.path_params["name"])
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        return [
            Route(
                "/schedules",
                by_method(get=self.list_schedules, post=self.put_schedule),
                name="schedules",
            ),
            Route(
                "/schedules/{name}",
                by_method(get=self.get_schedule, delete=self.delete_schedule),
                name="schedule",
            ),
        ]
