"""Waiting for a task to finish: ``GET /tasks/{id}?wait=N``.

``CompletionWaiters`` is a ``TaskEvents`` observer holding one future per waiting
request, keyed by task id: the event that makes a task final (COMPLETED, FAILED,
CANCELLED) resolves them with the task as it now is. Nothing polls for a waiter whose
task can only change in this process. A thousand waiters are a thousand futures in a
dict, no thread and no timer loop each.

``TaskWaiting`` is the use case. Where every change to a task happens in this process
(the memory backend: its worker, its API and its reconciler record an event for each)
the events are enough. Where another process may finish the task (``taskq api`` beside
``taskq worker`` on SQLite, any process on AWS), the store is read again with a backoff
(``WAIT_POLL_FIRST_SECONDS`` doubling up to ``WAIT_POLL_MAX_SECONDS``), and the events
still answer at once for what this process's own worker finishes.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from domain.errors import InvalidInput
from domain.events import TaskEvent
from domain.limits import MAX_TASK_WAIT_SECONDS, WAIT_POLL_FIRST_SECONDS, WAIT_POLL_MAX_SECONDS
from domain.models import Task

WAIT_RANGE = f"must be a number of seconds greater than 0 and at most {MAX_TASK_WAIT_SECONDS:g}"
"""What a valid ``wait`` is, for the error that refuses another."""


def check_wait(seconds: float) -> float:
    """``seconds`` if it is a valid time to wait, else ``InvalidInput`` naming ``wait``."""
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TASK_WAIT_SECONDS):
        raise InvalidInput("wait", WAIT_RANGE)
    return seconds


def _resolve(future: asyncio.Future[Task], task: Task) -> None:
    if not future.done():
        future.set_result(task)


class CompletionWaiters:
    """Futures of the requests waiting for a task to finish, by task id.

    ``record`` may be called from any thread (it is a ``TaskEvents``): a future is
    resolved on its own event loop.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[Task]]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many requests are waiting now."""
        with self._lock:
            return sum(len(futures) for futures in self._waiting.values())

    def record(self, event: TaskEvent) -> None:
        task = event.task
        if not self._waiting or not task.status.is_final:  # the common case: nobody waits
            return
        with self._lock:
            futures = self._waiting.pop(task.id, None)
        for future in futures or ():
            loop = future.get_loop()
            try:
                here = asyncio.get_running_loop() is loop
            except RuntimeError:  # a thread without a loop
                here = False
            if here:
                _resolve(future, task)
            else:
                loop.call_soon_threadsafe(_resolve, future, task)

    @contextmanager
    def waiting_for(self, task_id: str) -> Iterator[asyncio.Future[Task]]:
        """A future resolved with the task when an event makes it final; forgotten on
        exit, whether it was resolved or not."""
        future: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiting.setdefault(task_id, set()).add(future)
        try:
            yield future
        finally:
            with self._lock:
                futures = self._waiting.get(task_id)
                if futures is not None:
                    futures.discard(future)
                    if not futures:
                        del self._waiting[task_id]


@dataclass
class TaskWaiting:
    """Answers with a task once it is finished, or as it is when the time is up."""

    get: Callable[[str], Awaitable[Task]]
    """Reads a task (``TaskService.get``: raises ``TaskNotFound``)."""
    waiters: CompletionWaiters
    poll_store: bool
    """Whether another process may finish tasks: then the store is read again, with a
    backoff, besides listening to this process's events."""

    async def wait(self, task_id: str, seconds: float) -> Task:
        """The task once it is COMPLETED, FAILED or CANCELLED, or after ``seconds`` (0 <
        seconds <= ``MAX_TASK_WAIT_SECONDS``, else ``InvalidInput``) as it is then."""
        check_wait(seconds)
        loop = asyncio.get_running_loop()  # the clock ``asyncio.wait`` times out on
        deadline = loop.time() + seconds
        interval = WAIT_POLL_FIRST_SECONDS
        # Listen before the first read: a task finishing in between is not missed.
        with self.waiters.waiting_for(task_id) as finished:
            task = await self.get(task_id)
            while not task.status.is_final:
                left = deadline - loop.time()
                if left <= 0:
                    break
                step = min(left, interval) if self.poll_store else left
                done, _ = await asyncio.wait({finished}, timeout=step)
                if done:
                    return finished.result()
                task = await self.get(task_id)
                interval = min(interval * 2, WAIT_POLL_MAX_SECONDS)
            return task
