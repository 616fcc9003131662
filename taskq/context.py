"""What a running handler is told about its task: ``TaskContext``.

A handler that takes a second parameter receives the context of the attempt it runs::

    @task("resize", timeout=60)
    async def resize(inp: ResizeIn, ctx: TaskContext) -> ResizeOut:
        await ctx.progress(10, "decoded")
        if ctx.cancelled:
            ...

The engine passes an object with these members; this protocol is what user code types
against (it imports nothing from the engine).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class TaskContext(Protocol):
    @property
    def task_id(self) -> str:
        """The task's id."""
        ...

    @property
    def task_type(self) -> str:
        """The task's type name."""
        ...

    @property
    def attempt(self) -> int:
        """This attempt's number, 1 for the first."""
        ...

    @property
    def max_attempts(self) -> int:
        """The task's attempt budget."""
        ...

    @property
    def deadline(self) -> datetime:
        """When this attempt's time runs out (UTC)."""
        ...

    @property
    def cancelled(self) -> bool:
        """True once the task's cancel is requested or this attempt's lease is lost: stop
        soon, the outcome is no longer recorded."""
        ...

    async def wait_cancelled(self) -> None:
        """Return when ``cancelled`` becomes true."""
        ...

    async def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (0 to 100, and an optional message), shown on the task by
        the API as ``progress``. Reports closer together than the engine's interval are
        coalesced: the latest one is written."""
        ...

    def progress_sync(self, percent: float, message: str | None = None) -> None:
        """``progress`` for a sync handler (it runs in a thread)."""
        ...

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry the task's id, type and attempt."""
        ...
