"""The task types' former module, kept so that ``from domain.registry import task_type``
goes on working: everything lives in ``domain/task_types.py`` now."""

from domain.task_types import (
    DEFAULT_TIMEOUT_SECONDS,
    Handler,
    HandlerRegistry,
    TaskType,
    Validator,
    call_handler,
    task_type,
)
from domain.task_types import default_task_types as default_registry

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "Handler",
    "HandlerRegistry",
    "TaskType",
    "Validator",
    "call_handler",
    "default_registry",
    "task_type",
]
