"""The worker runner on the memory backend: concurrency, draining, release on stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.clock import SystemClock
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from domain.models import Delivery, TaskStatus
from domain.processing import ProcessorSettings, TaskProcessor
from domain.retry import RetryPolicy
from domain.services import SubmitRequest, TaskService
from domain.task_types import HandlerRegistry, TaskType
from entrypoints.worker import Worker, WorkerSettings


class ReceiveLog(InMemoryTaskQueue):
    """The memory queue, noting how many deliveries each receive returned."""

    received: list[int]

    async def receive(
        self, *, max_messages: int, visibility_timeout: float, wait_seconds: float
    ) -> list[Delivery]:
        deliveries = await super().receive(
            max_messages=max_messages,
            visibility_timeout=visibility_timeout,
            wait_seconds=wait_seconds,
        )
        self.received = [*getattr(self, "received", []), len(deliveries)]
        return deliveries


class Rig:
    def __init__(
        self,
        *,
        concurrency: int = 5,
        grace: float = 5.0,
        pace: float = 0.0,
        cancel_wait: float = 10.0,
    ) -> None:
        self.clock = SystemClock()
        self.repo = InMemoryTaskRepository()
        self.queue = ReceiveLog(self.clock)
        self.workers = InMemoryWorkerRegistry()
        self.task_types = HandlerRegistry()
        self.service = TaskService(self.repo, self.queue, self.clock, self.task_types, self.workers)
        processor = TaskProcessor(
            self.repo,
            self.queue,
            self.clock,
            self.task_types,
            RetryPolicy(base_seconds=0.01, cap_seconds=0.05),
            ProcessorSettings(visibility_timeout=30),
        )
        self.worker = Worker(
            processor=processor,
            queue=self.queue,
            workers=self.workers,
            clock=self.clock,
            settings=WorkerSettings(
                concurrency=concurrency,
                poll_wait_seconds=1,
                shutdown_grace_seconds=grace,
                worker_ttl_seconds=30,
                receive_pace_seconds=pace,
                cancel_wait_seconds=cancel_wait,
            ),
        )
        self.stop = asyncio.Event()

    async def start(self, job: Any, n: int) -> tuple[list[str], asyncio.Task[None]]:
        """Submit ``n`` tasks that run ``job`` and start the worker: their ids, and the
        running worker."""
        self.task_types.add(TaskType("job", job))
        ids = await self.submit("job", n)
        return ids, asyncio.create_task(self.worker.run(self.stop))

    async def submit(self, task_type: str, n: int) -> list[str]:
        tasks = [await self.service.submit(SubmitRequest(type=task_type)) for _ in range(n)]
        return [t.id for t in tasks]

    async def wait_until_final(self, ids: list[str], timeout: float = 10) -> None:
        async def all_final() -> None:
            while not all([(await self.repo.get(i)).status.is_final for i in ids]):
                await asyncio.sleep(0.01)

        await asyncio.wait_for(all_final(), timeout)


async def test_the_worker_runs_tasks_concurrently_up_to_its_limit() -> None:
    rig = Rig(concurrency=5)
    running = 0
    peak = 0

    async def job(payload: Any) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    ids, runner = await rig.start(job, 50)
    await rig.wait_until_final(ids)
    assert peak == 5
    live = await rig.workers.live(rig.clock.now())
    assert [w.concurrency for w in live] == [5]
    assert [w.heartbeat_seconds for w in live] == [10], "it beats every third of its TTL"
    rig.stop.set()
    await asyncio.wait_for(runner, 5)
    assert all([(await rig.repo.get(i)).status is TaskStatus.COMPLETED for i in ids])
    assert await rig.workers.live(rig.clock.now()) == [], "a stopped worker deregisters"


def sleeper(seconds: float, started: asyncio.Event) -> Callable[[Any], Awaitable[str]]:
    """A handler that sets ``started``, then sleeps ``seconds``."""

    async def job(payload: Any) -> str:
        started.set()
        await asyncio.sleep(seconds)
        return "finished"

    return job


async def test_stop_lets_in_flight_tasks_finish_within_the_grace_period() -> None:
    rig = Rig(concurrency=3, grace=5)
    started = asyncio.Event()
    ids, runner = await rig.start(sleeper(0.3, started), 3)
    await started.wait()
    rig.stop.set()
    await asyncio.wait_for(runner, 5)
    assert [(await rig.repo.get(i)).status for i in ids] == [TaskStatus.COMPLETED] * 3


async def test_tasks_unfinished_after_the_grace_period_are_released_at_once() -> None:
    rig = Rig(concurrency=2, grace=0.2)
    started = asyncio.Event()
    ids, runner = await rig.start(sleeper(60, started), 4)
    await started.wait()
    await asyncio.sleep(0.05)
    rig.stop.set()
    await asyncio.wait_for(runner, 5)
    statuses = [(await rig.repo.get(i)).status for i in ids]
    assert statuses == [TaskStatus.PENDING] * 4
    depth = await rig.queue.depth()
    assert depth.visible == 4, "released tasks are redelivered at once, not after a lease"


async def test_while_tasks_run_a_paced_worker_gathers_messages_into_one_receive() -> None:
    """Tasks submitted one at a time while another runs: with a pace, the next receive
    waits for them and takes them together; without one, each is received alone."""
    for pace, expected in ((0.4, [1, 4]), (0.0, [1, 1, 1, 1, 1])):
        rig = Rig(concurrency=10, pace=pace)
        started = asyncio.Event()
        ids, runner = await rig.start(sleeper(0.6, started), 1)
        await started.wait()
        for _ in range(4):
            ids += await rig.submit("job", 1)
            await asyncio.sleep(0.03)
        await rig.wait_until_final(ids)
        rig.stop.set()
        await asyncio.wait_for(runner, 5)
        assert [n for n in rig.queue.received if n] == expected, pace


async def test_after_an_empty_receive_a_paced_worker_takes_a_lone_task_at_once() -> None:
    """Pace 1.5 s, long polls of 1 s: the task after a receive brought one waits for
    the pace; once a long poll found nothing, the next lone task is not held back."""
    rig = Rig(concurrency=10, pace=1.5)
    ids, runner = await rig.start(sleeper(0.01, asyncio.Event()), 1)
    await rig.wait_until_final(ids)
    while 0 not in rig.queue.received:  # paced, then a long poll that found nothing
        await asyncio.sleep(0.05)
    later = await rig.submit("job", 1)
    await rig.wait_until_final(later, timeout=1.2)  # less than the pace
    rig.stop.set()
    await asyncio.wait_for(runner, 5)
    assert [n for n in rig.queue.received if n] == [1, 1]


async def test_a_handler_that_swallows_its_cancel_does_not_hold_the_shutdown() -> None:
    rig = Rig(concurrency=2, grace=0.1, cancel_wait=0.2)
    started = asyncio.Event()
    release = asyncio.Event()

    async def stubborn(payload: Any) -> str:
        started.set()
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue  # ignores every cancel
        return "late"

    ids, runner = await rig.start(stubborn, 1)
    await asyncio.wait_for(started.wait(), 5)
    rig.stop.set()
    await asyncio.wait_for(runner, 5)  # grace + cancel wait, not the handler's end
    assert (await rig.repo.get(ids[0])).status is TaskStatus.PROCESSING, "its lease brings it back"
    release.set()
