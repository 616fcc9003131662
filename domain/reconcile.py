"""The reconciler: no task stays PENDING forever without a message.

A task is stored before it is enqueued. If the send fails, or the process dies between
the two, the task is PENDING with no message. The reconciler finds PENDING tasks that
have not changed for ``stale_after`` seconds and re-sends them. It first bumps the
task's version (compare-and-set), so of several reconcilers only one re-sends a task,
and each task is re-sent at most once per ``stale_after``.

A re-send of a task whose message was in fact still queued is harmless: the second
delivery finds the task running (deferred) or finished (acked and skipped).

It is also the scheduler of long delays. A task due further off than the queue can
delay a message (``SCHEDULE_HORIZON_SECONDS``) is stored without one; once its
``run_at`` comes within the horizon, the reconciler enqueues it with the remaining delay.
"Not yet enqueued" needs no extra field: such a task was last written before its
enqueue window opened (``updated_at < run_at - horizon``), and enqueuing it touches it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import ConcurrencyConflict, InfrastructureError, TaskNotFound
from domain.models import Task, TaskStatus
from domain.ports import Clock, TaskQueue, TaskRepository
from domain.services import MAX_QUEUE_DELAY_SECONDS

log = logging.getLogger("taskq.reconcile")

SCHEDULE_HORIZON_SECONDS = MAX_QUEUE_DELAY_SECONDS
"""How far ahead a scheduled task is enqueued: the largest message delay."""


@dataclass(frozen=True)
class ReconcileReport:
    examined: int
    resent: int
    scheduled: int = 0
    recovered: int = 0
    """PROCESSING tasks abandoned by a dead worker, settled or retried."""


class Reconciler:
    def __init__(
        self,
        repository: TaskRepository,
        queue: TaskQueue,
        clock: Clock,
        *,
        stale_after_seconds: float,
        max_examined: int = 10_000,
    ) -> None:
        self.repository = repository
        self.queue = queue
        self.clock = clock
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self.max_examined = max_examined

    async def run_once(self) -> ReconcileReport:
        now = self.clock.now()
        horizon = timedelta(seconds=SCHEDULE_HORIZON_SECONDS)
        examined = resent = scheduled = 0
        cursor: str | None = None
        while examined < self.max_examined:
            page = await self.repository.list_by_status(
                TaskStatus.PENDING, limit=100, cursor=cursor
            )
            for task in page.items:
                examined += 1
                if task.run_at is not None and task.run_at - now > horizon:
                    continue  # not due yet: no message should exist
                if task.run_at is not None and task.updated_at < task.run_at - horizon:
                    delay = math.ceil(max(0.0, (task.run_at - now).total_seconds()))
                    if await self._enqueue(task, delay):
                        scheduled += 1
                    continue
                if now - max(task.run_at or task.updated_at, task.updated_at) < self.stale_after:
                    continue
                if await self._enqueue(task, 0):
                    resent += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        recovered = await self._recover_abandoned(now)
        if resent or scheduled or recovered:
            log.info(
                "reconciler re-sent %d stale tasks, enqueued %d due, recovered %d abandoned",
                resent,
                scheduled,
                recovered,
            )
        return ReconcileReport(
            examined=examined, resent=resent, scheduled=scheduled, recovered=recovered
        )

    async def _recover_abandoned(self, now: datetime) -> int:
        """PROCESSING tasks whose lease ended ``stale_after`` ago have no worker: the
        worker died and its message is gone (the queue dead-lettered it after too many
        receives, or it was lost). Settle them as a takeover would
        (``Task.settle_lost_attempt``); one left PENDING gets a fresh message."""
        recovered = 0
        cursor: str | None = None
        examined = 0
        while examined < self.max_examined:
            page = await self.repository.list_by_status(
                TaskStatus.PROCESSING, limit=100, cursor=cursor
            )
            for task in page.items:
                examined += 1
                expired = task.lease_expires_at
                if expired is not None and now - expired < self.stale_after:
                    continue  # running, or its message will bring it back
                new = task.settle_lost_attempt(now)
                try:
                    await self.repository.transition(new, expected=task)
                except (ConcurrencyConflict, TaskNotFound):
                    continue
                if new.status is TaskStatus.PENDING:
                    try:
                        await self.queue.send(task.id)
                    except InfrastructureError as exc:
                        log.warning("sending task %s failed: %s", task.id, exc)
                recovered += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        return recovered

    async def _enqueue(self, task: Task, delay_seconds: int) -> bool:
        """Touch (so only one reconciler sends it), then send."""
        try:
            await self.repository.transition(task.touch(self.clock.now()), expected=task)
        except (ConcurrencyConflict, TaskNotFound):
            return False  # it moved on, or another reconciler has it
        try:
            await self.queue.send(task.id, delay_seconds=delay_seconds)
        except InfrastructureError as exc:
            log.warning("sending task %s failed: %s", task.id, exc)
            return False
        return True
