"""The ScheduleStore contract, on every backend (memory, sqlite, aws)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from domain.coordination_ports import ScheduleStore
from domain.errors import ScheduleNotFound
from domain.schedules import MissedFires, Schedule
from tests.support.schedule_backends import SCHEDULE_BACKENDS

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=sorted(SCHEDULE_BACKENDS))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ScheduleStore]:
    async with SCHEDULE_BACKENDS[request.param]() as schedules:
        yield schedules


def schedule(name: str = "nightly", **changes: object) -> Schedule:
    base = Schedule(
        name=name,
        type="email",
        cron="0 3 * * *",
        created_at=T0,
        payload={"to": ["a@example.com"], "n": 1.5, "nested": [None, True]},
        timezone="Europe/Paris",
        missed=MissedFires.RUN_ONCE,
        enabled=False,
        declared=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_a_stored_schedule_reads_back_whole(store: ScheduleStore) -> None:
    assert await store.put(schedule()) is True
    assert await store.get("nightly") == schedule()
    assert await store.get("other") is None


async def test_put_replaces_a_schedule_of_the_same_name(store: ScheduleStore) -> None:
    await store.put(schedule())
    changed = schedule(cron="*/5 * * * *", enabled=True, payload=None)
    assert await store.put(changed) is False
    assert await store.get("nightly") == changed
    assert await store.list() == [changed]


async def test_list_is_by_name(store: ScheduleStore) -> None:
    for name in ("b", "c", "a"):
        await store.put(schedule(name))
    assert [s.name for s in await store.list()] == ["a", "b", "c"]


async def test_delete_removes_and_an_unknown_name_is_not_found(store: ScheduleStore) -> None:
    await store.put(schedule())
    await store.delete("nightly")
    assert await store.get("nightly") is None
    with pytest.raises(ScheduleNotFound):
        await store.delete("nightly")


async def test_mark_fired_only_moves_forward(store: ScheduleStore) -> None:
    await store.put(schedule())
    later, earlier = T0 + timedelta(minutes=5), T0 + timedelta(minutes=1)
    await store.mark_fired("nightly", later)
    await store.mark_fired("nightly", earlier)  # a slower scheduler: ignored
    found = await store.get("nightly")
    assert found is not None and found.fired_through == later
    await store.mark_fired("gone", later)  # no schedule: nothing is created
    assert await store.get("gone") is None


async def test_concurrent_marks_keep_the_latest(store: ScheduleStore) -> None:
    await store.put(schedule())
    times = [T0 + timedelta(seconds=i) for i in range(10)]
    await asyncio.gather(*(store.mark_fired("nightly", t) for t in reversed(times)))
    found = await store.get("nightly")
    assert found is not None and found.fired_through == times[-1]
    assert replace(found, fired_through=None) == schedule()  # the rest untouched
