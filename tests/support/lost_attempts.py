"""A rig for lost attempts: the processing use case on the memory adapters with a
hand-moved clock, and workers that die holding tasks (their lease simply expires)."""

from __future__ import annotations

from typing import Any

from adapters.clock import ManualClock
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from domain.models import Delivery, Task
from domain.ports import HandlerSandbox
from domain.processing import ProcessorSettings, TaskProcessor
from domain.services import SubmitRequest, TaskService
from domain.task_types import HandlerRegistry, TaskType
from tests.support.processing_rig import seeded_processor

LEASE = 30.0


class LostAttemptRig:
    def __init__(self, *task_types: TaskType, sandbox: HandlerSandbox | None = None) -> None:
        self.clock = ManualClock()
        self.repo = InMemoryTaskRepository()
        self.queue = InMemoryTaskQueue(self.clock, max_receive_count=20)
        self.task_types = HandlerRegistry()
        for task_type in task_types:
            self.task_types.add(task_type)
        self.service = TaskService(
            self.repo, self.queue, self.clock, self.task_types, InMemoryWorkerRegistry()
        )
        self.sandbox = sandbox

    def processor(self, *, isolating: bool = True) -> TaskProcessor:
        """A worker's processor; with ``isolating=False`` it has no sandbox."""
        settings = ProcessorSettings(visibility_timeout=LEASE)
        sandbox = self.sandbox if isolating else None
        return seeded_processor(
            self.repo, self.queue, self.clock, self.task_types, settings, sandbox=sandbox
        )

    async def submit(self, task_type: str, payload: Any = None, max_attempts: int = 3) -> Task:
        request = SubmitRequest(type=task_type, payload=payload, max_attempts=max_attempts)
        return await self.service.submit(request)

    async def receive(self) -> Delivery:
        [delivery] = await self.queue.receive(
            max_messages=1, visibility_timeout=LEASE, wait_seconds=0
        )
        return delivery

    async def next_delivery(self) -> Delivery | None:
        """The next message, waiting out retry backoffs; None when the queue is empty."""
        for _ in range(10):
            deliveries = await self.queue.receive(
                max_messages=1, visibility_timeout=LEASE, wait_seconds=0
            )
            if deliveries:
                return deliveries[0]
            await self.clock.advance(1)
        return None

    async def worker_dies_holding(self, count: int = 1) -> None:
        """A worker claims the next ``count`` tasks, then its process dies: nothing is
        settled and the leases run out."""
        for _ in range(count):
            delivery = await self.receive()
            assert delivery.task_id is not None
            stored = await self.repo.get(delivery.task_id)
            await self.repo.transition(
                stored.claim("dead", self.clock.now(), LEASE), expected=stored
            )
        await self.clock.advance(LEASE + 1)
