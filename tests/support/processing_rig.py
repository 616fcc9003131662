"""The processing use case (``TaskProcessor``) and the service that feeds it, on the
memory adapters with a hand-moved clock: a worker's view of the engine, without I/O."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from adapters.clock import ManualClock
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from domain.models import Delivery, Task
from domain.ports import HandlerSandbox, TaskQueue, TaskRepository
from domain.processing import Outcome, ProcessorSettings, TaskProcessor
from domain.retry import RetryPolicy
from domain.services import SubmitRequest, TaskService
from domain.task_types import HandlerRegistry, TaskType

LEASE = 30.0
"""The visibility timeout of every receive: the lease of an attempt, in seconds."""


def seeded_processor(
    repo: TaskRepository,
    queue: TaskQueue,
    clock: ManualClock,
    task_types: HandlerRegistry,
    settings: ProcessorSettings,
    *,
    retry_cap: float = 1,
    sandbox: HandlerSandbox | None = None,
) -> TaskProcessor:
    """A processor whose retries wait 1 s (at most ``retry_cap``), jittered by a seeded
    generator, so a test knows when a retry is due."""
    retry = RetryPolicy(base_seconds=1, cap_seconds=retry_cap, rng=random.Random(7))
    return TaskProcessor(repo, queue, clock, task_types, retry, settings, sandbox=sandbox)


class ProcessingRig:
    """A service and a processor sharing one repository, queue and clock. A test may
    replace ``repo`` or ``queue`` (and then ``service.repository``/``service.queue``, and
    ``processor`` with ``new_processor()``) by a fake subclass of the memory adapter."""

    def __init__(self, heartbeat: float | None = None) -> None:
        self.clock = ManualClock()
        self.repo = InMemoryTaskRepository()
        self.queue = InMemoryTaskQueue(self.clock, max_receive_count=10)
        self.task_types = HandlerRegistry()
        self.service = TaskService(
            self.repo, self.queue, self.clock, self.task_types, InMemoryWorkerRegistry()
        )
        self.settings = ProcessorSettings(visibility_timeout=LEASE, heartbeat_interval=heartbeat)
        self.processor = self.new_processor()

    def new_processor(self) -> TaskProcessor:
        return seeded_processor(
            self.repo, self.queue, self.clock, self.task_types, self.settings, retry_cap=10
        )

    def handler(self, name: str, fn: Any, timeout: float = 60) -> None:
        self.task_types.add(TaskType(name, fn, timeout))

    async def submit(self, task_type: str, payload: Any = None, **options: Any) -> Task:
        return await self.service.submit(SubmitRequest(type=task_type, payload=payload, **options))

    async def receive(self) -> Delivery:
        deliveries = await self.queue.receive(
            max_messages=1, visibility_timeout=LEASE, wait_seconds=0
        )
        assert len(deliveries) == 1, "expected one visible message"
        return deliveries[0]

    async def receive_when_visible(self, step: float = 0.5) -> Delivery:
        """The next delivery, moving the clock on until one is visible."""
        for _ in range(10_000):
            got = await self.queue.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=0)
            if got:
                return got[0]
            await self.clock.advance(step)
        raise AssertionError("no message became visible")

    async def nothing_visible(self) -> bool:
        return not await self.queue.receive(
            max_messages=1, visibility_timeout=LEASE, wait_seconds=0
        )


async def process_in_time(rig: ProcessingRig, delivery: Delivery) -> Outcome:
    """Process ``delivery`` while moving the clock on, for the pauses it takes."""
    running = asyncio.ensure_future(rig.processor.process(delivery))
    while not running.done():
        await rig.clock.advance(0.05)
    return running.result()
