"""Task types defined with ``taskq.task``, as the engine runs them: a domain ``TaskType``.

The domain knows nothing of pydantic; here a ``TaskDefinition`` becomes a task type
whose

- validator parses the payload into the function's input type, and turns pydantic's
  ``ValidationError`` into ``InvalidInput`` naming where (``payload.width: Field
  required``), so a submission that does not fit is refused with 422 at once;
- handler parses the payload, calls the function (with the attempt's ``TaskContext``
  when it takes one) and dumps what it returns to JSON. A sync function stays sync: the
  worker runs it in its executor thread, the parsing with it;
- schemas, timeout and default attempt budget are the definition's.

The handler travels to an isolated attempt's child process by reference: the module and
attribute the definition was found at (``DefinitionRef``), never the function itself
(``taskq.task`` puts a ``TypedTask`` where the function's name would lead pickle).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import pydantic
from pydantic_core import ErrorDetails

from domain.errors import InvalidInput
from domain.flow_control import FlowLimits
from domain.json_values import child_path
from domain.models import JSON
from domain.priorities import Priority
from domain.task_types import DEFAULT_TIMEOUT_SECONDS, TaskType
from taskq.definition import TaskDefinition, definition_of

MAX_ERRORS_SHOWN = 5
"""Validation errors a refusal names; more are counted ("and 3 more")."""


class DefinitionRef:
    """Where a definition is found: ``module.attribute``. Pickles as that address; the
    definition is looked up again on the other side."""

    def __init__(self, module: str, attribute: str, definition: TaskDefinition | None = None):
        self.module = module
        self.attribute = attribute
        self._definition = definition

    @property
    def definition(self) -> TaskDefinition:
        if self._definition is None:
            found = definition_of(getattr(importlib.import_module(self.module), self.attribute))
            if found is None:
                raise LookupError(f"{self.module}.{self.attribute} is not a taskq task")
            self._definition = found
        return self._definition

    def __reduce__(self) -> tuple[Any, ...]:
        return (DefinitionRef, (self.module, self.attribute))

    def __repr__(self) -> str:
        return f"DefinitionRef({self.module!r}, {self.attribute!r})"


def _arguments(definition: TaskDefinition, payload: JSON, context: object) -> list[Any]:
    value = definition.parse_input(payload)
    return [value, context] if definition.takes_context else [value]


async def run_async(ref: DefinitionRef, payload: JSON, context: object = None) -> JSON:
    """Call an async task function on ``payload``; its result as JSON."""
    definition = ref.definition
    result = await definition.function(*_arguments(definition, payload, context))
    return definition.dump_output(result)


def run_sync(ref: DefinitionRef, payload: JSON, context: object = None) -> JSON:
    """Call a sync task function on ``payload`` (in the worker's executor thread); its
    result as JSON."""
    definition = ref.definition
    return definition.dump_output(definition.function(*_arguments(definition, payload, context)))


class InputValidator:
    """The payload check of a typed task: ``InvalidInput`` naming each location."""

    def __init__(self, definition: TaskDefinition) -> None:
        self.definition = definition

    def __call__(self, payload: JSON) -> None:
        try:
            self.definition.parse_input(payload)
        except pydantic.ValidationError as exc:
            raise invalid_payload(exc.errors(include_url=False, include_input=False)) from None


def invalid_payload(errors: list[ErrorDetails]) -> InvalidInput:
    """The refusal of a payload, shown as ``payload.width: Field required; payload.h:
    ...``: the first error's location is the field, the others (up to
    ``MAX_ERRORS_SHOWN`` in all) follow with theirs."""
    if not errors:
        return InvalidInput("payload", "does not fit the task's input type")
    problems = [(_location(error["loc"]), error["msg"]) for error in errors]
    (field, message), rest = problems[0], problems[1:MAX_ERRORS_SHOWN]
    text = "; ".join([message, *(f"{where}: {what}" for where, what in rest)])
    if len(problems) > MAX_ERRORS_SHOWN:
        text += f"; and {len(problems) - MAX_ERRORS_SHOWN} more"
    return InvalidInput(field, text)


def _location(loc: tuple[int | str, ...]) -> str:
    path = "payload"
    for part in loc:
        path = child_path(path, part)
    return path


def typed_task_type(definition: TaskDefinition, *, module: str, attribute: str) -> TaskType:
    """The task type of ``definition``, found at ``module.attribute``."""
    ref = DefinitionRef(module, attribute, definition)
    run = run_async if definition.is_async else run_sync
    return TaskType(
        definition.name,
        functools.partial(run, ref),
        timeout_seconds=definition.timeout or DEFAULT_TIMEOUT_SECONDS,
        validator=None if definition.input_type is None else InputValidator(definition),
        max_attempts=definition.max_attempts,
        input_schema=definition.input_schema(),
        output_schema=definition.output_schema(),
        takes_context=definition.takes_context,
        priority=Priority(definition.priority),
        schedule=definition.schedule,
        schedule_timezone=definition.timezone,
        flow=FlowLimits(
            definition.max_concurrency, definition.rate, definition.burst, definition.paused
        ),
    )
