"""Use cases the entrypoints call: submit (one, idempotent, a batch), cancel, retry,
queries and metrics. What makes a submission valid is in domain/submission.py."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.errors import (
    BacklogFull,
    ConcurrencyConflict,
    InfrastructureError,
    InvalidInput,
    QueueSendFailed,
    TaskQueueError,
    TaskStateConflict,
)
from domain.events import NO_EVENTS, TaskEventKind, TaskEvents, new_event
from domain.limits import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_ATTEMPTS_LIMIT,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REDRIVE,
    DEFAULT_REDRIVE_PER_SECOND,
    MAX_BATCH_SIZE,
    MAX_DELAY_SECONDS,
    MAX_PAGE_SIZE,
    MAX_QUEUE_DELAY_SECONDS,
    MAX_TIMEOUT_SECONDS,
    STORED_IN_TASK,
    TaskDataLimit,
)
from domain.models import MetricsSnapshot, Page, Task, TaskStatus, WorkerInfo
from domain.ports import Clock, TaskQueue, TaskRepository, Tracer, WorkerRegistry
from domain.priorities import Priority, by_priority
from domain.submission import (  # the submission types stay importable from here
    BatchEntry as BatchEntry,
)
from domain.submission import SubmissionRules, ValidSubmission, fingerprint
from domain.submission import SubmitOutcome as SubmitOutcome
from domain.submission import SubmitRequest as SubmitRequest
from domain.task_types import HandlerRegistry
from domain.tracing import NoTracer

log = logging.getLogger("taskq.services")

CANCEL_RETRIES = 5
RETRY_SEND_DELAY_SECONDS = 1
"""An operator's retry sends its message this much ahead of the write that makes the
task PENDING again, so the message does not find it still FAILED."""


@dataclass(frozen=True)
class _Built:
    entry: BatchEntry
    valid: ValidSubmission


@dataclass(frozen=True)
class SubmissionLimits:
    """The bounds a submission (and an operator's retry) is held to, from settings.
    The fixed quotas they must stay within are in domain/limits.py."""

    default_max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_attempts_limit: int = DEFAULT_MAX_ATTEMPTS_LIMIT
    """At most max_receive_count - 1, so the worker fails an exhausted task before the
    queue's own redrive policy moves its message away."""
    idempotency_window_seconds: float = 24 * 3600
    """How long an Idempotency-Key keeps returning the task it created."""
    max_queue_delay_seconds: int = MAX_QUEUE_DELAY_SECONDS
    """Tasks due further off are held (stored without a message) and the reconciler
    sends them when they come this close; at most the queue's limit (900 s)."""
    max_backlog: int | None = None
    """PENDING tasks beyond which a submission is refused (``BacklogFull``, a 503 with
    Retry-After); None: unbounded. Local backends only (``TASKQ_MAX_BACKLOG``)."""
    orphan_grace_seconds: float = 60.0
    """How long a worker keeps a message whose task is not stored yet (the processor's
    setting of the same name). A write that lands later than half of it after its send
    began sends the message again: the first may have been dropped already."""
    priorities: bool = True
    """Whether the queue keeps priorities apart (``SubmissionRules.priorities``)."""
    task_data: TaskDataLimit = STORED_IN_TASK
    """How large a payload may be as JSON: larger with the claim check (bootstrap)."""

    def __post_init__(self) -> None:
        if not 0 <= self.max_queue_delay_seconds <= MAX_QUEUE_DELAY_SECONDS:
            raise ValueError(
                f"max_queue_delay_seconds must be between 0 and {MAX_QUEUE_DELAY_SECONDS}"
            )


@dataclass(eq=False)
class TaskService:
    repository: TaskRepository
    queue: TaskQueue
    clock: Clock
    task_types: HandlerRegistry
    """The task types a submission may name."""
    workers: WorkerRegistry
    """The live workers, for metrics and the workers listing."""
    limits: SubmissionLimits = field(default_factory=SubmissionLimits)
    tracer: Tracer = field(default_factory=NoTracer)
    """Where a submission's trace context comes from (stored with its task)."""
    events: TaskEvents = NO_EVENTS
    """Where what happens to tasks is recorded (metrics, logs)."""
    backlog_refusals: int = field(default=0, init=False)
    """Submissions refused since start because the backlog was full (``/metrics``)."""

    def _emit(self, kind: TaskEventKind, task: Task, at: datetime | None = None) -> None:
        self.events.record(new_event(kind, task, at or self.clock.now()))

    # -- submit ----------------------------------------------------------------------

    _rules: tuple[SubmissionLimits, HandlerRegistry, SubmissionRules] | None = field(
        default=None, init=False, repr=False
    )

    @property
    def submission_rules(self) -> SubmissionRules:
        """The submission rules with the limits in force now: made once, and again
        only when the limits or the task types are replaced."""
        made = self._rules
        if made is not None and made[0] is self.limits and made[1] is self.task_types:
            return made[2]
        rules = SubmissionRules(
            self.task_types,
            default_max_attempts=self.limits.default_max_attempts,
            max_attempts_limit=self.limits.max_attempts_limit,
            max_queue_delay_seconds=self.limits.max_queue_delay_seconds,
            max_timeout_seconds=MAX_TIMEOUT_SECONDS,
            max_delay_seconds=MAX_DELAY_SECONDS,
            priorities=self.limits.priorities,
            task_data=self.limits.task_data,
        )
        self._rules = (self.limits, self.task_types, rules)
        return rules

    def validate_and_build(self, request: SubmitRequest) -> ValidSubmission:
        """``request`` checked against the rules, and its task (not yet stored)."""
        return self.submission_rules.validate_and_build(
            request, self.clock.now(), current_trace=self.tracer.current_traceparent()
        )

    async def submit(self, request: SubmitRequest) -> Task:
        """Enqueue the task, then store it (PENDING); return it once stored.

        The send comes first, so a stored task always has its message (or is held,
        and the reconciler sends it when due): nothing needs re-sending later. If the
        send fails nothing is stored and ``QueueSendFailed`` is raised. If the store
        fails after the send, its error is raised and the message points at no task:
        the worker waits a bounded time for the row, then drops the message
        (``ProcessorSettings.orphan_grace_seconds``); a write that lands late in that
        time sends the message again (``_resend_if_late``).
        """
        valid = self.validate_and_build(request)
        await self._admit(1)
        started = self.clock.monotonic()
        await self._enqueue(valid)
        await self.repository.add(valid.task)
        await self._resend_if_late([valid], started)
        self._emit(TaskEventKind.SUBMITTED, valid.task, valid.task.created_at)
        return valid.task

    async def submit_idempotent(self, request: SubmitRequest, key: str) -> tuple[Task, bool]:
        """Submit once per ``key``: a repeat of the same request within the window
        returns the original task and False; a different request under the same key
        raises ``IdempotencyKeyReused``. Sends first, like ``submit``: the message
        sent for a repeat finds no task and is dropped by the worker after its grace.

        ``key`` is the key as stored, already checked by the caller, which sees what its
        client sent: non-empty and at most ``MAX_IDEMPOTENCY_KEY_LENGTH`` characters, so
        that it fits every store's key. The HTTP layer checks the client's header and
        stores a digest of it scoped to the caller (``entrypoints/http/parsing.py``).
        """
        valid = self.validate_and_build(request)
        await self._admit(1)
        task = valid.task
        started = self.clock.monotonic()
        await self._enqueue(valid)
        existing = await self.repository.add_idempotent(
            task,
            key=key,
            fingerprint=fingerprint(request),
            expires_at=task.created_at + timedelta(seconds=self.limits.idempotency_window_seconds),
            now=task.created_at,
        )
        if existing is not None:
            return await self.repository.get(existing), False
        await self._resend_if_late([valid], started)
        self._emit(TaskEventKind.SUBMITTED, task)
        return task, True

    async def _admit(self, adding: int) -> None:
        """Raise ``BacklogFull`` if ``adding`` more tasks would take the backlog (PENDING
        tasks) past ``limits.max_backlog``. One O(1) count; nothing when unbounded."""
        limit = self.limits.max_backlog
        if limit is None:
            return
        pending = (await self.repository.count_by_status()).get(TaskStatus.PENDING, 0)
        if pending + adding > limit:
            self.backlog_refusals += 1
            raise BacklogFull(pending, limit, adding)

    async def _enqueue(self, valid: ValidSubmission) -> None:
        if valid.queue_delay is not None:  # None: held until due; see Reconciler
            await self._send(valid.task.id, valid.queue_delay, valid.task.priority)

    async def _resend_if_late(self, stored: Sequence[ValidSubmission], started: float) -> None:
        """A worker drops a message whose task is not stored once it has kept it for
        ``orphan_grace_seconds`` (counted from its first receive, which comes after the
        send began). A write that landed later than half of that after ``started`` may
        have come too late for its message: send another (a spare is skipped). Costs
        nothing when writes are quick; a failed re-send is left to the first message."""
        if self.clock.monotonic() - started < self.limits.orphan_grace_seconds / 2:
            return
        due = _due(stored)
        unsent = await self._send_due(due)
        log.warning(
            "%d tasks stored late after their messages were sent: sent again (%d failed)",
            len(due),
            len(unsent),
        )

    async def submit_batch(self, items: Sequence[BatchEntry | InvalidInput]) -> list[SubmitOutcome]:
        """Submit 1 to ``MAX_BATCH_SIZE`` tasks, one outcome per item, in order.

        Every item is validated before anything is stored, and each on its own: valid
        items are created even when others are not. An item the caller could not read is
        given as its ``InvalidInput`` and answered in its place. Due tasks are sent in
        batch calls; tasks due past the queue's horizon are only stored (held); an item
        with an idempotency key goes through ``submit_idempotent``.
        """
        if not 1 <= len(items) <= MAX_BATCH_SIZE:
            raise InvalidInput("tasks", f"must hold 1 to {MAX_BATCH_SIZE} tasks, not {len(items)}")
        outcomes: list[SubmitOutcome] = []
        valid: list[tuple[int, _Built]] = []
        for index, item in enumerate(items):
            try:
                if isinstance(item, InvalidInput):
                    raise item
                built = _Built(item, self.validate_and_build(item.request))
            except InvalidInput as exc:
                outcomes.append(SubmitOutcome(error=exc))
                continue
            outcomes.append(SubmitOutcome(built.valid.task))
            valid.append((index, built))
        await self._admit(len(valid))  # the whole batch, or none of it
        stored = await self._store_batch([built for _, built in valid])
        for (index, _), outcome in zip(valid, stored, strict=True):
            outcomes[index] = outcome
        return outcomes

    async def _store_batch(self, batch: Sequence[_Built]) -> list[SubmitOutcome]:
        """The batch's sends and writes, one outcome per built task. As in ``submit``,
        the due tasks are sent first (in batch calls) and only the sent ones (and the
        held ones) are stored, each on its own: a failed send or write fails only its
        item. An item with an idempotency key goes through ``submit_idempotent``."""
        plain = [built.valid for built in batch if built.entry.idempotency_key is None]
        due = _due(plain)
        started = self.clock.monotonic()
        unsent = await self._send_due(due)
        stored: list[ValidSubmission] = []
        outcomes: list[SubmitOutcome] = []
        for built in batch:
            key = built.entry.idempotency_key
            try:
                if key is not None:
                    task, new = await self.submit_idempotent(built.entry.request, key)
                    outcomes.append(SubmitOutcome(task, new))
                    continue
                task = built.valid.task
                if task.id in unsent:
                    raise QueueSendFailed(task.id, unsent[task.id])
                await self.repository.add(task)
                stored.append(built.valid)
            except TaskQueueError as exc:
                outcomes.append(SubmitOutcome(error=exc))
                continue
            self._emit(TaskEventKind.SUBMITTED, task)
            outcomes.append(SubmitOutcome(task))
        await self._resend_if_late(stored, started)
        return outcomes

    async def _send_due(self, due: Sequence[tuple[Priority, str, int]]) -> dict[str, str]:
        """Send ``due`` ``(priority, task_id, delay)`` in batch calls, one priority at a
        time; the ids that were not sent, with why."""
        unsent: dict[str, str] = {}
        for priority, items in by_priority(due).items():
            try:
                await self.queue.send_batch(items, priority=priority)
            except QueueSendFailed as exc:  # these were not sent; the others were
                unsent.update(dict.fromkeys(exc.task_ids, exc.reason))
            except InfrastructureError as exc:
                unsent.update({task_id: exc.detail for task_id, _ in items})
        return unsent

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
            if new.status is TaskStatus.CANCELLED:
                self._emit(TaskEventKind.CANCELLED, new)
            return new
        raise ConcurrencyConflict(task_id, "it kept changing while being cancelled")

    async def retry(self, task_id: str, *, extra_attempts: int | None = None) -> Task:
        """A FAILED task gets a new attempt budget and is enqueued again; its attempts
        and last error are kept."""
        budget = self.submission_rules.check_max_attempts(extra_attempts)
        task = await self.repository.get(task_id)
        if task.status is not TaskStatus.FAILED:
            raise TaskStateConflict(task_id, task.status.value, "retry (only FAILED tasks)")
        retried = task.retry_failed(self.clock.now(), budget)
        # Send first (a failed send leaves the task FAILED), with a delay so the message
        # finds the task PENDING: a delivery of a FAILED task is acked and skipped. If
        # send + write took that long (the delay runs from when the queue took it), it
        # may have come too early: send another (a spare message is skipped harmlessly).
        started = self.clock.monotonic()
        await self._send(task.id, RETRY_SEND_DELAY_SECONDS, task.priority)
        await self.repository.transition(retried, expected=task)
        if self.clock.monotonic() - started >= RETRY_SEND_DELAY_SECONDS:
            await self._send(task.id, 0, task.priority)
        return retried

    async def _send(self, task_id: str, delay: int, priority: Priority) -> None:
        try:
            await self.queue.send(task_id, delay_seconds=delay, priority=priority)
        except InfrastructureError as exc:
            reason = exc.reason if isinstance(exc, QueueSendFailed) else exc.detail
            raise QueueSendFailed(task_id, reason) from exc

    async def retry_failed(
        self,
        *,
        task_type: str | None = None,
        limit: int = DEFAULT_REDRIVE,
        per_second: float = DEFAULT_REDRIVE_PER_SECOND,
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
            raise InvalidInput("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
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
        now = self.clock.now()
        live = await self.workers.live(now)
        due = await self.repository.oldest_due_pending(now)
        return MetricsSnapshot(
            counts=counts,
            depth=depth,
            dead_letter_queue_depth=dead,
            active_workers=sum(w.concurrency for w in live),
            live_workers=len(live),
            busy_slots=sum(w.in_flight for w in live),
            oldest_due_age_seconds=0.0 if due is None else max(0.0, (now - due).total_seconds()),
            max_backlog=self.limits.max_backlog,
            backlog_refusals=self.backlog_refusals,
        )


def _due(valid: Sequence[ValidSubmission]) -> list[tuple[Priority, str, int]]:
    """The messages to send for ``valid`` submissions (held ones have none yet)."""
    return [(v.task.priority, v.task.id, v.queue_delay) for v in valid if v.queue_delay is not None]
