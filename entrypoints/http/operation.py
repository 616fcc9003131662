"""What each handler tells the OpenAPI document about itself, written beside its code.

``@operation(...)`` records the request body model, the parameters and the responses;
the handler's docstring gives the summary (first line) and the description (the rest).
``openapi.py`` reads these from the app's routes, so a route cannot be served without
being documented, nor documented without being served.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response

from domain.limits import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_PAGE_SIZE,
    MAX_TASK_WAIT_SECONDS,
)
from domain.models import TaskStatus

Handler = Callable[[Request], Awaitable[Response]]
H = TypeVar("H", bound=Callable[..., Awaitable[Response]])

Answer = tuple[type[BaseModel], str] | str
"""A documented response: a model and what it means, or (a bare string) an ``Error``
saying what went wrong."""


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["query", "path", "header"]
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False

    def spec(self) -> dict[str, Any]:
        spec = {"name": self.name, "in": self.where, "required": self.required}
        spec["schema"] = dict(self.schema)
        return spec | ({"description": self.description} if self.description else {})


@dataclass(frozen=True)
class Operation:
    id: str
    responses: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    body_required: bool = True
    params: Sequence[Param] = ()
    doc: str = field(default="")


_ATTRIBUTE = "__taskq_operation__"


def operation(
    id: str,
    *,
    responses: Mapping[int, Answer],
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    params: Sequence[Param] = (),
) -> Callable[[H], H]:
    """Document the decorated handler (see the module docstring)."""

    def mark(handler: H) -> H:
        doc = inspect.getdoc(handler) or ""
        setattr(handler, _ATTRIBUTE, Operation(id, responses, body, body_required, params, doc))
        return handler

    return mark


def operation_of(handler: object) -> Operation:
    found = getattr(handler, _ATTRIBUTE, None)
    if not isinstance(found, Operation):
        raise TypeError(f"{handler!r} has no @operation: every route must be documented")
    return found


def by_method(**handlers: Handler) -> type[HTTPEndpoint]:
    """An ``HTTPEndpoint`` with one handler per method (``get=..., post=...``): each
    method is documented on its own, and other methods get a 405 naming these."""

    def method(handler: Handler) -> Callable[[HTTPEndpoint, Request], Awaitable[Response]]:
        async def call(self: HTTPEndpoint, request: Request) -> Response:
            return await handler(request)

        setattr(call, _ATTRIBUTE, operation_of(handler))
        return call

    return type("ByMethod", (HTTPEndpoint,), {m: method(h) for m, h in handlers.items()})


TASK_ID = Param(
    "task_id",
    "path",
    {"type": "string", "format": "uuid"},
    "The task's id; upper-case and un-dashed forms of a UUID are accepted.",
    required=True,
)
STATUS = Param(
    "status",
    "query",
    {"type": "string", "enum": [s.value for s in TaskStatus]},
    "Case-insensitive.",
    required=True,
)
LIMIT = Param(
    "limit",
    "query",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
)
CURSOR = Param(
    "cursor",
    "query",
    {"type": "string", "pattern": "^[A-Za-z0-9_-]*$", "maxLength": MAX_CURSOR_LENGTH},
    "`next_cursor` of the previous page, as given (opaque: any other value is a 422).",
)
WAIT = Param(
    "wait",
    "query",
    {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TASK_WAIT_SECONDS},
    "Seconds to wait for the task to finish: the answer comes as soon as it is "
    "COMPLETED, FAILED or CANCELLED, else with its state when the time is up. Without "
    "it, the answer is immediate.",
)
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH},
    "Submit at most once per key (per API key), for TASKQ_IDEMPOTENCY_WINDOW_SECONDS "
    "(default 24 hours): the same key with the same body answers 200 with the task it "
    "created; with a different body, 409. Concurrent duplicates create one task. "
    "Printable characters only.",
)
TRACEPARENT = Param(
    "traceparent",
    "header",
    {"type": "string"},
    "W3C Trace Context of the caller's span (`00-<trace id>-<span id>-<flags>`): kept "
    "with the task, so the worker's run span joins the caller's trace. A malformed "
    "value is ignored.",
)
