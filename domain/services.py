"""Use cases the entrypoints call: submit, get, list, metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from domain.errors import (
    InfrastructureError,
    QueueSendFailed,
    ValidationError,
)
from domain.models import JSON, MetricsSnapshot, Page, Task, TaskStatus
from domain.ports import Clock, TaskQueue, TaskRepository, WorkerRegistry
from domain.registry import HandlerRegistry

MAX_QUEUE_DELAY_SECONDS = 900
"""SQS DelaySeconds is at most 900 (15 minutes)."""
MAX_TIMEOUT_SECONDS = 12 * 3600
"""A handler timeout is bounded like an SQS visibility timeout (12 h)."""
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class SubmitRequest:
    type: str
    payload: JSON = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    delay_seconds: float = 0


@dataclass(frozen=True)
class Limits:
    default_max_attempts: int = 3
    max_attempts_limit: int = 19
    """At most max_receive_count - 1, so the worker fails an exhausted task before the
    queue's own redrive policy moves its message away."""


class TaskService:
    def __init__(
        self,
        repository: TaskRepository,
        queue: TaskQueue,
        clock: Clock,
        registry: HandlerRegistry,
        workers: WorkerRegistry,
        limits: Limits | None = None,
    ) -> None:
        self.repository = repository
        self.queue = queue
        self.clock = clock
        self.registry = registry
        self.workers = workers
        self.limits = limits or Limits()

    # -- submit ----------------------------------------------------------------------

    def build(self, request: SubmitRequest) -> tuple[Task, int]:
        """Validate ``request`` and make the task (not yet stored) and its queue delay."""
        if not isinstance(request.type, str) or not request.type.strip():
            raise ValidationError("type", "must be a non-empty string")
        task_type = self.registry.get(request.type)
        task_type.validate(request.payload)

        max_attempts = request.max_attempts
        if max_attempts is None:
            max_attempts = self.limits.default_max_attempts
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise ValidationError("max_attempts", "must be an integer")
        if not 1 <= max_attempts <= self.limits.max_attempts_limit:
            raise ValidationError(
                "max_attempts", f"must be between 1 and {self.limits.max_attempts_limit}"
            )

        timeout = request.timeout_seconds
        if timeout is not None:
            if (
                isinstance(timeout, bool)
                or not isinstance(timeout, int | float)
                or not math.isfinite(timeout)
                or not 0 < timeout <= MAX_TIMEOUT_SECONDS
            ):
                raise ValidationError(
                    "timeout_seconds", f"must be a number in (0, {MAX_TIMEOUT_SECONDS}]"
                )
            timeout = float(timeout)

        delay = request.delay_seconds
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or not 0 <= delay <= MAX_QUEUE_DELAY_SECONDS
        ):
            raise ValidationError(
                "delay_seconds", f"must be a number between 0 and {MAX_QUEUE_DELAY_SECONDS}"
            )
        delay_int = math.ceil(delay)
        now = self.clock.now()
        task = Task.create(
            request.type,
            request.payload,
            now,
            max_attempts=max_attempts,
            timeout_seconds=timeout,
            run_at=now + timedelta(seconds=delay_int) if delay_int else None,
        )
        return task, delay_int

    async def submit(self, request: SubmitRequest) -> Task:
        """Store the task (PENDING), then enqueue it.

        The write comes first so the task is readable at once; if the send fails the
        task stays PENDING, ``QueueSendFailed`` is raised and the reconciler re-sends it.
        """
        task, delay = self.build(request)
        await self.repository.add(task)
        try:
            await self.queue.send(task.id, delay_seconds=delay)
        except InfrastructureError as exc:
            raise QueueSendFailed(task.id, exc.detail) from exc
        return task

    async def submit_many(self, requests: Sequence[SubmitRequest]) -> list[Task]:
        built = [self.build(r) for r in requests]
        for task, _ in built:
            await self.repository.add(task)
        try:
            await self.queue.send_batch([(task.id, delay) for task, delay in built])
        except InfrastructureError as exc:
            raise QueueSendFailed(",".join(t.id for t, _ in built), exc.detail) from exc
        return [task for task, _ in built]

    # -- queries ---------------------------------------------------------------------

    async def get(self, task_id: str) -> Task:
        return await self.repository.get(task_id)

    async def list(
        self, status: TaskStatus, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        return await self.repository.list_by_status(status, limit=limit, cursor=cursor)

    async def metrics(self) -> MetricsSnapshot:
        counts = await self.repository.count_by_status()
        depth = await self.queue.depth()
        dead = await self.queue.dead_letter_count()
        live = await self.workers.live(self.clock.now())
        return MetricsSnapshot(
            counts=counts,
            depth=depth,
            dead_letters=dead,
            active_workers=sum(w.concurrency for w in live),
        )
