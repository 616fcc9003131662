"""Task types: a name, a handler (sync or async), a payload validator and a timeout.

Teams add their own types without touching the engine::

    from domain.task_types import task_type

    @task_type("send-report", timeout_seconds=60)
    def send_report(payload):
        ...

    @task_type("render", timeout_seconds=30, stoppable=True)  # really stopped at 30 s
    def render(payload):
        ...

and list their module in ``TASKQ_HANDLERS`` so it is imported at start. (The older
path ``domain.registry`` re-exports these names and keeps working.)

A ``HandlerRegistry`` is the set of task types a process knows; code that holds one
calls it ``task_types`` (the live workers are a ``WorkerRegistry``, called ``workers``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from domain.errors import InvalidInput, UnknownTaskType
from domain.flow_control import FlowLimits
from domain.models import JSON
from domain.priorities import Priority

Handler = Callable[[JSON], Any]
"""Takes the payload, returns a JSON result (or an awaitable of one)."""
Validator = Callable[[JSON], None]
"""Raises ``ValueError`` (or ``InvalidInput``) describing what is wrong."""


def parsed_by(parse: Callable[[JSON], object]) -> Validator:
    """A validator that refuses at submission what ``parse`` (the handler's own reading
    of its payload) refuses: an ``InvalidInput`` it raises becomes a ``ValueError``
    naming the field, so the task type's validation says it is the payload's."""

    def validate(payload: JSON) -> None:
        try:
            parse(payload)
        except InvalidInput as exc:
            raise ValueError(f"{exc.field}: {exc.message}") from None

    return validate


DEFAULT_TIMEOUT_SECONDS = 300.0
NO_LIMITS = FlowLimits()

H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class TaskType:
    name: str
    handler: Handler
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    validator: Validator | None = None
    max_attempts: int | None = None
    """The attempt budget of tasks of this type that do not set one (None: the
    engine's default)."""
    input_schema: dict[str, JSON] | None = None
    """JSON Schema of the payload (None: any JSON value)."""
    output_schema: dict[str, JSON] | None = None
    """JSON Schema of the result (None: any JSON value)."""
    takes_context: bool = False
    """The handler takes the attempt's ``TaskContext`` too, as ``handler(payload,
    context=...)`` (domain/run_context.py)."""
    stoppable: bool = False
    """Run the handler in a worker process of its own that is terminated at the timeout
    or when the task is cancelled, so that it really stops (a sync handler in a thread
    cannot be stopped: past its timeout it would run on, and its side effects land after
    the attempt failed). Costs a round trip to that process per call, and the handler
    must be a module-level function; its payload and result travel by pickle."""
    priority: Priority = Priority.DEFAULT
    """The priority of tasks of this type that do not set one (domain/priorities.py)."""
    schedule: str | None = None
    """A cron expression (5 fields, or 6 with seconds first): a task of this type, with
    no payload, is submitted at each of its fires (domain/schedules.py)."""
    schedule_timezone: str = "UTC"
    """The IANA timezone ``schedule`` is read in."""
    flow: FlowLimits = NO_LIMITS
    """Its concurrency and rate limits and pause, until an operator changes them at
    run time (domain/flow_control.py)."""

    def bound_to(self, context: object) -> TaskType:
        """This type with ``context`` bound to its handler, for one attempt: called with
        the payload alone, like any other handler (in a child process too: a partial
        pickles, and a ``RunContext`` travels as its detached copy)."""
        if not self.takes_context:
            return self
        handler = functools.partial(cast(Callable[..., Any], self.handler), context=context)
        return replace(self, handler=handler, takes_context=False)

    @functools.cached_property
    def is_async(self) -> bool:
        """Read once a type (``inspect`` costs 1 µs, and every delivery asks)."""
        return inspect.iscoroutinefunction(self.handler)

    def validate(self, payload: JSON) -> None:
        if self.validator is None:
            return
        try:
            self.validator(payload)
        except InvalidInput:
            raise
        except (ValueError, TypeError) as exc:
            raise InvalidInput("payload", f"invalid payload for {self.name!r}: {exc}") from None


class HandlerRegistry:
    def __init__(self) -> None:
        self._types: dict[str, TaskType] = {}

    def add(self, task_type: TaskType) -> None:
        if not task_type.name or not task_type.name.strip():
            raise ValueError("task type name must not be empty")
        if task_type.timeout_seconds <= 0:
            raise ValueError(f"timeout of {task_type.name!r} must be positive")
        if task_type.stoppable and "<" in getattr(task_type.handler, "__qualname__", "<"):
            raise ValueError(
                f"the handler of the stoppable type {task_type.name!r} must be a module-level "
                "function (a child process finds it by its module and name), not a lambda, "
                "a closure or a method"
            )
        self._types[task_type.name] = task_type

    def register(
        self,
        name: str,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        validator: Validator | None = None,
        stoppable: bool = False,
        priority: Priority | str = Priority.DEFAULT,
        schedule: str | None = None,
        timezone: str = "UTC",
        flow: FlowLimits = NO_LIMITS,
    ) -> Callable[[H], H]:
        level = Priority.parse(priority, field_name=f"priority of task type {name!r}")

        def decorate(handler: H) -> H:
            self.add(
                TaskType(
                    name,
                    handler,
                    timeout_seconds,
                    validator,
                    stoppable=stoppable,
                    priority=level,
                    schedule=schedule,
                    schedule_timezone=timezone,
                    flow=flow,
                )
            )
            return handler

        return decorate

    def get(self, name: str) -> TaskType:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownTaskType(name, list(self._types)) from None

    def flow_limits(self, name: str) -> FlowLimits:
        """The decorator limits of type ``name`` (none for a type not registered)."""
        found = self._types.get(name)
        return NO_LIMITS if found is None else found.flow

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __len__(self) -> int:
        return len(self._types)

    def names(self) -> list[str]:
        return sorted(self._types)

    def copy(self) -> HandlerRegistry:
        clone = HandlerRegistry()
        clone._types = dict(self._types)
        return clone


default_task_types = HandlerRegistry()
"""The process-wide task types that ``task_type`` registers into and bootstrap reads."""


def task_type(
    name: str,
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    validator: Validator | None = None,
    stoppable: bool = False,
    priority: Priority | str = Priority.DEFAULT,
    schedule: str | None = None,
    timezone: str = "UTC",
    max_concurrency: int | None = None,
    rate: float | None = None,
    burst: int | None = None,
    paused: bool = False,
) -> Callable[[H], H]:
    """Register the decorated function as the handler of task type ``name``;
    ``stoppable=True`` runs it in a process that is terminated at its timeout or on
    cancel (``TaskType.stoppable``); ``priority`` is its tasks' default priority;
    ``schedule="*/5 * * * *"`` (read in ``timezone``) submits a task of it at every
    fire (``TaskType.schedule``). ``max_concurrency`` (tasks running at once),
    ``rate`` (starts per second, ``burst`` at once) and ``paused`` are its flow limits
    until an operator changes them (``PUT /task-types/{type}``)."""
    return default_task_types.register(
        name,
        timeout_seconds=timeout_seconds,
        validator=validator,
        stoppable=stoppable,
        priority=priority,
        schedule=schedule,
        timezone=timezone,
        flow=FlowLimits(max_concurrency, rate, burst, paused),
    )


async def call_handler(handler: Handler, payload: JSON) -> Any:
    """Await an async handler; the caller decides where a sync one runs."""
    result = handler(payload)
    if isinstance(result, Awaitable):
        return await result
    return result
