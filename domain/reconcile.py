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
from datetime import timedelta

from domain.errors import ConcurrencyConflict, InfrastructureError, TaskNotFound
from domain.models import Task, TaskStatus
from domain.ports import Clock, TaskQueue, TaskRepository

log = logging.getLogger("taskq.reconcile")

SCHEDULE_HORIZON_SECONDS = 900
"""How far ahead a scheduled task is enqueued: the largest SQS message delay."""


@dataclass(frozen=True)
class ReconcileReport:
    examined: int
    resent: int
    scheduled: int = 0
    failed_dead_letters: int = 0


class Reconciler:
    def __init__(
        self,
        repository: TaskRepository,
        queue: TaskQueue,
        clock: Clock,
        *,
        stale_after_seconds: float,
        max_examined: int = 10_000,
        dead_letter_sample: int = 100,
    ) -> None:
        self.dead_letter_sample = dead_letter_sample
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
        failed = await self._fail_dead_lettered()
        if resent or scheduled or failed:
            log.info(
                "reconciler re-sent %d stale tasks, enqueued %d due, failed %d dead-lettered",
                resent,
                scheduled,
                failed,
            )
        return ReconcileReport(
            examined=examined, resent=resent, scheduled=scheduled, failed_dead_letters=failed
        )

    async def _fail_dead_lettered(self) -> int:
        """A message the queue itself dead-lettered (past its maxReceiveCount, e.g. a
        task whose workers kept dying) leaves its task unfinished: record it FAILED."""
        failed = 0
        for dead in await self.queue.list_dead_letters(limit=self.dead_letter_sample):
            if dead.task_id is None:
                continue
            try:
                task = await self.repository.get(dead.task_id)
            except TaskNotFound:
                continue
            now = self.clock.now()
            if task.status is TaskStatus.PROCESSING and not task.lease_expired(now):
                continue  # still running somewhere; the worker will settle it
            if task.status.is_final or dead.receive_count <= task.attempts:
                # Settled, or an old letter of a task an operator has since retried:
                # every delivery of it led to an attempt that ended in a recorded way.
                continue
            reason = (
                f"its message was dead-lettered after {dead.receive_count} deliveries "
                "(workers kept failing to finish it)"
            )
            try:
                current = task
                if task.status is TaskStatus.PENDING:
                    current = task.claim("reconciler", now, 0)
                    await self.repository.transition(current, expected=task)
                await self.repository.transition(current.fail(reason, now), expected=current)
            except (ConcurrencyConflict, TaskNotFound):
                continue
            failed += 1
        return failed

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
