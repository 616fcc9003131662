"""BatchingTaskQueue: concurrent sends and acks go out as batch calls, nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from adapters.batching import BatchingTaskQueue
from adapters.clock import ManualClock
from adapters.memory import InMemoryTaskQueue
from domain.errors import InfrastructureError, QueueSendFailed
from domain.models import Delivery
from domain.priorities import Priority


class CountingQueue(InMemoryTaskQueue):
    """The memory queue, counting batch calls and taking a little time per call."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        super().__init__(self.clock)
        self.send_calls: list[int] = []
        self.ack_calls: list[int] = []
        self.fail_sends = False
        self.fail_acks = 0
        """How many ack batch calls fail before they succeed again."""

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        await asyncio.sleep(0.005)
        self.send_calls.append(len(items))
        if self.fail_sends:
            raise InfrastructureError("queue", "throttled")
        await super().send_batch(items, priority=priority)

    async def ack_batch(self, deliveries: Sequence[Delivery]) -> None:
        await asyncio.sleep(0.005)
        self.ack_calls.append(len(deliveries))
        if self.fail_acks:
            self.fail_acks -= 1
            raise InfrastructureError("queue", "throttled")
        await super().ack_batch(deliveries)


async def test_concurrent_sends_and_acks_are_batched() -> None:
    inner = CountingQueue()
    queue = BatchingTaskQueue(inner, max_concurrent_calls=2)
    await asyncio.gather(*(queue.send(f"t-{i}") for i in range(100)))
    assert sum(inner.send_calls) == 100
    assert max(inner.send_calls) == 10
    assert len(inner.send_calls) <= 12

    deliveries: list[Delivery] = []
    while batch := await queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=0):
        deliveries.extend(batch)
    assert len({d.task_id for d in deliveries}) == 100
    await asyncio.gather(*(queue.ack(d) for d in deliveries))
    assert sum(inner.ack_calls) == 100
    assert len(inner.ack_calls) <= 12
    assert (await queue.depth()).total == 0


async def test_sends_arriving_during_a_linger_join_it_rather_than_go_alone() -> None:
    """With room for several calls in flight, the sends that arrive while one call
    lingers for company wait in it: one batch, not one call for each of the first few
    (what made the aws engine pay 0.6 SendMessageBatch and 0.8 DeleteMessageBatch per
    task at moto's rate)."""
    inner = CountingQueue()
    queue = BatchingTaskQueue(inner, max_concurrent_calls=4, send_linger_seconds=0.2)

    async def send_later(i: int) -> None:
        await asyncio.sleep(0.01 * i)
        await queue.send(f"t-{i}")

    await asyncio.gather(*(send_later(i) for i in range(6)))
    assert inner.send_calls == [6]


async def test_a_lone_send_goes_out_at_once() -> None:
    inner = CountingQueue()
    queue = BatchingTaskQueue(inner)
    await asyncio.wait_for(queue.send("t-1"), 1)
    assert inner.send_calls == [1]


async def test_a_failed_batch_fails_every_caller_in_it() -> None:
    inner = CountingQueue()
    inner.fail_sends = True
    queue = BatchingTaskQueue(inner)
    results = await asyncio.gather(
        *(queue.send(f"t-{i}") for i in range(15)), return_exceptions=True
    )
    assert all(isinstance(r, InfrastructureError) for r in results)
    inner.fail_sends = False
    await queue.send("t-ok")
    assert (await queue.depth()).visible == 1


@pytest.mark.parametrize("n", [1, 9, 10, 11, 35])
async def test_every_send_is_delivered_whatever_the_batch_boundaries(n: int) -> None:
    inner = CountingQueue()
    queue = BatchingTaskQueue(inner, max_concurrent_calls=3)
    await asyncio.gather(*(queue.send(f"t-{i}") for i in range(n)))
    assert (await queue.depth()).visible == n


class PartlyFailingQueue(InMemoryTaskQueue):
    """send_batch sends every item but ``refused`` and names it, as the port says."""

    def __init__(self, refused: str) -> None:
        super().__init__(ManualClock())
        self.refused = refused

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        await super().send_batch(
            [item for item in items if item[0] != self.refused], priority=priority
        )
        if any(task_id == self.refused for task_id, _ in items):
            raise QueueSendFailed([self.refused], f"1 of {len(items)} not sent")


async def test_in_a_partly_failed_batch_only_the_callers_whose_send_was_refused_fail() -> None:
    inner = PartlyFailingQueue(refused="b")
    queue = BatchingTaskQueue(inner, send_linger_seconds=0.05)

    results = await asyncio.gather(queue.send("a"), queue.send("b"), return_exceptions=True)

    assert (await inner.depth()).visible == 1  # "a" was sent
    assert isinstance(results[1], InfrastructureError)
    assert results[0] is None


async def received(queue: BatchingTaskQueue, n: int) -> list[Delivery]:
    await asyncio.gather(*(queue.send(f"t-{i}") for i in range(n)))
    deliveries: list[Delivery] = []
    while batch := await queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=0):
        deliveries.extend(batch)
    return deliveries


async def test_with_an_ack_linger_an_ack_returns_before_it_goes_out_and_close_flushes_it() -> None:
    inner = CountingQueue()
    queue = BatchingTaskQueue(inner, ack_linger_seconds=30)
    deliveries = await received(queue, 3)
    for delivery in deliveries:
        await asyncio.wait_for(queue.ack(delivery), 1)
    assert inner.ack_calls == [], "queued, lingering for company"
    assert (await inner.depth()).in_flight == 3
    await asyncio.wait_for(queue.aclose(), 5)
    assert inner.ack_calls == [3]
    assert (await inner.depth()).total == 0


async def test_a_full_batch_of_acks_goes_out_without_waiting_out_the_linger() -> None:
    inner = CountingQueue()
    queue = BatchingTaskQueue(inner, ack_linger_seconds=30)
    deliveries = await received(queue, 23)
    for delivery in deliveries:
        await queue.ack(delivery)
    while sum(inner.ack_calls) < 20:
        await asyncio.sleep(0.01)
    assert inner.ack_calls == [10, 10], "the last 3 still linger"
    await queue.aclose()
    assert inner.ack_calls == [10, 10, 3]
    assert (await inner.depth()).total == 0


async def test_a_failed_ack_batch_is_retried_and_an_ack_after_close_still_goes_out() -> None:
    inner = CountingQueue()
    inner.fail_acks = 2
    queue = BatchingTaskQueue(inner, ack_linger_seconds=0.05)
    deliveries = await received(queue, 4)
    for delivery in deliveries[:3]:
        await queue.ack(delivery)
    await queue.aclose()
    assert inner.ack_calls == [3, 3, 3], "failed twice, then sent"
    await queue.ack(deliveries[3])
    await queue.aclose()
    assert (await inner.depth()).total == 0


async def test_acks_that_fail_every_retry_are_dropped_and_their_messages_come_back() -> None:
    inner = CountingQueue()
    inner.fail_acks = 100
    queue = BatchingTaskQueue(inner, ack_linger_seconds=0.01)
    [delivery] = await received(queue, 1)
    await queue.ack(delivery)
    await queue.aclose()
    assert len(inner.ack_calls) == 4, "the first call and three retries"
    await inner.clock.advance(31)
    again = await queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=0)
    assert [d.task_id for d in again] == [delivery.task_id]
