"""The queries: one task, pages of tasks by status, dead letters, workers, metrics."""

from __future__ import annotations

import pytest

from domain.errors import InvalidCursor, InvalidInput, TaskNotFound
from domain.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from domain.models import QueueDepth, TaskStatus
from tests.support.service_rig import LEASE_SECONDS, Rig


async def submitted(rig: Rig, count: int, *, apart: float = 1) -> list[str]:
    """``count`` PENDING tasks, oldest first, ``apart`` seconds apart."""
    ids = []
    for i in range(count):
        ids.append((await rig.submit("data-export", f"set-{i}")).id)
        await rig.clock.advance(apart)
    return ids


async def every_page(rig: Rig, status: TaskStatus, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await rig.service.list(status, limit=limit, cursor=cursor)
        pages.append([task.id for task in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


# -- get ------------------------------------------------------------------------------------


async def test_get_returns_the_task_as_stored_now() -> None:
    rig = Rig()
    task = await rig.submit()
    running = await rig.start(task.id)

    assert await rig.service.get(task.id) == running


@pytest.mark.parametrize("task_id", ["00000000-0000-4000-8000-000000000000", "abc", ""])
async def test_get_of_an_unknown_id_is_not_found_naming_it(task_id: str) -> None:
    with pytest.raises(TaskNotFound) as info:
        await Rig().service.get(task_id)

    assert info.value.task_id == task_id


# -- list -----------------------------------------------------------------------------------


async def test_pages_hold_every_task_once_newest_first() -> None:
    rig = Rig()
    ids = await submitted(rig, 7)

    pages = await every_page(rig, TaskStatus.PENDING, limit=3)

    assert pages == [ids[6:3:-1], ids[3:0:-1], ids[0:1]]


async def test_tasks_created_in_the_same_instant_are_paged_without_loss() -> None:
    rig = Rig()
    ids = await submitted(rig, 7, apart=0)

    pages = await every_page(rig, TaskStatus.PENDING, limit=2)

    seen = [task_id for page in pages for task_id in page]
    assert sorted(seen) == sorted(ids) and len(pages) == 4


async def test_a_cursor_stays_good_while_tasks_are_added_and_change_status() -> None:
    rig = Rig()
    ids = await submitted(rig, 6)
    first = await rig.service.list(TaskStatus.PENDING, limit=2)
    assert [t.id for t in first.items] == [ids[5], ids[4]]

    await submitted(rig, 3)  # newer: before the cursor
    await rig.service.cancel(ids[4])  # already seen, leaves the list
    await rig.service.cancel(ids[2])  # not seen yet, leaves the list
    rest = await rig.service.list(TaskStatus.PENDING, limit=10, cursor=first.next_cursor)

    assert [t.id for t in rest.items] == [ids[3], ids[1], ids[0]]
    assert rest.next_cursor is None


async def test_list_holds_only_the_status_asked_for() -> None:
    rig = Rig()
    pending = await rig.submit()
    failed = await rig.in_status(TaskStatus.FAILED)

    assert [t.id for t in (await rig.service.list(TaskStatus.PENDING)).items] == [pending.id]
    assert [t.id for t in (await rig.service.list(TaskStatus.FAILED)).items] == [failed.id]
    empty = await rig.service.list(TaskStatus.COMPLETED)
    assert (empty.items, empty.next_cursor) == ([], None)


async def test_the_default_page_size_is_used_without_a_limit() -> None:
    rig = Rig()
    await submitted(rig, DEFAULT_PAGE_SIZE + 1, apart=0)

    page = await rig.service.list(TaskStatus.PENDING)

    assert len(page.items) == DEFAULT_PAGE_SIZE and page.next_cursor is not None


@pytest.mark.parametrize("limit", [1, MAX_PAGE_SIZE])
async def test_a_limit_within_bounds_is_accepted(limit: int) -> None:
    rig = Rig()
    await submitted(rig, 2, apart=0)

    page = await rig.service.list(TaskStatus.PENDING, limit=limit)

    assert len(page.items) == min(2, limit)


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1])
async def test_a_limit_out_of_bounds_is_refused(limit: int) -> None:
    with pytest.raises(InvalidInput) as info:
        await Rig().service.list(TaskStatus.PENDING, limit=limit)

    assert info.value.field == "limit"
    assert info.value.message == f"must be between 1 and {MAX_PAGE_SIZE}"


@pytest.mark.parametrize("cursor", ["not-a-cursor", "W10", "e30"])
async def test_a_cursor_the_store_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor) as info:
        await Rig().service.list(TaskStatus.PENDING, cursor=cursor)

    assert info.value.field == "cursor"


# -- dead letters ---------------------------------------------------------------------------


async def test_failed_tasks_are_listed_with_their_attempts_and_last_error() -> None:
    rig = Rig()
    for n in range(2):
        task = await rig.submit()
        await rig.fail(task.id, f"error {n}")
        await rig.clock.advance(1)

    page = await rig.service.list(TaskStatus.FAILED)

    assert [(t.attempts, t.error) for t in page.items] == [(1, "error 1"), (1, "error 0")]


async def test_the_dead_letter_count_is_the_queue_dead_letters_poison_included() -> None:
    rig = Rig()
    await rig.submit()
    await rig.queue.send_raw("not a task message")
    deliveries = await rig.queue.receive(max_messages=2, visibility_timeout=30, wait_seconds=0)
    assert await rig.service.dead_letter_count() == 0

    for delivery in deliveries:
        await rig.queue.dead_letter(delivery, reason="poison")

    assert await rig.service.dead_letter_count() == 2
    assert (await rig.service.list(TaskStatus.FAILED)).items == [], "no task failed"


# -- workers and metrics ---------------------------------------------------------------------


async def test_live_workers_are_those_that_beat_lately_oldest_first() -> None:
    rig = Rig()
    late = await rig.beat("w-a", concurrency=4, started_ago=60)
    early = await rig.beat("w-b", concurrency=2, started_ago=120)
    await rig.beat("w-gone", concurrency=8, seen_ago=3600)

    assert await rig.service.live_workers() == [early, late]


async def test_a_worker_that_stops_beating_stops_counting() -> None:
    rig = Rig()
    await rig.beat("w-1", concurrency=4)

    await rig.clock.advance(3600)

    assert await rig.service.live_workers() == []
    assert (await rig.service.metrics()).active_workers == 0


async def test_metrics_of_an_empty_engine_are_zero_for_every_status() -> None:
    snapshot = await Rig().service.metrics()

    assert snapshot.counts == dict.fromkeys(TaskStatus, 0)
    assert (snapshot.total, snapshot.depth, snapshot.active_workers) == (0, QueueDepth(0, 0, 0), 0)


async def test_metrics_count_tasks_messages_and_worker_slots() -> None:
    rig = Rig()
    await rig.submit()
    await rig.submit(delay_seconds=60)
    await rig.submit(delay_seconds=30 * 24 * 3600)  # held: no message
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        await rig.in_status(status)
    await rig.queue.receive(max_messages=1, visibility_timeout=LEASE_SECONDS, wait_seconds=0)
    await rig.beat("w-1", concurrency=4)
    await rig.beat("w-2", concurrency=2)
    await rig.beat("w-gone", concurrency=8, seen_ago=3600)

    snapshot = await rig.service.metrics()

    assert snapshot.counts == {
        TaskStatus.PENDING: 3,
        TaskStatus.PROCESSING: 0,
        TaskStatus.COMPLETED: 1,
        TaskStatus.FAILED: 1,
        TaskStatus.CANCELLED: 1,
    }
    assert snapshot.total == 6
    assert snapshot.depth == QueueDepth(visible=3, in_flight=1, delayed=1)
    assert snapshot.active_workers == 6
