"""``InMemoryScheduleStore``: the schedules of this process."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from domain.errors import InvalidInput, ScheduleNotFound
from domain.limits import MAX_SCHEDULES
from domain.schedules import Schedule


class InMemoryScheduleStore:
    def __init__(self) -> None:
        self._schedules: dict[str, Schedule] = {}

    async def put(self, schedule: Schedule) -> bool:
        new = schedule.name not in self._schedules
        if new and len(self._schedules) >= MAX_SCHEDULES:
            raise InvalidInput("name", f"at most {MAX_SCHEDULES} schedules can be stored")
        self._schedules[schedule.name] = schedule
        return new

    async def get(self, name: str) -> Schedule | None:
        return self._schedules.get(name)

    async def list(self) -> list[Schedule]:
        return [self._schedules[name] for name in sorted(self._schedules)]

    async def delete(self, name: str) -> None:
        if self._schedules.pop(name, None) is None:
            raise ScheduleNotFound(name)

    async def mark_fired(self, name: str, through: datetime) -> None:
        schedule = self._schedules.get(name)
        if schedule is None:
            return
        if schedule.fired_through is None or schedule.fired_through < through:
            self._schedules[name] = replace(schedule, fired_through=through)
