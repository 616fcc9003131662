"""Use cases the entrypoints call: submit, get, list, metrics."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.errors import (
    ConcurrencyConflict,
    InfrastructureError,
    QueueSendFailed,
    TaskStateConflict,
    ValidationError,
)
from domain.limits import check_payload
from domain.models import JSON, MetricsSnapshot, Page, Task, TaskStatus, WorkerInfo
from domain.ports import Clock, TaskQueue, TaskRepository, WorkerRegistry
from domain.registry import HandlerRegistry

MAX_QUEUE_DELAY_SECONDS = 900
"""SQS DelaySeconds is at most 900 (15 minutes). Longer delays are held by the engine:
the task is stored with its ``run_at`` and the scheduler enqueues it when it is due
within this horizon."""
MAX_DELAY_SECONDS = 366 * 24 * 3600
"""A task may be delayed up to a year (a leap year's worth)."""
CANCEL_RETRIES = 5
MAX_IDEMPOTENCY_KEY_LENGTH = 255


def fingerprint(request: SubmitRequest) -> str:
    """A digest of what a submission asks for, to tell a retry from a new request."""
    canonical = json.dumps(
        {
            "type": request.type,
            "payload": request.payload,
            "max_attempts": request.max_attempts,
            "timeout_seconds": request.timeout_seconds,
            "delay_seconds": request.delay_seconds,
            "run_at": request.run_at.isoformat() if request.run_at else None,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    run_at: datetime | None = None


@dataclass(frozen=True)
class BatchOutcome:
    tasks: list[Task]
    """Every task of the batch, stored, in request order."""
    unsent: frozenset[str]
    """Ids of stored tasks whose message could not be sent (the reconciler re-sends)."""
    detail: str | None = None


@dataclass(frozen=True)
class Limits:
    default_max_attempts: int = 3
    max_attempts_limit: int = 19
    """At most max_receive_count - 1, so the worker fails an exhausted task before the
    queue's own redrive policy moves its message away."""
    idempotency_window_seconds: float = 24 * 3600
    """How long an Idempotency-Key keeps returning the task it created."""


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

    def build(self, request: SubmitRequest) -> tuple[Task, int | None]:
        """Validate ``request`` and make the task (not yet stored) and its queue delay."""
        if not isinstance(request.type, str) or not request.type.strip():
            raise ValidationError("type", "must be a non-empty string")
        task_type = self.registry.get(request.type)
        task_type.validate(request.payload)
        check_payload(request.payload)

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

        now = self.clock.now()
        run_at = self._run_at(request, now)
        task = Task.create(
            request.type,
            request.payload,
            now,
            max_attempts=max_attempts,
            timeout_seconds=timeout,
            run_at=run_at,
        )
        return task, self._queue_delay(run_at, now)

    @staticmethod
    def _run_at(request: SubmitRequest, now: datetime) -> datetime | None:
        delay = request.delay_seconds
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or not 0 <= delay <= MAX_DELAY_SECONDS
        ):
            raise ValidationError(
                "delay_seconds", f"must be a number of seconds between 0 and {MAX_DELAY_SECONDS}"
            )
        if request.run_at is not None:
            if delay:
                raise ValidationError("run_at", "give either run_at or delay_seconds, not both")
            if request.run_at.tzinfo is None:
                raise ValidationError("run_at", "must include a timezone (e.g. Z)")
            run_at = request.run_at.astimezone(UTC)
            if (run_at - now).total_seconds() > MAX_DELAY_SECONDS:
                raise ValidationError("run_at", "must be at most a year from now")
            return run_at if run_at > now else None
        if not delay:
            return None
        return now + timedelta(seconds=math.ceil(delay))

    @staticmethod
    def _queue_delay(run_at: datetime | None, now: datetime) -> int | None:
        """The message delay for a task due at ``run_at``; None when it is too far off
        for the queue, and the scheduler will enqueue it later."""
        if run_at is None:
            return 0
        seconds = math.ceil((run_at - now).total_seconds())
        return max(0, seconds) if seconds <= MAX_QUEUE_DELAY_SECONDS else None

    async def submit(self, request: SubmitRequest) -> Task:
        """Store the task (PENDING), then enqueue it.

        The write comes first so the task is readable at once; if the send fails the
        task stays PENDING, ``QueueSendFailed`` is raised and the reconciler re-sends it.
        """
        task, delay = self.build(request)
        await self.repository.add(task)
        await self._enqueue(task, delay)
        return task

    async def submit_idempotent(self, request: SubmitRequest, key: str) -> tuple[Task, bool]:
        """Submit once per ``key``: a repeat of the same request within the window
        returns the original task and False; a different request under the same key
        raises ``IdempotencyKeyReused``."""
        if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise ValidationError(
                "Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
            )
        task, delay = self.build(request)
        existing = await self.repository.add_idempotent(
            task,
            key=key,
            fingerprint=fingerprint(request),
            expires_at=task.created_at + timedelta(seconds=self.limits.idempotency_window_seconds),
            now=task.created_at,
        )
        if existing is not None:
            return await self.repository.get(existing), False
        await self._enqueue(task, delay)
        return task, True

    async def _enqueue(self, task: Task, delay: int | None) -> None:
        if delay is None:
            return  # held by the engine until due; see Reconciler
        try:
            await self.queue.send(task.id, delay_seconds=delay)
        except InfrastructureError as exc:
            raise QueueSendFailed(task.id, exc.detail) from exc

    async def submit_many(self, requests: Sequence[SubmitRequest]) -> list[Task]:
        """Store every task, then enqueue the due ones in batch calls. Raises
        ``QueueSendFailed`` naming just the stored tasks that were not sent (the
        reconciler re-sends them); see ``submit_many_outcome`` to keep the rest."""
        outcome = await self.submit_many_outcome(requests)
        if outcome.unsent:
            raise QueueSendFailed(sorted(outcome.unsent), outcome.detail or "send failed")
        return outcome.tasks

    async def submit_many_outcome(self, requests: Sequence[SubmitRequest]) -> BatchOutcome:
        built = [self.build(r) for r in requests]
        for task, _ in built:
            await self.repository.add(task)
        due = [(task.id, delay) for task, delay in built if delay is not None]
        tasks = [task for task, _ in built]
        try:
            await self.queue.send_batch(due)
        except QueueSendFailed as exc:  # these were not sent; the others were
            return BatchOutcome(tasks, frozenset(exc.task_ids), exc.detail)
        except InfrastructureError as exc:
            return BatchOutcome(tasks, frozenset(task_id for task_id, _ in due), exc.detail)
        return BatchOutcome(tasks, frozenset(), None)

    # -- operator actions ------------------------------------------------------------

    async def cancel(self, task_id: str) -> Task:
        """PENDING (or delayed) -> CANCELLED at once; PROCESSING is flagged and its
        worker cancels the handler cooperatively. A finished task is a conflict."""
        for _ in range(CANCEL_RETRIES):
            task = await self.repository.get(task_id)
            now = self.clock.now()
            if task.status is TaskStatus.PENDING:
                new = task.cancel(now)
            elif task.status is TaskStatus.PROCESSING:
                if task.cancel_requested:
                    return task
                new = task.request_cancel(now)
            else:
                raise TaskStateConflict(task_id, task.status.value, "cancel")
            try:
                await self.repository.transition(new, expected=task)
            except ConcurrencyConflict:
                continue  # it moved on under us: look again
            return new
        raise ConcurrencyConflict(task_id, "it kept changing while being cancelled")

    async def retry(self, task_id: str, *, extra_attempts: int | None = None) -> Task:
        """A FAILED task gets a new attempt budget and is enqueued again; its attempts
        and last error are kept."""
        budget = self.limits.default_max_attempts if extra_attempts is None else extra_attempts
        if not 1 <= budget <= self.limits.max_attempts_limit:
            raise ValidationError(
                "max_attempts", f"must be between 1 and {self.limits.max_attempts_limit}"
            )
        task = await self.repository.get(task_id)
        if task.status is not TaskStatus.FAILED:
            raise TaskStateConflict(task_id, task.status.value, "retry (only FAILED tasks)")
        retried = task.retry_failed(self.clock.now(), budget)
        await self.repository.transition(retried, expected=task)
        try:
            await self.queue.send(task.id)
        except InfrastructureError as exc:
            raise QueueSendFailed(task.id, exc.detail) from exc
        return retried

    async def retry_failed(
        self, *, task_type: str | None = None, limit: int = 1000, per_second: float = 50.0
    ) -> list[str]:
        """Retry up to ``limit`` FAILED tasks (of ``task_type`` if given), at most
        ``per_second`` a second so a redrive does not flood the workers."""
        retried: list[str] = []
        cursor: str | None = None
        interval = 1.0 / per_second if per_second > 0 else 0.0
        while len(retried) < limit:
            page = await self.repository.list_by_status(
                TaskStatus.FAILED, limit=min(100, MAX_PAGE_SIZE), cursor=cursor
            )
            for task in page.items:
                if len(retried) >= limit:
                    break
                if task_type is not None and task.type != task_type:
                    continue
                try:
                    await self.retry(task.id)
                except (ConcurrencyConflict, TaskStateConflict):
                    continue
                retried.append(task.id)
                if interval:
                    await self.clock.sleep(interval)
            cursor = page.next_cursor
            if cursor is None:
                break
        return retried

    # -- queries ---------------------------------------------------------------------

    async def get(self, task_id: str) -> Task:
        return await self.repository.get(task_id)

    async def list(
        self, status: TaskStatus, *, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> Page:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValidationError("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        return await self.repository.list_by_status(status, limit=limit, cursor=cursor)

    async def dead_letter_count(self) -> int:
        """Messages in the queue's dead-letter queue, poison messages included."""
        return await self.queue.dead_letter_count()

    async def live_workers(self) -> Sequence[WorkerInfo]:
        """Workers that beat within their TTL, oldest first."""
        live = await self.workers.live(self.clock.now())
        return sorted(live, key=lambda w: (w.started_at, w.worker_id))

    async def metrics(self) -> MetricsSnapshot:
        counts = await self.repository.count_by_status()
        depth = await self.queue.depth()
        dead = await self.queue.dead_letter_count()
        live = await self.workers.live(self.clock.now())
        return MetricsSnapshot(
            counts=counts,
            depth=depth,
            dead_letter_queue_depth=dead,
            active_workers=sum(w.concurrency for w in live),
        )
