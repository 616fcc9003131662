"""The reconciler: what no request and no delivery settles by itself.

1. **Held tasks.** A task due further off than the queue can delay a message
   (``SCHEDULE_HORIZON_SECONDS``) is stored without one (``Task.held``). Each pass asks
   the repository for the held tasks due within the horizon (an index by due time: the
   cost follows how many are due, never how many tasks are PENDING), sends each its
   message with the remaining delay, *then* clears its hold with a conditional
   transition. If that transition loses (the task was cancelled, or another reconciler
   was first) or the process dies before it, the message is a spare that the worker
   skips, and the next pass sends at most one more.
2. **Abandoned PROCESSING tasks.** A task whose lease ended ``stale_after`` ago has no
   worker and maybe no message (the queue dead-lettered it after too many receives):
   it is settled as a takeover would be (cancelled, failed, or retried with a fresh
   message sent *before* the transition).

PENDING tasks are never re-sent: a task is stored only after its message was sent
(``TaskService.submit``), so every PENDING task that is not held has one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import (
    ConcurrencyConflict,
    InfrastructureError,
    QueueSendFailed,
    TaskNotFound,
)
from domain.events import NO_EVENTS, TaskEvent, TaskEventKind, TaskEvents
from domain.limits import MAX_QUEUE_DELAY_SECONDS
from domain.models import Task, TaskStatus
from domain.ports import Clock, TaskQueue, TaskRepository
from domain.priorities import by_priority

log = logging.getLogger("taskq.reconcile")

SCHEDULE_HORIZON_SECONDS = MAX_QUEUE_DELAY_SECONDS
"""How far ahead a held task is enqueued by default: the largest message delay."""
HELD_PAGE_SIZE = 100
"""Held tasks asked for (and sent) at a time."""


@dataclass(frozen=True)
class ReconcileReport:
    scheduled: int = 0
    """Held tasks sent their message (they are due within the horizon)."""
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
        max_scheduled: int = 10_000,
        held_page_size: int = HELD_PAGE_SIZE,
        horizon_seconds: int = SCHEDULE_HORIZON_SECONDS,
        events: TaskEvents = NO_EVENTS,
    ) -> None:
        """``stale_after_seconds``: how long after its lease ended a PROCESSING task
        counts as abandoned. ``max_examined``: PROCESSING tasks looked at per pass.
        ``max_scheduled``: held tasks sent per pass (the rest go next pass).
        ``horizon_seconds``: held tasks due within this are sent; the service's
        ``SubmissionLimits.max_queue_delay_seconds``."""
        self.repository = repository
        self.queue = queue
        self.clock = clock
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self.max_examined = max_examined
        self.max_scheduled = max_scheduled
        self.held_page_size = held_page_size
        self.horizon = timedelta(seconds=horizon_seconds)
        self.events = events

    async def run_once(self) -> ReconcileReport:
        now = self.clock.now()
        scheduled = await self._schedule_held(now)
        recovered = await self._recover_abandoned(now)
        if scheduled or recovered:
            log.info(
                "reconciler enqueued %d held tasks now due, recovered %d abandoned",
                scheduled,
                recovered,
            )
        return ReconcileReport(scheduled=scheduled, recovered=recovered)

    # -- held tasks ------------------------------------------------------------------

    async def _schedule_held(self, now: datetime) -> int:
        before = now + self.horizon
        seen: set[str] = set()  # an index read again at once may still list them
        scheduled = 0
        while scheduled < self.max_scheduled:
            limit = min(self.held_page_size, self.max_scheduled - scheduled)
            listed = await self.repository.list_due_held(before, limit=limit)
            due = [task for task in listed if task.id not in seen]
            if not due:
                break
            seen.update(task.id for task in due)
            for task in await self._send_held(due, now):
                try:
                    await self.repository.transition(task.unhold(self.clock.now()), expected=task)
                except (ConcurrencyConflict, TaskNotFound):
                    continue  # cancelled, or another reconciler was first: a spare message
                scheduled += 1
            if len(listed) < limit:
                break
        return scheduled

    async def _send_held(self, due: Sequence[Task], now: datetime) -> list[Task]:
        """Send each task its message with the delay left until its ``run_at``; the
        tasks whose message went out."""
        items = [
            (
                task.priority,
                task.id,
                math.ceil(max(0.0, ((task.run_at or now) - now).total_seconds())),
            )
            for task in due
        ]
        unsent: set[str] = set()
        for priority, group in by_priority(items).items():
            try:
                await self.queue.send_batch(group, priority=priority)
            except QueueSendFailed as exc:
                log.warning("sending %d held tasks failed: %s", len(exc.task_ids), exc.detail)
                unsent.update(exc.task_ids)
            except InfrastructureError as exc:
                log.warning("sending %d held tasks failed: %s", len(group), exc)
                unsent.update(task_id for task_id, _ in group)
        return [task for task in due if task.id not in unsent]

    # -- abandoned attempts ----------------------------------------------------------

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
                if await self._settle_abandoned(task, now):
                    recovered += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        return recovered

    async def _settle_abandoned(self, task: Task, now: datetime) -> bool:
        """Settle the lost attempt as a takeover would (``Task.settle_lost_attempt``).
        One left PENDING gets its message first: a delivery that comes before the
        transition finds the task PROCESSING with an expired lease and takes it over,
        which is the same."""
        new = task.settle_lost_attempt(now)
        if new.status is TaskStatus.PENDING:
            try:
                await self.queue.send(task.id, priority=task.priority)
            except InfrastructureError as exc:
                log.warning("sending task %s failed: %s", task.id, exc)
                return False  # untouched: the next pass tries again
        try:
            await self.repository.transition(new, expected=task)
        except (ConcurrencyConflict, TaskNotFound):
            return False
        self.events.record(TaskEvent(TaskEventKind.RECOVERED, new, now, error=new.error))
        return True


def _seconds_until(when: datetime, now: datetime) -> int:
    return math.ceil(max(0.0, (when - now).total_seconds()))
