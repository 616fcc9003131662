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
    TaskQueueError,
    TaskStateConflict,
    ValidationError,
)
from domain.json_values import check_storable, check_text
from domain.limits import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_ATTEMPTS_LIMIT,
    DEFAULT_PAGE_SIZE,
    MAX_BATCH_SIZE,
    MAX_DELAY_SECONDS,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_PAGE_SIZE,
    MAX_QUEUE_DELAY_SECONDS,
    MAX_TIMEOUT_SECONDS,
    check_payload,
)
from domain.models import JSON, MetricsSnapshot, Page, Task, TaskStatus, WorkerInfo
from domain.ports import Clock, TaskQueue, TaskRepository, WorkerRegistry
from domain.registry import HandlerRegistry

CANCEL_RETRIES = 5
RETRY_SEND_DELAY_SECONDS = 1
"""An operator's retry sends its message this much ahead of the write that makes the
task PENDING again, so the message does not find it still FAILED."""


def fingerprint(request: SubmitRequest) -> str:
    """A digest of what a submission asks for, to tell a retry from a new request."""
    canonical = json.dumps(
        {
            "type": request.type,
            "payload": request.payload,
            "max_attempts": request.max_attempts,
            "timeout_seconds": _number(request.timeout_seconds),
            "delay_seconds": _number(request.delay_seconds),
            "run_at": _instant(request.run_at),
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _number(value: float | None) -> float | None:
    """Equal numbers written two ways (30 and 30.0) are one request."""
    return None if value is None else float(value)


def _instant(value: datetime | None) -> str | None:
    """One instant in any timezone is one request (a naive time is left as written)."""
    if value is None or value.tzinfo is None:
        return value.isoformat() if value else None
    return value.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class SubmitRequest:
    type: str
    payload: JSON = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    delay_seconds: float = 0
    run_at: datetime | None = None


@dataclass(frozen=True)
class BatchEntry:
    """One task of a batch submission, with its (already scoped) idempotency key."""

    request: SubmitRequest
    idempotency_key: str | None = None


@dataclass(frozen=True)
class SubmitOutcome:
    """What became of one submission: its task (``new`` False when an idempotency key
    found the task it had created), or the domain error that stopped it."""

    task: Task | None = None
    new: bool = True
    error: TaskQueueError | None = None


@dataclass(frozen=True)
class _Built:
    entry: BatchEntry
    task: Task
    delay: int | None


@dataclass(frozen=True)
class Limits:
    default_max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_attempts_limit: int = DEFAULT_MAX_ATTEMPTS_LIMIT
    """At most max_receive_count - 1, so the worker fails an exhausted task before the
    queue's own redrive policy moves its message away."""
    idempotency_window_seconds: float = 24 * 3600
    """How long an Idempotency-Key keeps returning the task it created."""
    max_queue_delay_seconds: int = MAX_QUEUE_DELAY_SECONDS
    """Tasks due further off are held (stored without a message) and the reconciler
    sends them when they come this close; at most the queue's limit (900 s)."""

    def __post_init__(self) -> None:
        if not 0 <= self.max_queue_delay_seconds <= MAX_QUEUE_DELAY_SECONDS:
            raise ValueError(
                f"max_queue_delay_seconds must be between 0 and {MAX_QUEUE_DELAY_SECONDS}"
            )


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
        check_text("type", request.type)
        check_storable("payload", request.payload)
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
        delay = self._queue_delay(run_at, now)
        task = Task.create(
            request.type,
            request.payload,
            now,
            max_attempts=max_attempts,
            timeout_seconds=timeout,
            run_at=run_at,
            held=delay is None,
        )
        return task, delay

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

    def _queue_delay(self, run_at: datetime | None, now: datetime) -> int | None:
        """The message delay for a task due at ``run_at``; None when it is too far off
        for the queue, and the scheduler will enqueue it later."""
        if run_at is None:
            return 0
        seconds = math.ceil((run_at - now).total_seconds())
        return max(0, seconds) if seconds <= self.limits.max_queue_delay_seconds else None

    async def submit(self, request: SubmitRequest) -> Task:
        """Enqueue the task, then store it (PENDING); return it once stored.

        The send comes first, so a stored task always has its message (or is held,
        and the reconciler sends it when due): nothing needs re-sending later. If the
        send fails nothing is stored and ``QueueSendFailed`` is raised. If the store
        fails after the send, its error is raised and the message points at no task:
        the worker waits a bounded time for the row, then drops the message
        (``ProcessorSettings.orphan_grace_seconds``).
        """
        task, delay = self.build(request)
        await self._enqueue(task, delay)
        await self.repository.add(task)
        return task

    async def submit_idempotent(self, request: SubmitRequest, key: str) -> tuple[Task, bool]:
        """Submit once per ``key``: a repeat of the same request within the window
        returns the original task and False; a different request under the same key
        raises ``IdempotencyKeyReused``. Sends first, like ``submit``: the message
        sent for a repeat finds no task and is dropped by the worker after its grace."""
        if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            raise ValidationError(
                "Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
            )
        task, delay = self.build(request)
        await self._enqueue(task, delay)
        existing = await self.repository.add_idempotent(
            task,
            key=key,
            fingerprint=fingerprint(request),
            expires_at=task.created_at + timedelta(seconds=self.limits.idempotency_window_seconds),
            now=task.created_at,
        )
        if existing is not None:
            return await self.repository.get(existing), False
        return task, True

    async def _enqueue(self, task: Task, delay: int | None) -> None:
        if delay is not None:  # None: held by the engine until due; see Reconciler
            await self._send(task.id, delay)

    async def submit_batch(
        self, items: Sequence[BatchEntry | ValidationError]
    ) -> list[SubmitOutcome]:
        """Submit 1 to ``MAX_BATCH_SIZE`` tasks, one outcome per item, in order.

        Every item is validated before anything is stored, and each on its own: valid
        items are created even when others are not. An item the caller could not read is
        given as its ``ValidationError`` and answered in its place. Due tasks are sent in
        batch calls; tasks due past the queue's horizon are only stored (held); an item
        with an idempotency key goes through ``submit_idempotent``.
        """
        if not 1 <= len(items) <= MAX_BATCH_SIZE:
            raise ValidationError(
                "tasks", f"must hold 1 to {MAX_BATCH_SIZE} tasks, not {len(items)}"
            )
        outcomes: list[SubmitOutcome] = []
        valid: list[tuple[int, _Built]] = []
        for index, item in enumerate(items):
            try:
                if isinstance(item, ValidationError):
                    raise item
                task, delay = self.build(item.request)
            except ValidationError as exc:
                outcomes.append(SubmitOutcome(error=exc))
                continue
            outcomes.append(SubmitOutcome(task))
            valid.append((index, _Built(item, task, delay)))
        stored = await self._store_batch([built for _, built in valid])
        for (index, _), outcome in zip(valid, stored, strict=True):
            outcomes[index] = outcome
        return outcomes

    async def _store_batch(self, batch: Sequence[_Built]) -> list[SubmitOutcome]:
        """The batch's sends and writes, one outcome per built task. As in ``submit``,
        the due tasks are sent first (in batch calls) and only the sent ones (and the
        held ones) are stored, each on its own: a failed send or write fails only its
        item. An item with an idempotency key goes through ``submit_idempotent``."""
        plain = [built for built in batch if built.entry.idempotency_key is None]
        unsent = await self._send_due([(b.task.id, b.delay) for b in plain if b.delay is not None])
        outcomes: list[SubmitOutcome] = []
        for built in batch:
            key = built.entry.idempotency_key
            try:
                if key is not None:
                    task, new = await self.submit_idempotent(built.entry.request, key)
                    outcomes.append(SubmitOutcome(task, new))
                    continue
                if built.task.id in unsent:
                    raise QueueSendFailed(built.task.id, unsent[built.task.id])
                await self.repository.add(built.task)
            except TaskQueueError as exc:
                outcomes.append(SubmitOutcome(error=exc))
                continue
            outcomes.append(SubmitOutcome(built.task))
        return outcomes

    async def _send_due(self, due: Sequence[tuple[str, int]]) -> dict[str, str]:
        """Send ``due`` in batch calls; the ids that were not sent, with why."""
        if not due:
            return {}
        try:
            await self.queue.send_batch(due)
        except QueueSendFailed as exc:  # these were not sent; the others were
            return dict.fromkeys(exc.task_ids, exc.reason)
        except InfrastructureError as exc:
            return {task_id: exc.detail for task_id, _ in due}
        return {}

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
        # Send first (a failed send leaves the task FAILED), with a delay so the message
        # finds the task PENDING: a delivery of a FAILED task is acked and skipped. If
        # send + write took that long (the delay runs from when the queue took it), it
        # may have come too early: send another (a spare message is skipped harmlessly).
        started = self.clock.monotonic()
        await self._send(task.id, RETRY_SEND_DELAY_SECONDS)
        await self.repository.transition(retried, expected=task)
        if self.clock.monotonic() - started >= RETRY_SEND_DELAY_SECONDS:
            await self._send(task.id, 0)
        return retried

    async def _send(self, task_id: str, delay: int) -> None:
        try:
            await self.queue.send(task_id, delay_seconds=delay)
        except InfrastructureError as exc:
            reason = exc.reason if isinstance(exc, QueueSendFailed) else exc.detail
            raise QueueSendFailed(task_id, reason) from exc

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
