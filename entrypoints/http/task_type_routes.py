"""``GET /task-types``: the task types this server runs, with their JSON Schemas.

A client in any language learns what each type takes and returns; the same schemas
type the task payloads and results in ``/openapi.json`` (``openapi_task_types.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.task_types import HandlerRegistry, TaskType
from entrypoints.http.operation import operation
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

    @classmethod
    def of(cls, task_type: TaskType, default_max_attempts: int) -> TaskTypeOut:
        return cls(
            type=task_type.name,
            input_schema=task_type.input_schema or ANY_JSON,
            output_schema=task_type.output_schema or ANY_JSON,
            timeout_seconds=task_type.timeout_seconds,
            max_attempts=task_type.max_attempts or default_max_attempts,
        )


class TaskTypes(BaseModel):
    task_types: list[TaskTypeOut] = Field(description="Every registered type, by name.")


def registered(task_types: HandlerRegistry) -> list[TaskType]:
    """The registry's types, sorted by name."""
    return [task_types.get(name) for name in task_types.names()]


class TaskTypeEndpoints:
    def __init__(self, task_types: Sequence[TaskType], default_max_attempts: int) -> None:
        body = TaskTypes(task_types=[TaskTypeOut.of(t, default_max_attempts) for t in task_types])
        self._body = dump(body)  # the types are fixed for the process's life

    @operation("listTaskTypes", responses={200: (TaskTypes, "Every registered task type.")})
    async def task_types(self, request: Request) -> Response:
        """The task types this server runs, with their payload and result schemas"""
        return JSONResponse(self._body)

    def routes(self) -> list[Route]:
        return [Route("/task-types", self.task_types, methods=["GET"], name="task_types")]
