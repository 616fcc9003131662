"""Handlers that really stop: the stoppable process pool (warm processes, killed at the
timeout or on cancel and replaced), and ``stoppable`` task types through the worker."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.stoppable_pool import SLOT_NICENESS, PooledHandlerSandbox, StoppableProcessPool
from domain.errors import HandlerCrashed, HandlerTimeout
from domain.models import TaskStatus
from domain.processing import Outcome, TaskProcessor
from domain.task_types import HandlerRegistry, TaskType
from tests.support import isolated_handlers as h
from tests.support.lost_attempts import LEASE, LostAttemptRig
from tests.support.sandbox import gone, pid_in

PRELOAD = ["tests.support.isolated_handlers"]


@pytest.fixture
async def pool() -> AsyncIterator[StoppableProcessPool]:
    pool = StoppableProcessPool(2, preload=PRELOAD)
    yield pool
    pool.kill_all()


async def test_a_call_runs_in_a_warm_process_that_serves_the_next_call(
    pool: StoppableProcessPool,
) -> None:
    first = await pool.run(h.where, "a", timeout_seconds=10)
    second = await pool.run(h.where, "b", timeout_seconds=10)

    assert first["pid"] != os.getpid()
    assert second["pid"] == first["pid"] and second["echo"] == "b"
    assert pool.started == 1
    assert await pool.run(h.square, 12, timeout_seconds=10) == 144


async def test_a_call_past_its_timeout_has_its_process_killed_and_replaced(
    pool: StoppableProcessPool, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(HandlerTimeout, match="timed out after 0.3s"):
        await pool.run(h.sleep_long, {"pidfile": str(pidfile)}, timeout_seconds=0.3)

    assert time.monotonic() - started < 5
    assert gone(int(pidfile.read_text()))
    after = await pool.run(h.where, None, timeout_seconds=10)
    assert after["pid"] != int(pidfile.read_text())
    assert pool.started == 2


async def test_cancelling_the_caller_kills_the_process(
    pool: StoppableProcessPool, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    running = asyncio.create_task(
        pool.run(h.sleep_long, {"pidfile": str(pidfile)}, timeout_seconds=60)
    )
    pid = await pid_in(pidfile)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert gone(pid)


async def test_a_crash_is_reported_and_the_slot_gets_a_new_process(
    pool: StoppableProcessPool, tmp_path: Path
) -> None:
    with pytest.raises(HandlerCrashed, match=r"killed by signal SIGKILL \(9\)"):
        await pool.run(h.sigkill_self, {"pidfile": str(tmp_path / "pid")}, timeout_seconds=10)

    assert (await pool.run(h.where, 1, timeout_seconds=10))["echo"] == 1


async def test_an_exception_comes_back_and_the_process_stays(pool: StoppableProcessPool) -> None:
    before = await pool.run(h.where, None, timeout_seconds=10)
    with pytest.raises(ValueError, match="bad payload 7"):
        await pool.run(h.raise_value_error, 7, timeout_seconds=10)
    assert (await pool.run(h.where, None, timeout_seconds=10))["pid"] == before["pid"]


async def test_no_more_calls_run_at_once_than_the_pool_has_processes(
    pool: StoppableProcessPool, tmp_path: Path
) -> None:
    calls = [
        pool.run(
            h.sleep_then_write, {"seconds": 0.4, "path": str(tmp_path / f"{n}")}, timeout_seconds=10
        )
        for n in range(3)
    ]
    started = time.monotonic()
    assert await asyncio.gather(*calls) == ["wrote"] * 3
    assert time.monotonic() - started >= 0.8  # two at a time: the third waited
    assert pool.started == 2


async def test_a_warm_call_costs_well_under_a_fresh_process(pool: StoppableProcessPool) -> None:
    await pool.run(h.where, None, timeout_seconds=10)  # the slot's start, paid once
    calls = 200
    started = time.perf_counter()
    for n in range(calls):
        await pool.run(h.square, n, timeout_seconds=10)
    per_call = (time.perf_counter() - started) / calls
    print(f"stoppable pool: {per_call * 1000:.3f} ms per warm call")
    assert per_call < 0.005  # 0.05 ms measured here; a fresh forked child costs ~8 ms


def test_large_calls_on_a_warm_process_under_uvloop() -> None:
    """``taskq serve`` runs on uvloop, whose ``add_reader`` leaves the pipe non-blocking
    (libuv's poll handle): a warm slot's next call of more than the socket's buffer (an
    image to resize) then failed half-written, as a crash of its process."""
    uvloop = pytest.importorskip("uvloop")
    big = "x" * (2 * 1024 * 1024)

    async def calls() -> list[Any]:
        pool = StoppableProcessPool(1, preload=PRELOAD)
        try:
            return [await pool.run(h.where, big, timeout_seconds=30) for _ in range(3)]
        finally:
            pool.kill_all()

    answers = uvloop.run(calls())

    assert [a["echo"] == big for a in answers] == [True] * 3
    assert len({a["pid"] for a in answers}) == 1  # one warm process served all three


def test_a_pool_never_forks_the_worker_and_has_a_process() -> None:
    with pytest.raises(ValueError, match="never forks"):
        StoppableProcessPool(1, start_method="fork")
    with pytest.raises(ValueError, match="at least 1"):
        StoppableProcessPool(0)


# -- stoppable task types through the worker ------------------------------------------


def stoppable_rig(
    task_type: TaskType, pool: StoppableProcessPool | None
) -> tuple[LostAttemptRig, TaskProcessor]:
    env = LostAttemptRig(task_type)
    processor = env.processor(isolating=False)
    if pool is not None:
        processor = dataclasses.replace(processor, stoppable=PooledHandlerSandbox(pool))
    return env, processor


async def run_sleeper(tmp_path: Path, *, stoppable: bool, pool: StoppableProcessPool) -> Path:
    """A task whose handler sleeps 1.5 s past its 0.5 s timeout, then writes a file;
    one attempt only. Returns the file it would write."""
    late = tmp_path / "late.txt"
    sleeper = TaskType("sleeper", h.sleep_then_write, 0.5, stoppable=stoppable)
    env, processor = stoppable_rig(sleeper, pool if stoppable else None)
    task = await env.submit("sleeper", {"seconds": 1.5, "path": str(late)}, max_attempts=1)

    assert await asyncio.wait_for(processor.process(await env.receive()), 10) is Outcome.FAILED
    failed = await env.repo.get(task.id)
    assert failed.status is TaskStatus.FAILED
    assert (
        failed.error is not None and "HandlerTimeout: sleeper timed out after 0.5s" in failed.error
    )
    await asyncio.sleep(2.0)  # well past when the handler would have written
    return late


async def test_a_stoppable_handler_past_its_timeout_never_writes_its_file(
    pool: StoppableProcessPool, tmp_path: Path
) -> None:
    assert not (await run_sleeper(tmp_path, stoppable=True, pool=pool)).exists()


async def test_without_stoppable_the_abandoned_thread_writes_it_after_the_failure(
    pool: StoppableProcessPool, tmp_path: Path
) -> None:
    """What ``stoppable`` is for: a thread cannot be stopped, so the side effect lands
    after the task was failed."""
    assert (await run_sleeper(tmp_path, stoppable=False, pool=pool)).exists()


async def test_a_cancel_of_a_running_stoppable_task_kills_its_process(
    pool: StoppableProcessPool, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    slow = TaskType("slow", h.sleep_long, 60, stoppable=True)
    env, processor = stoppable_rig(slow, pool)
    task = await env.submit("slow", {"pidfile": str(pidfile), "seconds": 60})
    processing = asyncio.create_task(processor.process(await env.receive()))
    pid = await pid_in(pidfile)

    await env.service.cancel(task.id)
    await env.clock.advance(LEASE / 3)  # the heartbeat that finds the cancel request

    assert await asyncio.wait_for(processing, 10) is Outcome.CANCELLED
    assert gone(pid)
    assert (await env.repo.get(task.id)).status is TaskStatus.CANCELLED


async def test_without_a_pool_a_stoppable_type_runs_in_the_sandbox(tmp_path: Path) -> None:
    from adapters.isolation import ProcessHandlerSandbox

    where = TaskType("where", h.where, 10, stoppable=True)
    env = LostAttemptRig(where, sandbox=ProcessHandlerSandbox(preload=PRELOAD))
    task = await env.submit("where", "x")

    assert await env.processor().process(await env.receive()) is Outcome.COMPLETED
    result = (await env.repo.get(task.id)).result
    assert isinstance(result, dict) and result["pid"] != os.getpid()


def test_a_stoppable_handler_must_be_a_module_level_function() -> None:
    with pytest.raises(ValueError, match="must be a module-level function"):
        HandlerRegistry().add(TaskType("anon", lambda payload: payload, 5, stoppable=True))


async def test_a_slot_runs_at_a_lower_cpu_priority_than_its_worker(
    pool: StoppableProcessPool,
) -> None:
    slot_niceness = await pool.run(os.nice, 0, timeout_seconds=30)

    assert slot_niceness == min(os.nice(0) + SLOT_NICENESS, 19)
