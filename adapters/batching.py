"""A TaskQueue decorator that coalesces concurrent sends and acks into batch calls.

On AWS each request costs money and a round trip; SQS takes up to 10 messages per
SendMessageBatch and DeleteMessageBatch (``domain.limits.MAX_QUEUE_BATCH``; the wrapped
queue says how many in ``max_batch``). This wrapper batches *naturally*: calls that
arrive while a batch call is in flight wait for the next one, which takes up to
``max_batch`` of them (``adapters/coalescing.py``). Under load that yields full batches;
idle, it costs nothing.

Acks with a linger go out in the background (``adapters/background_acks.py``): ``ack``
returns once the ack is queued, so a finished task frees its worker slot at once; whoever
owns the queue awaits ``aclose`` on shutdown to send what is still queued. Without an
ack linger, an ack is coalesced like a send and returns once it went out.

A linger (a bounded wait for more items before a batch goes out, cut short as soon as a
batch is full) raises the batch size when calls arrive faster than one per linger but
slower than one per call in flight. Sends keep a linger of a few milliseconds at most,
since it adds to a lone task's start latency; acks can linger longer (half a second on
aws), because an acked task is already finished in the repository and its message
stays leased meanwhile (``benchmarks/aws_engine.py`` and ``benchmarks/aws_outside.py``
measure the requests per task this saves).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from adapters.background_acks import BackgroundAcks
from adapters.coalescing import Coalescer
from domain.errors import QueueSendFailed
from domain.models import DeadLetter, Delivery, QueueDepth
from domain.ports import TaskQueue
from domain.priorities import Priority

Item = TypeVar("Item")


def _per_item(
    flush: Callable[[list[Item]], Awaitable[None]],
    task_id: Callable[[Item], str] | None = None,
) -> Callable[[list[Item]], Awaitable[list[None | BaseException]]]:
    """``flush`` (a batch send or ack) with one outcome per item for a ``Coalescer``.
    A ``QueueSendFailed`` naming the items that did not go out fails only those when
    ``task_id`` tells an item's task; any other failure fails the whole batch."""

    async def flushed(items: list[Item]) -> list[None | BaseException]:
        try:
            await flush(items)
        except QueueSendFailed as exc:
            if task_id is None:
                raise
            unsent = set(exc.task_ids)
            return [exc if task_id(item) in unsent else None for item in items]
        return [None] * len(items)

    return flushed


class BatchingTaskQueue:
    def __init__(
        self,
        inner: TaskQueue,
        *,
        max_concurrent_calls: int = 4,
        send_linger_seconds: float = 0.0,
        ack_linger_seconds: float = 0.0,
    ) -> None:
        if send_linger_seconds < 0 or ack_linger_seconds < 0:
            raise ValueError("a linger cannot be negative")
        self.inner = inner
        self.max_batch = inner.max_batch
        # A batch call sends to one priority: one coalescer each.
        self._sends: dict[Priority, Coalescer[tuple[str, int], None]] = {
            priority: Coalescer(
                _per_item(
                    functools.partial(inner.send_batch, priority=priority), lambda item: item[0]
                ),
                max_batch=inner.max_batch,
                max_calls=max_concurrent_calls,
                linger_seconds=send_linger_seconds,
            )
            for priority in Priority
        }
        self._acks: Coalescer[Delivery, None] = Coalescer(
            _per_item(inner.ack_batch),
            max_batch=inner.max_batch,
            max_calls=max_concurrent_calls,
            linger_seconds=ack_linger_seconds,
        )
        self._background_acks = (
            BackgroundAcks(
                inner.ack_batch,
                inner.max_batch,
                ack_linger_seconds,
                max_concurrent_calls,
            )
            if ack_linger_seconds
            else None
        )

    @property
    def batch_calls(self) -> int:
        background = self._background_acks.batches if self._background_acks else 0
        sends = sum(sends.batches for sends in self._sends.values())
        return sends + self._acks.batches + background

    async def aclose(self) -> None:
        """Send the acks still queued and wait for them (on shutdown)."""
        if self._background_acks is not None:
            await self._background_acks.aclose()

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        await self._sends[priority].submit((task_id, delay_seconds))

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        await self.inner.send_batch(items, priority=priority)

    async def receive(
        self, *, max_messages: int, visibility_timeout: float, wait_seconds: float
    ) -> list[Delivery]:
        return await self.inner.receive(
            max_messages=max_messages,
            visibility_timeout=visibility_timeout,
            wait_seconds=wait_seconds,
        )

    async def ack(self, delivery: Delivery) -> None:
        if self._background_acks is not None:
            self._background_acks.add(delivery)  # returns at once: see the module doc
        else:
            await self._acks.submit(delivery)

    async def ack_batch(self, deliveries: Sequence[Delivery]) -> None:
        await self.inner.ack_batch(deliveries)

    async def release(self, delivery: Delivery, *, delay_seconds: float = 0) -> None:
        await self.inner.release(delivery, delay_seconds=delay_seconds)

    async def extend(self, delivery: Delivery, *, visibility_timeout: float) -> None:
        await self.inner.extend(delivery, visibility_timeout=visibility_timeout)

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        await self.inner.dead_letter(delivery, reason=reason)

    async def depth(self) -> QueueDepth:
        return await self.inner.depth()

    async def dead_letter_count(self) -> int:
        return await self.inner.dead_letter_count()

    async def list_dead_letters(self, *, limit: int) -> list[DeadLetter]:
        return await self.inner.list_dead_letters(limit=limit)

    async def redrive_dead_letters(self, *, limit: int | None = None) -> int:
        return await self.inner.redrive_dead_letters(limit=limit)

    async def drop_dead_letter(self, message_id: str) -> DeadLetter:
        return await self.inner.drop_dead_letter(message_id)

    async def redrive_dead_letter(self, message_id: str) -> DeadLetter:
        return await self.inner.redrive_dead_letter(message_id)

    async def ping(self) -> None:
        await self.inner.ping()
