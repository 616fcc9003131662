"""Use cases on schedules: create or replace, list with the next fire, delete, and
store the schedules declared on task types."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from domain.coordination_ports import ScheduleStore
from domain.errors import InvalidInput, ScheduleNotFound
from domain.ports import Clock
from domain.schedules import (
    CronCalendar,
    Schedule,
    ScheduleRequest,
    ScheduleRules,
    adopt,
    check_name,
    declared_requests,
)
from domain.task_types import HandlerRegistry

log = logging.getLogger("taskq.schedules")


@dataclass(frozen=True)
class ScheduleView:
    schedule: Schedule
    next_fire_at: datetime | None
    """The next fire not yet settled; None while disabled."""


@dataclass(eq=False)
class ScheduleService:
    schedules: ScheduleStore
    task_types: HandlerRegistry
    calendar: CronCalendar
    clock: Clock

    @property
    def rules(self) -> ScheduleRules:
        return ScheduleRules(self.task_types, self.calendar)

    def _view(self, schedule: Schedule) -> ScheduleView:
        return ScheduleView(schedule, schedule.next_fire_at(self.calendar, self.clock.now()))

    async def put(self, request: ScheduleRequest) -> tuple[ScheduleView, bool]:
        """Create the schedule, or replace the one of that name (its first fire is then
        the first after now); True when it is new. ``InvalidInput`` naming the field."""
        schedule = self.rules.build(request, self.clock.now())
        created = await self.schedules.put(schedule)
        return self._view(schedule), created

    async def list(self) -> list[ScheduleView]:
        return [self._view(schedule) for schedule in await self.schedules.list()]

    async def get(self, name: str) -> ScheduleView:
        check_name(name)
        schedule = await self.schedules.get(name)
        if schedule is None:
            raise ScheduleNotFound(name)
        return self._view(schedule)

    async def delete(self, name: str) -> None:
        try:
            check_name(name)
        except InvalidInput:
            raise ScheduleNotFound(name) from None
        await self.schedules.delete(name)

    async def store_declared(self) -> int:
        """Store the schedules declared on task types (``TaskType.schedule``): a new one,
        or a changed declaration (what was settled is kept). One taken over through the
        API is left as it is. Returns how many were written; a declaration that is not
        valid is logged and skipped."""
        written = 0
        now = self.clock.now()
        declarations = {
            name: (t.schedule, t.schedule_timezone)
            for name in self.task_types.names()
            if (t := self.task_types.get(name)).schedule is not None
        }
        for request in declared_requests(declarations):
            try:
                declared = self.rules.build(request, now, declared=True)
            except InvalidInput as exc:
                log.error(
                    "task type %r declares a schedule that is not valid: %s", request.name, exc
                )
                continue
            chosen = adopt(declared, await self.schedules.get(request.name))
            if chosen is not None:
                await self.schedules.put(chosen)
                written += 1
        return written
