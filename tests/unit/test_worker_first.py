"""The worker goes first (issue 18): on one event loop, submissions through the API
wait while the worker is behind, so accepting keeps pace with finishing."""

from __future__ import annotations

import asyncio
import time

import httpx

from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.models import JSON, TaskStatus
from domain.task_types import TaskType
from entrypoints.http.app import create_app
from entrypoints.runtime import build_worker
from entrypoints.worker_first import SLOW_FULL_SECONDS, WorkerFirst
from tests.support.http_app import serve_app

NOOP = {"type": "noop"}


async def noop(payload: JSON) -> None:
    return None


async def test_no_wait_while_the_worker_keeps_up() -> None:
    first = WorkerFirst(2, max_wait=5)
    first.accepted(2)
    started = time.monotonic()
    await first.wait_turn()
    assert time.monotonic() - started < 0.5


async def test_a_submission_waits_until_the_worker_takes_its_share() -> None:
    first = WorkerFirst(2, max_wait=5)
    first.accepted(5)
    waiting = asyncio.create_task(first.wait_turn())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    first.taken(2, 2)  # 3 still ahead: over the limit
    await asyncio.sleep(0.01)
    assert not waiting.done()
    first.taken(1, 1)
    await asyncio.wait_for(waiting, 1)
    assert first.ahead == 2


async def test_the_wait_is_bounded() -> None:
    first = WorkerFirst(1, max_wait=0.02)
    first.accepted(10)
    await asyncio.wait_for(first.wait_turn(), 1)


async def test_a_short_receive_means_nothing_is_ahead() -> None:
    first = WorkerFirst(1, max_wait=5)
    first.accepted(100)  # delayed tasks, or another process took them
    first.taken(3, 10)
    assert first.ahead == 0
    assert not first.must_wait()


async def test_no_wait_when_slow_tasks_keep_the_slots_full() -> None:
    first = WorkerFirst(1, max_wait=5)
    first.accepted(10)
    first.full()
    assert first.must_wait()  # just filled: the worker may be starved
    await asyncio.sleep(SLOW_FULL_SECONDS * 1.5)
    assert not first.must_wait()  # nothing finished for a while: busy, not starved
    first.finished()
    assert first.must_wait()  # tasks finish: the worker makes progress


async def test_under_a_flood_the_worker_finishes_what_the_api_accepts() -> None:
    """32 clients post without pause to the app while a worker runs on the same loop:
    when the flood stops, the tasks still waiting are bounded by the worker's share,
    not by how long the flood lasted."""
    container = build_container(Settings(backend="memory", worker_count=5))
    container.task_types().add(TaskType("noop", noop))
    # Generous clocks: a machine busy with other work must not make a no-op look slow.
    first = WorkerFirst(5, max_wait=30, slow_full=5)
    app = create_app(container, first=first)
    stop = asyncio.Event()
    accepted = 0
    async with serve_app(app) as client:
        worker = asyncio.create_task(build_worker(container, first).run(stop))

        async def flood(client: httpx.AsyncClient) -> None:
            nonlocal accepted
            for _ in range(40):
                assert (await client.post("/tasks", json=NOOP)).status_code == 201
                accepted += 1

        await asyncio.gather(*(flood(client) for _ in range(32)))
        counts = await container.repository().count_by_status()
        stop.set()
        await worker
    waiting = counts[TaskStatus.PENDING] + counts[TaskStatus.PROCESSING]
    assert accepted == 32 * 40
    assert waiting <= 5 + 5 + 32, counts  # ahead limit + in flight + one per client
