"""Concurrent calls coalesced into batch calls, each caller getting its own outcome.

``Coalescer.submit(item)`` queues ``item`` and awaits the outcome of the batch call it
goes out in. Batching is *natural*: calls that arrive while a batch call is in flight
wait for the next one, which takes up to ``max_batch`` of them, so under load batches
fill up and idle a lone call goes out at once. A linger (a bounded wait for more items
before a batch goes out, cut short as soon as a batch is full) raises the batch size
when calls arrive faster than one per linger but slower than one per call in flight;
it adds to a lone call's latency, so it is off unless asked for.

``flush`` gets the batch's items and gives one outcome per item, in order: the value
for its caller, or an exception raised to that caller only. An exception ``flush``
raises goes to every caller of the batch. Used by the SQS sends and acks
(``adapters/batching.py``) and by the DynamoDB repository's reads and adds
(``adapters/dynamodb/batched.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

Flush = Callable[[list[In]], Awaitable[Sequence[Out | BaseException]]]


class Coalescer(Generic[In, Out]):
    """Feeds items to ``flush`` in batches of at most ``max_batch``, with at most
    ``max_calls`` batch calls in flight; each caller gets its item's outcome."""

    def __init__(
        self,
        flush: Flush[In, Out],
        *,
        max_batch: int,
        max_calls: int,
        linger_seconds: float = 0.0,
    ) -> None:
        if max_batch < 1 or max_calls < 1:
            raise ValueError("max_batch and max_calls must be at least 1")
        self._flush = flush
        self._max_batch = max_batch
        self._max_calls = max_calls
        self._linger = linger_seconds
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._calls = 0
        self._full: asyncio.Event | None = None
        self._drains: set[asyncio.Task[None]] = set()
        """Held until done: the loop keeps only a weak reference to a task."""
        self.batches = 0

    async def submit(self, item: In) -> Out:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        self._pending.append((item, future))
        if self._full is not None and len(self._pending) >= self._max_batch:
            self._full.set()
        if self._calls < self._max_calls:
            self._calls += 1
            drain = loop.create_task(self._drain())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return await future

    async def _linger_until_full(self) -> None:
        if not self._linger or len(self._pending) >= self._max_batch or self._full is not None:
            return
        self._full = asyncio.Event()
        try:
            await asyncio.wait_for(self._full.wait(), self._linger)
        except TimeoutError:
            pass
        finally:
            self._full = None

    async def _drain(self) -> None:
        try:
            if self._full is not None:
                return  # another call lingers for company: it takes this item too
            await self._linger_until_full()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self.batches += 1
                await self._deliver(batch)
        finally:
            self._calls -= 1

    async def _deliver(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            outcomes = await self._flush([item for item, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(outcomes)} outcomes for a batch of {len(batch)}")
        except Exception as exc:  # delivered to every caller of the batch
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
