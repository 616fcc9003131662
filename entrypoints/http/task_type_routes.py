"""``GET /task-types``: the task types this server runs, with their JSON Schemas and
flow limits; ``PUT /task-types/{type}``: an operator changes a type's limits or pauses it.

A client in any language learns what each type takes and returns; the same schemas
type the task payloads and results in ``/openapi.json`` (``openapi_task_types.py``).
The limits are read from the task store on each request (domain/flow_settings.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.flow_settings import TaskTypeLimits, TypeFlow
from domain.limits import MAX_CONCURRENCY_LIMIT, MAX_RATE_PER_SECOND
from domain.task_types import HandlerRegistry, TaskType
from entrypoints.http.operation import Answer, Param, operation
from entrypoints.http.parsing import json_object
from entrypoints.http.responses import JSONResponse
from entrypoints.http.schemas import dump

ANY_JSON: dict[str, Any] = {}
"""The JSON Schema every JSON value passes: the schema of a type that names none."""


class TaskTypeOut(BaseModel):
    type: str = Field(description="The name to submit tasks of this type with.")
    input_schema: dict[str, Any] = Field(
        description="JSON Schema of the payload; `{}` (any JSON value) when the type has none."
    )
    output_schema: dict[str, Any] = Field(
        description="JSON Schema of the result; `{}` (any JSON value) when the type has none."
    )
    timeout_seconds: float = Field(description="Per-attempt timeout of its tasks by default.")
    max_attempts: int = Field(
        description="Attempts of a task of this type that names none (the type's own "
        "default, else the server's)."
    )

    max_concurrency: int | None = Field(
        description="Tasks of this type running at once across every worker; null: no limit."
    )
    rate: float | None = Field(description="Starts per second across every worker; null: no limit.")
    burst: int | None = Field(
        description="Starts allowed at once after a quiet spell; null: the rate rounded up."
    )
    paused: bool = Field(description="No task of this type starts; submits are accepted.")
    running: int | None = Field(
        description="Tasks of this type holding a concurrency permit now; null without "
        "a `max_concurrency`."
    )

    @classmethod
    def of(cls, task_type: TaskType, default_max_attempts: int, flow: TypeFlow) -> TaskTypeOut:
        return cls(
            type=task_type.name,
            input_schema=task_type.input_schema or ANY_JSON,
            output_schema=task_type.output_schema or ANY_JSON,
            timeout_seconds=task_type.timeout_seconds,
            max_attempts=task_type.max_attempts or default_max_attempts,
            max_concurrency=flow.limits.max_concurrency,
            rate=flow.limits.rate,
            burst=flow.limits.burst,
            paused=flow.limits.paused,
            running=flow.running,
        )


class ChangeTaskType(BaseModel):
    """Any subset of the settings; `null` removes that limit. Unnamed ones stay."""

    model_config = ConfigDict(extra="forbid", strict=True)
    max_concurrency: int | None = Field(None, ge=1, le=MAX_CONCURRENCY_LIMIT)
    rate: float | None = Field(None, gt=0, le=MAX_RATE_PER_SECOND)
    burst: int | None = Field(None, ge=1, le=MAX_CONCURRENCY_LIMIT)
    paused: bool | None = None


class TaskTypes(BaseModel):
    task_types: list[TaskTypeOut] = Field(description="Every registered type, by name.")


def registered(task_types: HandlerRegistry) -> list[TaskType]:
    """The registry's types, sorted by name."""
    return [task_types.get(name) for name in task_types.names()]


_CHANGED: dict[int, Answer] = {
    200: (TaskTypeOut, "The type with its limits as changed."),
    404: "No task type of this name is registered.",
    409: "Changed by others at the same time, too often: send it again.",
    422: "A setting that is not one, or out of range.",
    503: "The task store is unavailable: nothing was changed.",
}
TYPE = Param("type", "path", {"type": "string", "minLength": 1}, "The task type's name.", True)


class TaskTypeEndpoints:
    def __init__(
        self,
        task_types: Sequence[TaskType],
        default_max_attempts: int,
        limits: Callable[[], TaskTypeLimits],
    ) -> None:
        """``limits`` gives the flow use cases (the container's provider)."""
        self._types = {t.name: t for t in task_types}
        self._max_attempts = default_max_attempts
        self._limits = limits

    def _out(self, flow: TypeFlow) -> TaskTypeOut:
        return TaskTypeOut.of(self._types[flow.task_type], self._max_attempts, flow)

    @operation(
        "listTaskTypes",
        responses={
            200: (TaskTypes, "Every registered task type."),
            503: "The task store is unavailable.",
        },
    )
    async def task_types(self, request: Request) -> Response:
        """The task types this server runs, with their payload and result schemas

        And each type's flow limits as they stand now: its decorator's, changed by
        `PUT /task-types/{type}`.
        """
        flows = await self._limits().all()
        body = TaskTypes(
            task_types=[self._out(f) for f in flows.values() if f.task_type in self._types]
        )
        return JSONResponse(dump(body))

    @operation(
        "changeTaskType",
        params=[TYPE],
        body=ChangeTaskType,
        responses=_CHANGED,
    )
    async def change_task_type(self, request: Request) -> Response:
        """Change a task type's concurrency and rate limits, or pause and resume it

        Any subset of `max_concurrency`, `rate` (starts per second), `burst` and
        `paused`; `null` removes that limit. Shared by every process through the task
        store: in effect at once in this process, within about
        `TASKQ_FLOW_REFRESH_SECONDS` (1 s) plus one read in every other. A paused type's
        tasks are still accepted; their deliveries wait, spending no attempt, and start
        within a few seconds of the resume.
        """
        change = ChangeTaskType.model_validate(await json_object(request))
        values = {name: getattr(change, name) for name in change.model_fields_set}
        flow = await self._limits().change(request.path_params["type"], values)
        return JSONResponse(dump(self._out(flow)))

    def routes(self) -> list[Route]:
        return [
            Route("/task-types", self.task_types, methods=["GET"], name="task_types"),
            Route(
                "/task-types/{type}",
                self.change_task_type,
                methods=["PUT"],
                name="change_task_type",
            ),
        ]
