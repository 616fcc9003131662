"""In-memory adapters: complete implementations with per-instance state.

Not mocks: the queue has visibility timeouts on the Clock, receive counts, redrive to a
dead-letter queue after ``max_receive_count``, delays, batch limits and long polling
that wakes as soon as something is sent. The contract suite holds them to the same
behaviour as the SQLite and AWS adapters.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters import envelope
from adapters.cursor import decode_cursor, encode_cursor
from adapters.memory_index import SortedKeys
from domain import models
from domain.errors import (
    ConcurrencyConflict,
    DeadLetterNotFound,
    IdempotencyKeyReused,
    InvalidCursor,
    TaskAlreadyExists,
    TaskNotFound,
)
from domain.limits import DEFAULT_MAX_RECEIVE_COUNT, MAX_QUEUE_BATCH, MAX_QUEUE_DELAY_SECONDS
from domain.models import DeadLetter, Delivery, Page, QueueDepth, Task, TaskStatus, WorkerInfo
from domain.ports import Clock
from domain.priorities import Priority, PriorityOrder, PriorityWeights


def _sort_key(task: Task) -> tuple[datetime, str]:
    return (task.created_at, task.id)  # a datetime compares as its isoformat would


def _cursor_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidCursor("not a cursor of this listing") from None


def _due_key(task: Task) -> tuple[datetime, str] | None:
    """The task's place in the index of held tasks by due time; None if not held."""
    if not task.held or task.run_at is None or task.status is not TaskStatus.PENDING:
        return None
    return (task.run_at, task.id)


def _pending_key(task: Task) -> tuple[datetime, str] | None:
    """The task's place in the index of PENDING tasks by due time; None if not PENDING."""
    if task.status is not TaskStatus.PENDING:
        return None
    return (task.due_at, task.id)


class InMemoryTaskRepository:
    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._sort_keys: dict[str, tuple[datetime, str]] = {}  # _sort_key, once a task
        self._by_status = {status: SortedKeys[tuple[datetime, str]]() for status in TaskStatus}
        self._counts: dict[TaskStatus, int] = dict.fromkeys(TaskStatus, 0)
        self._keys: dict[str, tuple[str, str, datetime]] = {}  # key -> id, print, expiry
        self._held = SortedKeys[tuple[datetime, str]]()  # by due time: _due_key
        self._pending = SortedKeys[tuple[datetime, str]]()  # by due time: _pending_key

    async def add_idempotent(
        self, task: Task, *, key: str, fingerprint: str, expires_at: datetime, now: datetime
    ) -> str | None:
        claim = self._keys.get(key)
        if claim is not None and claim[2] > now:
            if claim[1] != fingerprint:
                raise IdempotencyKeyReused(key)
            return claim[0]
        await self.add(task)
        self._keys[key] = (task.id, fingerprint, expires_at)
        return None

    async def add(self, task: Task) -> None:
        if task.id in self._tasks:
            raise TaskAlreadyExists(task.id)
        self._tasks[task.id] = task
        key = self._sort_keys[task.id] = _sort_key(task)
        self._by_status[task.status].add(key)
        self._counts[task.status] += 1
        self._index_due(None, task)

    def _index_due(self, old: Task | None, new: Task) -> None:
        self._held.move(None if old is None else _due_key(old), _due_key(new))
        self._pending.move(None if old is None else _pending_key(old), _pending_key(new))

    async def get(self, task_id: str) -> Task:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise TaskNotFound(task_id) from None

    async def transition(self, new: Task, *, expected: Task) -> None:
        current = self._tasks.get(expected.id)
        if current is None:
            raise TaskNotFound(expected.id)
        if current.status is not expected.status or current.version != expected.version:
            raise ConcurrencyConflict(
                expected.id,
                f"expected {expected.status.value} v{expected.version}, "
                f"found {current.status.value} v{current.version}",
            )
        if new.version <= current.version:
            raise ValueError("a transition must increase the version")
        self._store(current, new)

    async def claim_pending(
        self, task_id: str, *, lease_token: str, now: datetime, lease_seconds: float
    ) -> Task | None:
        """The one-write claim (``ClaimsInOneWrite``): no read, decide and write apart."""
        current = self._tasks.get(task_id)
        if (
            current is None
            or current.status is not TaskStatus.PENDING
            or current.run_at is not None
        ):
            return None
        claimed = current.claim(lease_token, now, lease_seconds)
        self._store(current, claimed)
        return claimed

    def _store(self, current: Task, new: Task) -> None:
        """Put ``new`` in place of ``current`` (checked), and the indexes in step."""
        self._tasks[new.id] = new
        if current.status is TaskStatus.PENDING or new.status is TaskStatus.PENDING:
            self._index_due(current, new)  # both indexes hold PENDING tasks only
        if new.status is not current.status:
            key = self._sort_keys[current.id]
            self._by_status[current.status].remove(key)
            self._by_status[new.status].add(key)
            self._counts[current.status] -= 1
            self._counts[new.status] += 1

    async def list_by_status(
        self, status: TaskStatus, *, limit: int, cursor: str | None = None
    ) -> Page:
        bound = None
        if cursor is not None:
            after = decode_cursor(cursor, "c", "i")
            bound = (_cursor_time(after["c"]), after["i"])
        try:
            keys, more = self._by_status[status].page_before(bound, limit)
        except TypeError:  # a time without a zone among times with one, or the reverse
            raise InvalidCursor("not a cursor of this listing") from None
        items = [self._tasks[task_id] for _, task_id in keys]
        next_cursor = None
        if more and keys:
            next_cursor = encode_cursor({"c": keys[-1][0].isoformat(), "i": keys[-1][1]})
        return Page(items=items, next_cursor=next_cursor)

    async def list_due_held(self, before: datetime, *, limit: int) -> list[Task]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        due = itertools.takewhile(lambda key: key[0] <= before, self._held.ascending())
        return [self._tasks[task_id] for _, task_id in itertools.islice(due, limit)]

    async def oldest_due_pending(self, now: datetime) -> datetime | None:
        oldest = self._pending.first()
        return oldest[0] if oldest is not None and oldest[0] <= now else None

    async def count_by_status(self) -> dict[TaskStatus, int]:
        return dict(self._counts)

    async def ping(self) -> None:
        return None


@dataclass
class _Message:
    message_id: str
    body: str
    visible_at: float
    receive_count: int = 0
    receipt: str | None = None
    generation: int = 0
    reason: str | None = None
    priority: Priority = Priority.DEFAULT


class InMemoryTaskQueue:
    max_batch = MAX_QUEUE_BATCH
    """The SQS batch limit, so the memory queue fails where SQS would."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        priority_weights: PriorityWeights | None = None,
    ) -> None:
        self._clock = clock
        self.max_receive_count = max_receive_count
        self._messages: dict[str, _Message] = {}
        # One heap per priority of (visible_at, seq, id, gen): due order within each.
        self._ready: dict[Priority, list[tuple[float, int, str, int]]] = {p: [] for p in Priority}
        self._order = PriorityOrder(priority_weights or PriorityWeights())
        self._dead: dict[str, _Message] = {}
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()

    # -- sending ---------------------------------------------------------------------

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        self._put(envelope.encode(task_id, priority), delay_seconds, priority)

    async def send_raw(self, body: str, *, delay_seconds: int = 0) -> None:
        """Put any body on the queue (tests use it to inject poison messages)."""
        self._put(body, delay_seconds)

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        for _, delay in items:
            _check_delay(delay)
        for task_id, delay in items:
            self._put(envelope.encode(task_id, priority), delay, priority)

    def _put(self, body: str, delay_seconds: float, priority: Priority = Priority.DEFAULT) -> None:
        _check_delay(delay_seconds)
        message_id = f"m-{next(self._seq)}"
        message = _Message(
            message_id, body, self._clock.monotonic() + delay_seconds, priority=priority
        )
        self._messages[message_id] = message
        self._schedule(message)

    def _schedule(self, message: _Message) -> None:
        message.generation += 1
        heapq.heappush(
            self._ready[message.priority],
            (message.visible_at, next(self._seq), message.message_id, message.generation),
        )
        self._wakeup.set()

    # -- receiving -------------------------------------------------------------------

    async def receive(
        self, *, max_messages: int, visibility_timeout: float, wait_seconds: float
    ) -> list[Delivery]:
        if not 1 <= max_messages <= MAX_QUEUE_BATCH:
            raise ValueError(f"max_messages must be between 1 and {MAX_QUEUE_BATCH}")
        # The long-poll wait is real time (it only bounds how long a caller blocks);
        # visibility and delays are on the Clock, so tests can move them by hand.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            deliveries = self._take(max_messages, visibility_timeout)
            remaining = deadline - loop.time()
            if deliveries or remaining <= 0:
                return deliveries
            if next_due := [heap[0][0] for heap in self._ready.values() if heap]:
                due_in = min(next_due) - self._clock.monotonic()
                remaining = min(remaining, max(0.001, due_in))
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):  # no task of its own, unlike wait_for
                    await self._wakeup.wait()

    def _take(self, max_messages: int, visibility_timeout: float) -> list[Delivery]:
        out: list[Delivery] = []
        for priority in self._order.next_round():
            self._take_from(self._ready[priority], max_messages, visibility_timeout, out)
        return out

    def _take_from(
        self,
        ready: list[tuple[float, int, str, int]],
        max_messages: int,
        visibility_timeout: float,
        out: list[Delivery],
    ) -> None:
        """Lease visible messages of one priority's heap into ``out``, up to
        ``max_messages`` in all."""
        now = self._clock.monotonic()
        while ready and len(out) < max_messages and ready[0][0] <= now:
            _, _, message_id, generation = heapq.heappop(ready)
            message = self._messages.get(message_id)
            if message is None or message.generation != generation:
                continue  # acked, or rescheduled since this entry was pushed
            if message.receive_count >= self.max_receive_count:
                # The redrive policy: moved to the dead-letter queue instead of delivered.
                self._move_to_dead_letters(message, models.RECEIVE_LIMIT_REASON)
                continue
            message.receive_count += 1
            message.receipt = f"{message_id}#{message.receive_count}#{next(self._seq)}"
            message.visible_at = now + visibility_timeout
            self._schedule(message)
            out.append(
                Delivery(
                    receipt=message.receipt,
                    task_id=envelope.decode(message.body),
                    receive_count=message.receive_count,
                    message_id=message_id,
                    raw_body=message.body,
                )
            )

    def _current(self, delivery: Delivery) -> _Message | None:
        message = self._messages.get(delivery.message_id)
        if message is None or message.receipt != delivery.receipt:
            return None
        return message

    # -- settling --------------------------------------------------------------------

    async def ack(self, delivery: Delivery) -> None:
        if self._current(delivery) is not None:
            del self._messages[delivery.message_id]

    async def ack_batch(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            await self.ack(delivery)

    async def release(self, delivery: Delivery, *, delay_seconds: float = 0) -> None:
        self._set_visibility(delivery, delay_seconds)

    async def extend(self, delivery: Delivery, *, visibility_timeout: float) -> None:
        self._set_visibility(delivery, visibility_timeout)

    def _set_visibility(self, delivery: Delivery, seconds: float) -> None:
        message = self._current(delivery)
        if message is None:
            return
        message.visible_at = self._clock.monotonic() + max(0.0, seconds)
        self._schedule(message)

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        message = self._messages.get(delivery.message_id)
        if message is not None:
            self._move_to_dead_letters(message, reason)

    def _move_to_dead_letters(self, message: _Message, reason: str) -> None:
        del self._messages[message.message_id]
        message.reason = reason
        self._dead[message.message_id] = message

    # -- inspection ------------------------------------------------------------------

    async def depth(self) -> QueueDepth:
        now = self._clock.monotonic()
        visible = in_flight = delayed = 0
        for message in self._messages.values():
            if message.visible_at <= now:
                visible += 1
            elif message.receipt is not None:
                in_flight += 1
            else:
                delayed += 1
        return QueueDepth(visible=visible, in_flight=in_flight, delayed=delayed)

    async def dead_letter_count(self) -> int:
        return len(self._dead)

    async def list_dead_letters(self, *, limit: int) -> list[DeadLetter]:
        return [_dead_letter(m) for m in itertools.islice(self._dead.values(), limit)]

    async def redrive_dead_letters(self, *, limit: int | None = None) -> int:
        moved = list(itertools.islice(self._dead.values(), limit))
        for message in moved:
            del self._dead[message.message_id]
            self._put(message.body, 0, message.priority)
        return len(moved)

    async def drop_dead_letter(self, message_id: str) -> DeadLetter:
        return _dead_letter(self._take_dead_letter(message_id))

    async def redrive_dead_letter(self, message_id: str) -> DeadLetter:
        message = self._take_dead_letter(message_id)
        self._put(message.body, 0, message.priority)
        return _dead_letter(message)

    def _take_dead_letter(self, message_id: str) -> _Message:
        try:
            return self._dead.pop(message_id)
        except KeyError:
            raise DeadLetterNotFound(message_id) from None

    async def ping(self) -> None:
        return None


def _dead_letter(message: _Message) -> DeadLetter:
    return DeadLetter(
        message.message_id,
        envelope.decode(message.body),
        message.receive_count,
        message.body,
        message.reason,
    )


def _check_delay(delay_seconds: float) -> None:
    if not 0 <= delay_seconds <= MAX_QUEUE_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be between 0 and {MAX_QUEUE_DELAY_SECONDS}")


class InMemoryWorkerRegistry:
    def __init__(self) -> None:
        self._workers: dict[str, tuple[WorkerInfo, datetime]] = {}

    async def beat(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        self._workers[info.worker_id] = (info, info.last_seen + timedelta(seconds=ttl_seconds))

    async def remove(self, worker_id: str) -> None:
        self._workers.pop(worker_id, None)

    async def live(self, now: datetime) -> list[WorkerInfo]:
        self._workers = {k: (i, e) for k, (i, e) in self._workers.items() if e > now}
        return [info for info, _ in self._workers.values() if info.is_live(now)]
