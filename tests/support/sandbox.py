"""A HandlerSandbox fake for the processor's tests: it runs the handler here, and
plays a crash of the child process for the task types in ``crashing``."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from pathlib import Path
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


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def pid_in(path: Path, timeout: float = 10) -> int:
    """The pid a handler wrote to ``path``, once it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        await asyncio.sleep(0.02)
    raise AssertionError(f"the handler never wrote {path}")
