"""The use cases and a processor wired on given adapters (memory by default), with a
hand-moved clock: submit, process what is on the queue, read back."""

from __future__ import annotations

from typing import Any

from adapters.clock import ManualClock
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from domain.models import Task
from domain.ports import TaskQueue, TaskRepository, WorkerRegistry
from domain.processing import Outcome, ProcessorSettings
from domain.services import SubmitRequest, TaskService
from domain.task_types import HandlerRegistry, TaskType
from tests.support.processing_rig import seeded_processor

LEASE_SECONDS = 30.0


class WorkerRig:
    def __init__(
        self,
        *,
        clock: ManualClock | None = None,
        repository: TaskRepository | None = None,
        queue: TaskQueue | None = None,
        workers: WorkerRegistry | None = None,
    ) -> None:
        self.clock = clock or ManualClock()
        self.repository = repository or InMemoryTaskRepository()
        self.queue = queue or InMemoryTaskQueue(self.clock, max_receive_count=10)
        self.task_types = HandlerRegistry()
        self.service = TaskService(
            self.repository,
            self.queue,
            self.clock,
            self.task_types,
            workers or InMemoryWorkerRegistry(),
        )
        settings = ProcessorSettings(visibility_timeout=LEASE_SECONDS)
        self.processor = seeded_processor(
            self.repository, self.queue, self.clock, self.task_types, settings
        )

    def handler(self, name: str, fn: Any) -> None:
        self.task_types.add(TaskType(name, fn, 60))

    async def submit(self, task_type: str, payload: Any = None, **options: Any) -> Task:
        return await self.service.submit(SubmitRequest(type=task_type, payload=payload, **options))

    async def process_visible(self) -> list[Outcome]:
        """Process every message visible now, one at a time."""
        outcomes: list[Outcome] = []
        while deliveries := await self.queue.receive(
            max_messages=1, visibility_timeout=LEASE_SECONDS, wait_seconds=0
        ):
            outcomes.append(await self.processor.process(deliveries[0]))
        return outcomes
