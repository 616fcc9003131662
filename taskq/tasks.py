"""``taskq.task``: define a task type in user code, typed by its function's hints.

::

    @task("resize", timeout=60, max_attempts=5)
    async def resize(inp: ResizeIn, ctx: TaskContext) -> ResizeOut: ...

The decorator only records the definition (``TypedTask.definition``); the engine
registers it when it imports the module named in ``TASKQ_HANDLERS``. The old
``payload -> result`` form (no hints) keeps working: the payload is passed as is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, Unpack, cast, overload

from taskq.context import TaskContext
from taskq.definition import DEFINITION_ATTRIBUTE, FlowOptions, TaskDefinition, define
from taskq.models import SubmitOptions

if TYPE_CHECKING:
    from taskq.async_client import AsyncClient
    from taskq.client import Client
    from taskq.handles import SyncTaskHandle, TaskHandle

P = TypeVar("P")
R = TypeVar("R")


class TypedTask(Generic[P, R]):
    """A task type defined with ``taskq.task``: input ``P``, result ``R``. Calling it
    calls the function (for tests); ``definition`` is what the engine registers."""

    def __init__(self, definition: TaskDefinition) -> None:
        self.definition = definition
        setattr(self, DEFINITION_ATTRIBUTE, definition)
        self.__doc__ = getattr(definition.function, "__doc__", None)
        self.__wrapped__ = definition.function

    @property
    def name(self) -> str:
        return self.definition.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.definition.function(*args, **kwargs)

    @overload
    def submit(
        self, inp: P, *, client: AsyncClient, **options: Unpack[SubmitOptions]
    ) -> Coroutine[Any, Any, TaskHandle[R]]: ...

    @overload
    def submit(
        self, inp: P, *, client: Client, **options: Unpack[SubmitOptions]
    ) -> SyncTaskHandle[R]: ...

    def submit(
        self, inp: P, *, client: Client | AsyncClient, **options: Unpack[SubmitOptions]
    ) -> SyncTaskHandle[R] | Coroutine[Any, Any, TaskHandle[R]]:
        """Submit a task of this type with ``inp`` (dumped to JSON by its input type);
        its handle's ``result()`` is an ``R`` (the stored JSON validated into the output
        type). With an ``AsyncClient``, await it. ``options`` are ``client.submit``'s."""
        parse = cast(Callable[[Any], R], self.definition.parse_output)
        payload = self.definition.dump_input(inp)
        return client.submit(self.name, payload, parse=parse, **options)

    def __repr__(self) -> str:
        return f"<taskq task {self.name!r}>"


class _Decorator(Protocol):
    @overload
    def __call__(self, function: Callable[[P, TaskContext], Awaitable[R]]) -> TypedTask[P, R]: ...

    @overload
    def __call__(self, function: Callable[[P], Awaitable[R]]) -> TypedTask[P, R]: ...

    @overload
    def __call__(self, function: Callable[[P, TaskContext], R]) -> TypedTask[P, R]: ...

    @overload
    def __call__(self, function: Callable[[P], R]) -> TypedTask[P, R]: ...


def task(
    name: str,
    *,
    timeout: float | None = None,
    max_attempts: int | None = None,
    priority: str = "default",
    schedule: str | None = None,
    timezone: str = "UTC",
    **flow: Unpack[FlowOptions],
) -> _Decorator:
    """Define the task type ``name`` from the decorated function: its first parameter's
    type is the input (validated at submit), its return type the result, and a second
    parameter, if any, receives the ``TaskContext``. ``timeout``: seconds an attempt may
    run; ``max_attempts``: the default budget of tasks of this type that do not say;
    ``priority`` (high, default or low): the priority of its tasks that do not say;
    ``schedule``: a cron expression (``"*/5 * * * *"``, read in ``timezone``) at whose
    every fire a task of this type is submitted, with no payload.
    ``max_concurrency`` (running at once), ``rate`` (starts per second, ``burst`` at
    once) and ``paused``: its flow limits across every worker, until an operator
    changes them (``PUT /task-types/{type}``, ``taskq types``)."""

    def decorate(function: Callable[..., Any]) -> TypedTask[Any, Any]:
        return TypedTask(
            define(
                name,
                function,
                timeout=timeout,
                max_attempts=max_attempts,
                priority=priority,
                schedule=schedule,
                timezone=timezone,
                **flow,
            )
        )

    return decorate
