"""What a running handler is told about its attempt: the engine's ``TaskContext``.

``taskq.TaskContext`` is the protocol user code types against; these classes satisfy it
structurally (the domain imports nothing from ``taskq``). The worker builds a
``RunContext`` for each attempt of a task type that takes one
(``TaskType.takes_context``) and passes it to the handler.

- ``cancelled`` turns true when the heartbeat sees a cancel request or the lease lost
  (and when the attempt's time ran out): the handler is told first, and has
  ``CANCEL_GRACE_SECONDS`` to stop by itself before it is cancelled (async) or
  abandoned (sync). A ``threading.Event`` underneath, so a sync handler in its thread
  sees it; ``wait_cancelled()`` awaits it on the worker's loop.
- ``progress()`` hands the report to the attempt's lease keeper, which writes it onto
  the task at most once per ``PROGRESS_INTERVAL_SECONDS`` (the latest report wins);
  ``progress_sync()`` is its twin for a sync handler's thread.
- ``logger`` is bound to the task: its records carry ``task_id``, ``type`` and
  ``attempt`` as ``extra`` fields, the names the task event log uses.

An attempt that runs isolated, in a child process (``HandlerSandbox``), gets a
``DetachedContext`` there (a ``RunContext`` pickles as one): the same fields and logger,
but its ``progress`` does nothing and ``cancelled`` stays false: a cancel or a lost
lease stops the child process instead.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, MutableMapping
from datetime import datetime
from typing import Any

from domain.models import Task
from domain.ports import Clock
from domain.progress import Progress

LOGGER_NAME = "taskq.handler"
"""The logger a context's ``logger`` writes to."""

ProgressSink = Callable[[Progress], None]
"""Takes a checked progress report, on the worker's event loop (``LeaseKeeper``)."""


class TaskLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose records carry the task's fields; ``extra`` given to a call is
    kept beside them (the task's fields win a clash)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(kwargs.get("extra") or {}), **(self.extra or {})}
        return msg, kwargs


class DetachedContext:
    """The context of an attempt that cannot reach its worker (in a child process):
    its fields and logger; ``progress`` does nothing and ``cancelled`` stays false."""

    def __init__(
        self, task_id: str, task_type: str, attempt: int, max_attempts: int, deadline: datetime
    ) -> None:
        self.task_id = task_id
        self.task_type = task_type
        self.attempt = attempt
        """This attempt's number, 1 for the first."""
        self.max_attempts = max_attempts
        self.deadline = deadline
        """When this attempt's time runs out (UTC)."""
        self.logger: logging.LoggerAdapter[logging.Logger] = TaskLogger(
            logging.getLogger(LOGGER_NAME),
            {"task_id": task_id, "type": task_type, "attempt": attempt},
        )

    @property
    def cancelled(self) -> bool:
        return False

    async def wait_cancelled(self) -> None:
        await asyncio.Event().wait()  # never: the worker stops this process instead

    async def progress(self, percent: float, message: str | None = None) -> None:
        self._check(percent, message)

    def progress_sync(self, percent: float, message: str | None = None) -> None:
        self._check(percent, message)

    def _check(self, percent: float, message: str | None) -> Progress:
        """The report, checked like the worker would (``ValueError``): a handler that
        reports nonsense fails alike wherever it runs."""
        return Progress.report(percent, message, datetime.now(self.deadline.tzinfo))

    def __reduce__(self) -> tuple[Any, ...]:
        fields = (self.task_id, self.task_type, self.attempt, self.max_attempts, self.deadline)
        return (DetachedContext, fields)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} task {self.task_id} attempt {self.attempt}>"


class RunContext(DetachedContext):
    """The context of an attempt running in the worker's process. Built on the worker's
    event loop; ``progress_sync`` and ``cancelled`` may be used from any thread."""

    def __init__(
        self, task: Task, *, deadline: datetime, clock: Clock, report: ProgressSink
    ) -> None:
        super().__init__(task.id, task.type, task.attempts, task.max_attempts, deadline)
        self._clock = clock
        self._report = report
        self._loop = asyncio.get_running_loop()
        self._cancelled = threading.Event()
        self._cancelled_here = asyncio.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    async def wait_cancelled(self) -> None:
        await self._cancelled_here.wait()

    async def progress(self, percent: float, message: str | None = None) -> None:
        self._report(self._check(percent, message))

    def progress_sync(self, percent: float, message: str | None = None) -> None:
        progress = self._check(percent, message)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._report(progress)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._report, progress)

    def _check(self, percent: float, message: str | None) -> Progress:
        return Progress.report(percent, message, self._clock.now())

    def cancel(self) -> None:
        """Tell the handler to stop (on the worker's loop): its task's cancel was
        requested, its lease lost, or its time is up."""
        self._cancelled.set()
        self._cancelled_here.set()
