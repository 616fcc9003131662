"""The scheduler: submits the task of each due fire of each schedule.

It runs in every process that runs workers, with no leader: each fire is submitted as
an idempotent insert whose key holds the fire time (``Schedule.fire_key``), so of any
number of schedulers that see one fire, exactly one stores its task. The task is stored
held (``Task.held``, with the fire time as its ``run_at``), then its message is sent,
then the hold is cleared: a scheduler that dies between the insert and the send leaves
a held task that the reconciler sends (domain/reconcile.py), and a scheduler that lost
the insert sends nothing, so a fire costs one message whatever the number of processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from domain.coordination_ports import ScheduleStore
from domain.errors import ConcurrencyConflict, InfrastructureError, TaskNotFound, TaskQueueError
from domain.events import TaskEvent, TaskEventKind
from domain.limits import DEFAULT_SCHEDULER_INTERVAL_SECONDS, SCHEDULE_FIRE_WINDOW_SECONDS
from domain.models import Task
from domain.schedule_service import ScheduleService
from domain.schedules import CronCalendar, Schedule
from domain.services import SubmitRequest, TaskService

log = logging.getLogger("taskq.scheduler")

_WAKE_MARGIN_SECONDS = 0.01
"""Wake this much after a fire's time, so that the pass sees it due."""


@dataclass(eq=False)
class Scheduler:
    schedules: ScheduleStore
    service: TaskService
    """Builds each fire's task by the submission rules; its repository, queue, clock
    and events are the scheduler's."""
    calendar: CronCalendar
    interval_seconds: float = DEFAULT_SCHEDULER_INTERVAL_SECONDS
    """The longest sleep between passes."""
    declarations: ScheduleService | None = None
    """Stores the schedules declared on task types when ``run`` starts, if given."""
    _next_wake: datetime | None = field(init=False, default=None)
    _warned: set[str] = field(init=False, default_factory=set)

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop`` is set; a failing store is logged and retried
        at the next pass."""
        clock = self.service.clock
        if self.declarations is not None:
            try:
                await self.declarations.store_declared()
            except InfrastructureError as exc:
                log.warning("storing the declared schedules failed: %s", exc)
        while not stop.is_set():
            try:
                await self.run_once()
            except InfrastructureError as exc:
                log.warning("scheduler pass failed: %s", exc)
            seconds = self.interval_seconds
            if self._next_wake is not None:
                until = (self._next_wake - clock.now()).total_seconds() + _WAKE_MARGIN_SECONDS
                seconds = max(_WAKE_MARGIN_SECONDS, min(seconds, until))
            await _sleep_unless(stop, clock.sleep(seconds))

    async def run_once(self) -> list[Task]:
        """Submit every due fire of every enabled schedule; the tasks this pass stored
        (fires another scheduler stored first are not among them)."""
        now = self.service.clock.now()
        stored: list[Task] = []
        self._next_wake = None
        for schedule in await self.schedules.list():
            try:
                stored.extend(await self._fire_due(schedule, now))
                self._note_next(schedule, now)
            except InfrastructureError:
                raise
            except TaskQueueError as exc:  # its type is gone, its payload no longer valid
                # Left unsettled: a process that knows the type fires it (same keys).
                if schedule.name not in self._warned:
                    self._warned.add(schedule.name)
                    log.warning("schedule %r cannot fire here: %s", schedule.name, exc)
        return stored

    def _note_next(self, schedule: Schedule, now: datetime) -> None:
        upcoming = schedule.next_fire_at(self.calendar, now)
        if upcoming is not None and (self._next_wake is None or upcoming < self._next_wake):
            self._next_wake = upcoming

    async def _fire_due(self, schedule: Schedule, now: datetime) -> list[Task]:
        plan = schedule.plan(self.calendar, now)
        if plan is None:
            return []
        stored = [
            task
            for fire_at in plan.fires
            if (task := await self._fire(schedule, fire_at, now)) is not None
        ]
        await self.schedules.mark_fired(schedule.name, plan.through)
        if plan.fires:
            log.debug(
                "schedule %r: %d fires, %d stored here", schedule.name, len(plan.fires), len(stored)
            )
        return stored

    async def _fire(self, schedule: Schedule, fire_at: datetime, now: datetime) -> Task | None:
        """Store the fire's task (held) under its key, then send it; None when another
        scheduler stored it first."""
        service = self.service
        valid = service.validate_and_build(
            SubmitRequest(type=schedule.type, payload=schedule.payload)
        )
        task = replace(valid.task, run_at=fire_at, held=True)
        key = schedule.fire_key(fire_at)
        existing = await service.repository.add_idempotent(
            task,
            key=key,
            fingerprint=key,
            expires_at=fire_at + timedelta(seconds=SCHEDULE_FIRE_WINDOW_SECONDS),
            now=now,
        )
        if existing is not None:
            return None
        service.events.record(TaskEvent(TaskEventKind.SUBMITTED, task, now))
        try:
            await service.queue.send(task.id)
        except InfrastructureError as exc:
            log.warning(
                "schedule %r: sending task %s failed (the reconciler will): %s",
                schedule.name,
                task.id,
                exc,
            )
            return task
        with contextlib.suppress(ConcurrencyConflict, TaskNotFound):  # a worker was first
            await service.repository.transition(task.unhold(service.clock.now()), expected=task)
        return task


async def _sleep_unless(stop: asyncio.Event, sleeping: object) -> None:
    """Await the clock's sleep, or until ``stop`` is set, whichever is first."""
    sleeper = asyncio.ensure_future(sleeping)  # type: ignore[call-overload]
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for job in (sleeper, stopper):
            job.cancel()
        await asyncio.gather(sleeper, stopper, return_exceptions=True)
