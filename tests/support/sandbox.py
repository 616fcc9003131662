"""A HandlerSandbox fake for the processor's tests: it runs the handler here, and
plays a crash of the child process for the task types in ``crashing``."""

from __future__ import annotations

import inspect
from typing import Any

from domain.errors import HandlerCrashed
from domain.models import JSON
from domain.task_types import TaskType


class FakeSandbox:
    def __init__(self, *, crashing: frozenset[str] = frozenset()) -> None:
        self.crashing = crashing
        self.runs: list[str] = []
        """The task types run, in order."""
        self.running = False
        """True while a handler runs under this sandbox."""

    async def run(self, task_type: TaskType, payload: JSON, *, timeout_seconds: float) -> JSON:
        self.runs.append(task_type.name)
        if task_type.name in self.crashing:
            raise HandlerCrashed(task_type.name, -9, "SIGKILL (9)")
        self.running = True
        try:
            result: Any = task_type.handler(payload)
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            self.running = False
