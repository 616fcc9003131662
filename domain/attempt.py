"""Running an attempt's handler in its delivery's own task, not in a task of its own.

A task per handler call cost a task creation and a step more on every delivery (~10% of
the worker's path with no-op handlers). The handler is awaited in place instead, and
when the lease ends first (a cancel request, a lost lease) the delivery's task is
cancelled, as ``asyncio.timeout`` does: after the handler's grace if it takes a
``TaskContext`` (it is told first and may stop by itself). The cancellation is told
from a shutdown's by counting: the processor's own is taken back (``uncancel``); one
that remains is a shutdown's, and goes on up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from domain.lease import LeaseKeeper
from domain.ports import Clock, Timer
from domain.run_context import RunContext


def _current_task() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    assert task is not None, "an attempt runs in a task"
    return task


@dataclass(eq=False)
class AttemptRun:
    """One handler call in the current task, stopped when ``lease``'s heartbeat ends."""

    lease: LeaseKeeper
    context: RunContext | None
    """Told first when the lease ends; the call is cancelled ``grace`` seconds later."""
    clock: Clock
    grace: float
    _task: asyncio.Task[Any] = field(init=False, default_factory=_current_task)
    _running: bool = field(init=False, default=True)
    _cancelled: bool = field(init=False, default=False)  # by us: the lease ended first
    _timer: Timer | None = field(init=False, default=None)
    _ended: asyncio.Future[None] = field(init=False)

    async def run(self, call: Awaitable[Any]) -> asyncio.Future[Any]:
        """Await ``call`` while the lease is kept; its outcome as a done future (a
        cancelled one: stopped because the lease ended). CancelledError: a shutdown."""
        self._ended = self.lease.start()
        self._ended.add_done_callback(self._lease_ended)
        outcome: asyncio.Future[Any] = self._task.get_loop().create_future()
        try:
            outcome.set_result(await call)
        except asyncio.CancelledError:
            if not self._end():
                raise
            outcome.cancel()
        except Exception as exc:
            outcome.set_exception(exc)
        finally:
            self._end()
        if self._task.cancelling():  # a shutdown's cancellation the handler swallowed
            raise asyncio.CancelledError
        return outcome

    def _end(self) -> bool:
        """The call is over (idempotent): True if it was cancelled by us and nothing
        else (our cancellation taken back), False otherwise."""
        if self._running:
            self._running = False
            self._ended.remove_done_callback(self._lease_ended)  # no call to schedule
            self.lease.attempt_ended()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._cancelled:
                self._task.uncancel()
        return self._cancelled and not self._task.cancelling()

    def _lease_ended(self, _: object) -> None:
        if not self._running:
            return
        if self.context is None:
            self._stop()
            return
        self.context.cancel()  # heard first: it may stop by itself within its grace
        self._timer = self.clock.call_later(self.grace, self._stop)

    def _stop(self) -> None:
        self._timer = None
        if self._running and not self._cancelled:
            self._cancelled = True
            self._task.cancel()
