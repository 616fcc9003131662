"""The scheduler on the memory adapters and a hand-moved clock: which fires become
tasks, across a daylight-saving change, with missed fires, and with several
schedulers on one store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from adapters.clock import ManualClock
from adapters.cron import CroniterCalendar
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from adapters.schedules.memory import InMemoryScheduleStore
from domain.models import Task, TaskStatus
from domain.priorities import Priority
from domain.reconcile import Reconciler
from domain.schedule_service import ScheduleService
from domain.scheduler import Scheduler
from domain.schedules import ScheduleRequest
from domain.services import TaskService
from domain.task_types import HandlerRegistry, TaskType

PARIS = ZoneInfo("Europe/Paris")


@dataclass
class Rig:
    clock: ManualClock
    repository: InMemoryTaskRepository = field(default_factory=InMemoryTaskRepository)
    schedules: InMemoryScheduleStore = field(default_factory=InMemoryScheduleStore)
    task_types: HandlerRegistry = field(default_factory=HandlerRegistry)

    def __post_init__(self) -> None:
        self.queue = InMemoryTaskQueue(self.clock)
        self.task_types.add(TaskType("tick", lambda payload: payload, 5.0))
        self.calendar = CroniterCalendar()
        self.service = ScheduleService(self.schedules, self.task_types, self.calendar, self.clock)

    def task_service(self) -> TaskService:
        return TaskService(
            self.repository, self.queue, self.clock, self.task_types, InMemoryWorkerRegistry()
        )

    def scheduler(self) -> Scheduler:
        """A scheduler of its own (as in another process) on the shared stores."""
        return Scheduler(self.schedules, self.task_service(), self.calendar)

    async def tasks(self) -> list[Task]:
        page = await self.repository.list_by_status(TaskStatus.PENDING, limit=10_000)
        return sorted(page.items, key=lambda task: task.run_at or task.created_at)

    async def fire_times(self, zone: ZoneInfo = PARIS) -> list[str]:
        return [
            task.run_at.astimezone(zone).strftime("%d %H:%M%z")
            for task in await self.tasks()
            if task.run_at is not None
        ]


def rig_at(start: datetime) -> Rig:
    return Rig(ManualClock(start))


async def step_through(rig: Rig, scheduler: Scheduler, seconds: float, step: float) -> None:
    elapsed = 0.0
    while elapsed < seconds:
        await scheduler.run_once()
        await rig.clock.advance(step)
        elapsed += step
    await scheduler.run_once()


async def test_a_day_with_a_spring_forward_fires_the_skipped_time_once_after_the_gap() -> None:
    # Paris, 29 March 2026: at 02:00 the clocks jump to 03:00.
    rig = rig_at(datetime(2026, 3, 28, 22, 0, tzinfo=UTC))  # 23:00 local
    await rig.service.put(ScheduleRequest("at-0230", "tick", "30 2 * * *", timezone="Europe/Paris"))
    await step_through(rig, rig.scheduler(), 26 * 3600, 60)
    assert await rig.fire_times() == ["29 03:00+0200"]  # 02:30 does not exist that night


async def test_an_every_minute_schedule_in_the_gap_fires_once_at_its_end() -> None:
    rig = rig_at(datetime(2026, 3, 29, 0, 30, tzinfo=UTC))  # 01:30 CET
    await rig.service.put(ScheduleRequest("g", "tick", "*/20 2 * * *", timezone="Europe/Paris"))
    await step_through(rig, rig.scheduler(), 2 * 3600, 30)
    assert await rig.fire_times() == ["29 03:00+0200"]  # 02:00, 02:20, 02:40: one fire


async def test_an_hourly_schedule_follows_elapsed_time_through_a_skipped_hour() -> None:
    rig = rig_at(datetime(2026, 3, 28, 23, 30, tzinfo=UTC))  # 00:30 CET
    await rig.service.put(ScheduleRequest("h", "tick", "15 * * * *", timezone="Europe/Paris"))
    await step_through(rig, rig.scheduler(), 3 * 3600, 60)
    assert await rig.fire_times() == ["29 01:15+0100", "29 03:15+0200", "29 04:15+0200"]


async def test_a_day_with_a_fall_back_fires_a_repeated_time_once() -> None:
    # Paris, 25 October 2026: at 03:00 the clocks go back to 02:00.
    rig = rig_at(datetime(2026, 10, 24, 22, 0, tzinfo=UTC))
    await rig.service.put(ScheduleRequest("at-0230", "tick", "30 2 * * *", timezone="Europe/Paris"))
    await step_through(rig, rig.scheduler(), 26 * 3600, 60)
    assert await rig.fire_times() == ["25 02:30+0200"]  # not again at 02:30+0100


async def test_an_hourly_schedule_follows_elapsed_time_through_a_repeated_hour() -> None:
    rig = rig_at(datetime(2026, 10, 24, 23, 0, tzinfo=UTC))  # 01:00 CEST
    await rig.service.put(ScheduleRequest("h", "tick", "30 * * * *", timezone="Europe/Paris"))
    await step_through(rig, rig.scheduler(), 3 * 3600, 60)
    assert await rig.fire_times() == ["25 01:30+0200", "25 02:30+0200", "25 02:30+0100"]


@pytest.mark.parametrize(("missed", "expected"), [("skip", 0), ("run_once", 1)])
async def test_fires_missed_while_nothing_ran(missed: str, expected: int) -> None:
    rig = rig_at(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    await rig.service.put(ScheduleRequest("m", "tick", "*/5 * * * *", missed=missed))
    await rig.clock.advance(3600 - 90)  # no scheduler until 12:58:30: 11 fires missed
    stored = await rig.scheduler().run_once()
    assert len(stored) == expected
    if expected:
        assert stored[0].run_at == datetime(2026, 5, 1, 12, 5, tzinfo=UTC)  # the first missed
    # The missed fires are settled: the next pass submits nothing more until 13:00.
    assert await rig.scheduler().run_once() == []
    await rig.clock.advance(90)
    assert [t.run_at for t in await rig.scheduler().run_once()] == [
        datetime(2026, 5, 1, 13, 0, tzinfo=UTC)
    ]


async def test_a_fire_seen_late_but_within_a_minute_is_on_time_even_when_skipping() -> None:
    rig = rig_at(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    await rig.service.put(ScheduleRequest("m", "tick", "*/5 * * * *", missed="skip"))
    await rig.clock.advance(5 * 60 + 40)
    stored = await rig.scheduler().run_once()
    assert [t.run_at for t in stored] == [datetime(2026, 5, 1, 12, 5, tzinfo=UTC)]


async def test_three_schedulers_on_one_store_submit_each_fire_once() -> None:
    rig = rig_at(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    await rig.service.put(ScheduleRequest("s", "tick", "*/2 * * * * *"))
    schedulers = [rig.scheduler() for _ in range(3)]
    for _ in range(30):
        await asyncio.gather(*(s.run_once() for s in schedulers))
        await rig.clock.advance(1)
    tasks = await rig.tasks()
    times = [t.run_at for t in tasks]
    assert len(times) == len(set(times)) == 14  # 12:00:02 to 12:00:28
    assert not any(t.held for t in tasks)  # each was sent its message
    assert (await rig.queue.depth()).visible == 14  # one message per fire, none spare


async def test_a_disabled_schedule_does_not_fire_and_has_no_next_fire() -> None:
    rig = rig_at(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    view, created = await rig.service.put(
        ScheduleRequest("off", "tick", "* * * * *", enabled=False)
    )
    assert created and view.next_fire_at is None
    await rig.clock.advance(600)
    assert await rig.scheduler().run_once() == []


async def test_a_task_stored_by_a_scheduler_that_died_before_its_send_is_sent_later() -> None:
    rig = rig_at(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    await rig.service.put(ScheduleRequest("s", "tick", "* * * * *"))
    await rig.clock.advance(60)

    async def unreachable(
        task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        from domain.errors import InfrastructureError

        raise InfrastructureError("queue", "down")

    scheduler = rig.scheduler()
    scheduler.service.queue.send = unreachable  # type: ignore[method-assign]
    [task] = await scheduler.run_once()
    assert (await rig.repository.get(task.id)).held
    reconciler = Reconciler(rig.repository, rig.queue, rig.clock, stale_after_seconds=60)
    assert (await reconciler.run_once()).scheduled == 1
    assert not (await rig.repository.get(task.id)).held
    assert (await rig.queue.depth()).visible == 1


async def test_the_loop_wakes_for_each_fire_on_the_clock() -> None:
    rig = rig_at(datetime(2026, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC))
    await rig.service.put(ScheduleRequest("s", "tick", "*/10 * * * * *"))
    scheduler = rig.scheduler()
    scheduler.interval_seconds = 60.0
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    for _ in range(35):
        await rig.clock.advance(1)
    stop.set()
    await running
    assert len(await rig.tasks()) == 3  # 12:00:10, :20, :30, each on its wake-up


def test_declared_schedules_come_from_the_task_types() -> None:
    task_types = HandlerRegistry()
    task_types.register("nightly", schedule="0 3 * * *", timezone="Europe/Paris")(lambda p: p)
    found = task_types.get("nightly")
    assert (found.schedule, found.schedule_timezone) == ("0 3 * * *", "Europe/Paris")


async def test_declared_schedules_are_stored_and_an_api_takeover_wins() -> None:
    rig = rig_at(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    rig.task_types.add(TaskType("nightly", lambda p: p, 5.0, schedule="0 3 * * *"))
    assert await rig.service.store_declared() == 1
    assert await rig.service.store_declared() == 0  # unchanged
    [view] = [v for v in await rig.service.list() if v.schedule.name == "nightly"]
    assert view.schedule.declared and view.next_fire_at == datetime(2026, 5, 2, 3, tzinfo=UTC)
    await rig.service.put(ScheduleRequest("nightly", "nightly", "0 3 * * *", enabled=False))
    assert await rig.service.store_declared() == 0
    stored = await rig.schedules.get("nightly")
    assert stored is not None and not stored.enabled and not stored.declared


async def test_a_process_without_the_type_leaves_the_fire_to_one_that_has_it() -> None:
    rig = rig_at(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    await rig.service.put(ScheduleRequest("s", "tick", "* * * * *"))
    await rig.clock.advance(60)
    lacking = Scheduler(
        rig.schedules,
        TaskService(
            rig.repository, rig.queue, rig.clock, HandlerRegistry(), InMemoryWorkerRegistry()
        ),
        rig.calendar,
    )
    assert await lacking.run_once() == []
    assert [t.run_at for t in await rig.scheduler().run_once()] == [
        datetime(2026, 5, 1, 12, 1, tzinfo=UTC)
    ]
