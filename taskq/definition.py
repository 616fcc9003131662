"""A task type as user code defines it with ``taskq.task``: its name, function, limits,
and the types of its input and output (from the function's type hints).

The decorator records a ``TaskDefinition`` on what it returns (attribute
``__taskq_task__``); the engine collects decorated objects from the ``TASKQ_HANDLERS``
modules it imports. Nothing here imports the engine.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

from pydantic import TypeAdapter

DEFINITION_ATTRIBUTE = "__taskq_task__"
PRIORITIES = ("high", "default", "low")
"""The priorities a task can have (the engine's ``domain.priorities.Priority``)."""


class FlowOptions(TypedDict, total=False):
    """A task type's flow limits, as ``taskq.task`` takes them (``TaskDefinition``'s
    fields of the same names say what each means)."""

    max_concurrency: int | None
    rate: float | None
    burst: int | None
    paused: bool


@dataclass(frozen=True)
class TaskDefinition:
    name: str
    function: Callable[..., Any]
    timeout: float | None = None
    """Seconds an attempt may run (None: the engine's default)."""
    max_attempts: int | None = None
    """Attempt budget of tasks of this type that do not set one (None: the engine's)."""
    priority: str = "default"
    """Priority of tasks of this type that do not set one: high, default or low."""
    input_type: Any = None
    """The first parameter's type hint (None: any JSON value, passed as is)."""
    output_type: Any = None
    """The return type hint (None: any JSON value)."""
    takes_context: bool = False
    """True when the function has a second parameter: it receives a ``TaskContext``."""
    schedule: str | None = None
    """A cron expression: a task of this type is submitted at each fire (no payload)."""
    timezone: str = "UTC"
    """The IANA timezone ``schedule`` is read in."""
    max_concurrency: int | None = None
    """Tasks of this type running at once across every worker (None: no limit)."""
    rate: float | None = None
    """Starts per second across every worker (None: no limit)."""
    burst: int | None = None
    """Starts allowed at once after a quiet spell (None: the rate, rounded up)."""
    paused: bool = False
    """No task of this type starts until it is resumed (submits are accepted)."""
    _adapters: dict[str, TypeAdapter[Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    def _adapter(self, which: str) -> TypeAdapter[Any] | None:
        hint = self.input_type if which == "input" else self.output_type
        if hint is None:
            return None
        if which not in self._adapters:
            self._adapters[which] = TypeAdapter(hint)
        return self._adapters[which]

    def parse_input(self, payload: Any) -> Any:
        """The payload as the function's input type; ``pydantic.ValidationError`` if it
        does not fit."""
        adapter = self._adapter("input")
        return payload if adapter is None else adapter.validate_python(payload)

    def dump_input(self, value: Any) -> Any:
        """An input value as JSON-compatible data (for submitting it)."""
        adapter = self._adapter("input")
        return value if adapter is None else adapter.dump_python(value, mode="json")

    def dump_output(self, value: Any) -> Any:
        """The function's return value as JSON-compatible data (the stored result)."""
        adapter = self._adapter("output")
        return value if adapter is None else adapter.dump_python(value, mode="json")

    def parse_output(self, result: Any) -> Any:
        """A stored result validated back into the output type."""
        adapter = self._adapter("output")
        return result if adapter is None else adapter.validate_python(result)

    def input_schema(self) -> dict[str, Any] | None:
        adapter = self._adapter("input")
        return None if adapter is None else adapter.json_schema()

    def output_schema(self) -> dict[str, Any] | None:
        adapter = self._adapter("output")
        return None if adapter is None else adapter.json_schema()


def define(
    name: str,
    function: Callable[..., Any],
    *,
    timeout: float | None = None,
    max_attempts: int | None = None,
    priority: str = "default",
    schedule: str | None = None,
    timezone: str = "UTC",
    **flow: Unpack[FlowOptions],
) -> TaskDefinition:
    """Read ``function``'s signature and type hints into a definition; ``TypeError``
    naming the task when the signature cannot be a handler's."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError("a task's name must be a non-empty string")
    if timeout is not None and not timeout > 0:
        raise TypeError(f"task {name!r}: timeout must be positive, not {timeout!r}")
    if max_attempts is not None and (isinstance(max_attempts, bool) or max_attempts < 1):
        raise TypeError(f"task {name!r}: max_attempts must be at least 1, not {max_attempts!r}")
    if priority not in PRIORITIES:
        raise TypeError(f"task {name!r}: priority must be one of {', '.join(PRIORITIES)}")
    _check_flow(
        name,
        max_concurrency=flow.get("max_concurrency"),
        burst=flow.get("burst"),
        rate=flow.get("rate"),
    )
    params = [
        p
        for p in inspect.signature(function).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if not 1 <= len(params) <= 2:
        raise TypeError(
            f"task {name!r}: the function takes the input and optionally a TaskContext, "
            f"not {len(params)} parameters"
        )
    try:
        hints = typing.get_type_hints(function)
    except NameError as exc:
        raise TypeError(f"task {name!r}: cannot resolve a type hint: {exc}") from None
    return TaskDefinition(
        name=name,
        function=function,
        timeout=timeout,
        max_attempts=max_attempts,
        priority=priority,
        input_type=_json_hint(hints.get(params[0].name)),
        output_type=_json_hint(hints.get("return")),
        takes_context=len(params) == 2,
        schedule=schedule,
        timezone=timezone,
        **flow,
    )


def _check_flow(name: str, *, rate: float | None, **whole: int | None) -> None:
    """``TypeError`` naming the task and the option for a limit that cannot be one."""
    for option, value in whole.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"task {name!r}: {option} must be a whole number, not {value!r}")
        if value is not None and value < 1:
            raise TypeError(f"task {name!r}: {option} must be at least 1, not {value!r}")
    if rate is not None and (isinstance(rate, bool) or not rate > 0):
        raise TypeError(f"task {name!r}: rate must be a positive number, not {rate!r}")


def _json_hint(hint: Any) -> Any:
    """None for "no constraint" (no hint, ``Any``, ``None`` as a return)."""
    if hint is None or hint is Any or hint is type(None):
        return None
    return hint


def definition_of(obj: object) -> TaskDefinition | None:
    """The definition ``taskq.task`` recorded on ``obj``, if any."""
    found = getattr(obj, DEFINITION_ATTRIBUTE, None)
    return found if isinstance(found, TaskDefinition) else None
