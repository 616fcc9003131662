"""The reconciler: no task stays PENDING forever without a message.

A task is stored before it is enqueued. If the send fails, or the process dies between
the two, the task is PENDING with no message. The reconciler finds PENDING tasks that
have not changed for ``stale_after`` seconds and re-sends them. It first bumps the
task's version (compare-and-set), so of several reconcilers only one re-sends a task,
and each task is re-sent at most once per ``stale_after``.

A re-send of a task whose message was in fact still queued is harmless: the second
delivery finds the task running (deferred) or finished (acked and skipped).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from domain.errors import ConcurrencyConflict, InfrastructureError, TaskNotFound
from domain.models import TaskStatus
from domain.ports import Clock, TaskQueue, TaskRepository

log = logging.getLogger("taskq.reconcile")


@dataclass(frozen=True)
class ReconcileReport:
    examined: int
    resent: int


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
        examined = resent = 0
        cursor: str | None = None
        while examined < self.max_examined:
            page = await self.repository.list_by_status(
                TaskStatus.PENDING, limit=100, cursor=cursor
            )
            for task in page.items:
                examined += 1
                due = task.run_at or task.updated_at
                if now - max(due, task.updated_at) < self.stale_after:
                    continue
                touched = task.touch(now)
                try:
                    await self.repository.transition(touched, expected=task)
                except (ConcurrencyConflict, TaskNotFound):
                    continue  # it moved on, or another reconciler has it
                try:
                    await self.queue.send(task.id)
                except InfrastructureError as exc:
                    log.warning("re-send of task %s failed: %s", task.id, exc)
                    continue
                resent += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        if resent:
            log.info("reconciler re-sent %d stale PENDING tasks", resent)
        return ReconcileReport(examined=examined, resent=resent)
