"""A ``TaskService`` on the memory adapters with a hand-moved clock, for use-case tests.

The rig owns the adapters so a test can look at what a use case left behind (stored
tasks, messages on the queue) and put tasks in any state the way a worker would.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from adapters.blobs import DirectoryBlobStore
from adapters.clock import ManualClock
from adapters.handlers.builtin import register_builtins
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from adapters.stoppable_pool import StoppableProcessPool
from domain.errors import InvalidInput, TaskNotFound
from domain.models import JSON, Task, TaskStatus, WorkerInfo
from domain.reconcile import Reconciler
from domain.services import SubmissionLimits, SubmitRequest, TaskService
from domain.task_types import HandlerRegistry, TaskType

LEASE_SECONDS = 30.0
STALE_SECONDS = 60.0
EMAIL = SubmitRequest(type="email", payload="a@b.co")


def check_count(payload: JSON) -> None:
    """The ``counted`` type's validator: ``{"n": <int>}``; a bad ``n`` names its path."""
    if not isinstance(payload, dict):
        raise TypeError("expected an object")
    if "n" not in payload:
        raise ValueError("missing field 'n'")
    if not isinstance(payload["n"], int):
        raise InvalidInput("payload.n", "must be an integer")


def add_builtins(task_types: HandlerRegistry) -> HandlerRegistry:
    """``task_types`` with the built-in types (email, image-resize, data-export) added,
    for tests that submit them: their handlers' store and pool stay unused."""
    return register_builtins(
        task_types,
        blobs=DirectoryBlobStore(tempfile.gettempdir()),
        cpu=StoppableProcessPool(1),
        tasks=InMemoryTaskRepository(),
        public_url="http://127.0.0.1:8080",
    )


def sample_task_types() -> HandlerRegistry:
    """The built-in types (email, image-resize, data-export) and two of a team's own:
    ``echo`` takes any payload, ``counted`` validates its payload."""
    task_types = add_builtins(HandlerRegistry())
    task_types.add(TaskType("echo", lambda payload: payload, 5.0))
    task_types.add(TaskType("counted", lambda payload: payload, 5.0, check_count))
    return task_types


class Rig:
    """The service and the adapters it runs on. ``repository`` and ``queue`` may be
    replaced by the fakes of ``tests/support/service_fakes.py``."""

    def __init__(
        self,
        *,
        repository: InMemoryTaskRepository | None = None,
        queue: Callable[[ManualClock], InMemoryTaskQueue] = InMemoryTaskQueue,
        limits: SubmissionLimits | None = None,
    ) -> None:
        self.clock = ManualClock()
        self.repository = repository or InMemoryTaskRepository()
        self.queue = queue(self.clock)
        self.workers = InMemoryWorkerRegistry()
        self.task_types = sample_task_types()
        self.limits = limits or SubmissionLimits()
        self.service = TaskService(
            self.repository, self.queue, self.clock, self.task_types, self.workers, self.limits
        )

    def reconciler(self, stale_after: float = STALE_SECONDS, **options: Any) -> Reconciler:
        """A reconciler on the rig's adapters; ``options`` as ``Reconciler`` takes them
        (``held_page_size``, ``max_scheduled``, ...)."""
        return Reconciler(
            self.repository, self.queue, self.clock, stale_after_seconds=stale_after, **options
        )

    # -- putting tasks in a state ----------------------------------------------------

    async def submit(
        self, task_type: str = "email", payload: Any = "a@b.co", **options: Any
    ) -> Task:
        return await self.service.submit(SubmitRequest(type=task_type, payload=payload, **options))

    async def start(self, task_id: str) -> Task:
        """Claim the task as a worker does: PROCESSING, one more attempt, leased."""
        task = await self.repository.get(task_id)
        claimed = task.claim("lease", self.clock.now(), LEASE_SECONDS)
        await self.repository.transition(claimed, expected=task)
        return claimed

    async def fail(self, task_id: str, error: str = "smtp down") -> Task:
        claimed = await self.start(task_id)
        failed = claimed.fail(error, self.clock.now())
        await self.repository.transition(failed, expected=claimed)
        return failed

    async def complete(self, task_id: str, result: JSON = None) -> Task:
        claimed = await self.start(task_id)
        done = claimed.complete(result, self.clock.now())
        await self.repository.transition(done, expected=claimed)
        return done

    async def in_status(self, status: TaskStatus, task_type: str = "email") -> Task:
        """A new task brought to ``status`` the way the engine would bring it there."""
        task = await self.submit(task_type, "users" if task_type == "data-export" else "a@b.co")
        if status is TaskStatus.PROCESSING:
            return await self.start(task.id)
        if status is TaskStatus.COMPLETED:
            return await self.complete(task.id)
        if status is TaskStatus.FAILED:
            return await self.fail(task.id)
        if status is TaskStatus.CANCELLED:
            return await self.service.cancel(task.id)
        return task

    async def beat(
        self, worker_id: str, *, concurrency: int, seen_ago: float = 0, started_ago: float = 7200
    ) -> WorkerInfo:
        """Record a heartbeat of a worker that started ``started_ago`` and was last seen
        ``seen_ago`` seconds ago."""
        now = self.clock.now()
        info = WorkerInfo(
            worker_id=worker_id,
            host="host",
            pid=1,
            concurrency=concurrency,
            in_flight=0,
            started_at=now - timedelta(seconds=started_ago),
            last_seen=now - timedelta(seconds=seen_ago),
        )
        await self.workers.beat(info, ttl_seconds=LEASE_SECONDS)
        return info

    # -- looking at what is left -------------------------------------------------------

    async def stored(self) -> int:
        return sum((await self.repository.count_by_status()).values())

    async def count(self, status: TaskStatus) -> int:
        return (await self.repository.count_by_status())[status]

    async def visible(self) -> list[str]:
        """The task ids of the messages visible now (received, so leased afterwards)."""
        ids: list[str] = []
        while batch := await self.queue.receive(
            max_messages=10, visibility_timeout=3600, wait_seconds=0
        ):
            ids += [d.task_id for d in batch if d.task_id is not None]
        return ids

    async def messages(self) -> tuple[list[str], list[str]]:
        """The task ids of the visible messages (received, so leased afterwards), split
        into those of stored tasks and the spares that name no stored task (sent for a
        write that failed or for a repeat: the worker drops them after its grace)."""
        owned: list[str] = []
        spares: list[str] = []
        for task_id in await self.visible():
            try:
                await self.repository.get(task_id)
            except TaskNotFound:
                spares.append(task_id)
                continue
            owned.append(task_id)
        return owned, spares
