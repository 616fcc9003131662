"""A submitted task as the producer holds it: ``TaskHandle[R]`` (async) and
``SyncTaskHandle[R]``, with ``.id``, the last known ``.task``, ``refresh()``,
``cancel()`` and ``result()``.

``result()`` asks the server to hold each read until the task is finished
(``GET /tasks/{id}?wait=N``, N at most the server's 30 s and the time left). A server
that answers at once with the task unfinished (one without ``wait``) is read again after
a pause that doubles up to a bound, so waiting on it never spins.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from taskq.config import (
    DEFAULT_RESULT_TIMEOUT_SECONDS,
    POLL_FIRST_PAUSE_SECONDS,
    POLL_MAX_PAUSE_SECONDS,
    SERVER_MAX_WAIT_SECONDS,
)
from taskq.errors import ResultTimeout, TaskCancelled, TaskFailed
from taskq.models import TaskInfo, TaskStatus
from taskq.retry import Timing

if TYPE_CHECKING:
    from taskq.async_client import AsyncClient
    from taskq.client import Client

R = TypeVar("R")


def unparsed(result: Any) -> Any:
    """The result as stored (the parser of an untyped handle)."""
    return result


class Waiting:
    """The schedule of one ``result()``: what wait to ask for, and how long to pause
    after an answer that the task is not finished."""

    def __init__(self, timeout: float | None, timing: Timing) -> None:
        self._now = timing.monotonic
        self._timeout = timeout
        self._deadline = math.inf if timeout is None else self._now() + timeout
        self._pause = POLL_FIRST_PAUSE_SECONDS
        self._asked = 0
        self._asked_at = 0.0

    def ask(self, task: TaskInfo) -> int:
        """Seconds the next read of ``task`` asks the server to wait (0: none, under a
        second is left); ``ResultTimeout`` once the deadline has passed."""
        remaining = self._deadline - self._now()
        if remaining <= 0:
            raise ResultTimeout(task, self._timeout or 0)
        self._asked = int(min(remaining, SERVER_MAX_WAIT_SECONDS))
        self._asked_at = self._now()
        return self._asked

    def pause(self, task: TaskInfo) -> float:
        """Seconds to sleep before the next read, now that it shows ``task``: none when
        it is finished or the server held the read (it waits as asked), else a backoff
        bounded by the bound and the deadline."""
        now = self._now()
        if task.finished or (self._asked and now - self._asked_at >= self._asked / 2):
            return 0.0
        pause = min(self._pause, max(0.0, self._deadline - now))
        self._pause = min(self._pause * 2, POLL_MAX_PAUSE_SECONDS)
        return pause


def outcome(task: TaskInfo, parse: Callable[[Any], R]) -> R:
    """A finished task's result, parsed; ``TaskFailed`` or ``TaskCancelled`` otherwise."""
    if task.status == TaskStatus.FAILED:
        raise TaskFailed(task)
    if task.status == TaskStatus.CANCELLED:
        raise TaskCancelled(task)
    return parse(task.result)


class _Handle(Generic[R]):
    """What both handles hold: the task as last read, and the parser of its result."""

    def __init__(self, task: TaskInfo, parse: Callable[[Any], R]) -> None:
        self.task = task
        """The task as last read from the server."""
        self._parse = parse

    @property
    def id(self) -> str:
        return self.task.id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.task.type} {self.task.status}>"


class TaskHandle(_Handle[R]):
    """A task submitted through an ``AsyncClient``; its result is an ``R``."""

    def __init__(
        self, client: AsyncClient, task: TaskInfo, parse: Callable[[Any], R] = unparsed
    ) -> None:
        super().__init__(task, parse)
        self._client = client

    async def refresh(self) -> TaskInfo:
        self.task = await self._client.get(self.id)
        return self.task

    async def cancel(self) -> TaskInfo:
        self.task = await self._client.cancel(self.id)
        return self.task

    async def result(self, timeout: float | None = DEFAULT_RESULT_TIMEOUT_SECONDS) -> R:
        """The task's result once it is COMPLETED (parsed into ``R``). ``TaskFailed`` or
        ``TaskCancelled`` if it ended so; ``ResultTimeout`` after ``timeout`` seconds
        (None: no limit)."""
        waiting = Waiting(timeout, self._client.timing)
        while not self.task.finished:
            self.task = await self._client.get(self.id, wait=waiting.ask(self.task))
            await self._client.timing.async_sleep(waiting.pause(self.task))
        return outcome(self.task, self._parse)


class SyncTaskHandle(_Handle[R]):
    """A task submitted through a ``Client``; its result is an ``R``. The sync twin of
    ``TaskHandle``."""

    def __init__(
        self, client: Client, task: TaskInfo, parse: Callable[[Any], R] = unparsed
    ) -> None:
        super().__init__(task, parse)
        self._client = client

    def refresh(self) -> TaskInfo:
        self.task = self._client.get(self.id)
        return self.task

    def cancel(self) -> TaskInfo:
        self.task = self._client.cancel(self.id)
        return self.task

    def result(self, timeout: float | None = DEFAULT_RESULT_TIMEOUT_SECONDS) -> R:
        """Like ``TaskHandle.result``: the parsed result, or ``TaskFailed``,
        ``TaskCancelled``, ``ResultTimeout``."""
        waiting = Waiting(timeout, self._client.timing)
        while not self.task.finished:
            self.task = self._client.get(self.id, wait=waiting.ask(self.task))
            self._client.timing.sleep(waiting.pause(self.task))
        return outcome(self.task, self._parse)
