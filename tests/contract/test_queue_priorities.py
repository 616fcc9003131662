"""Priorities on every queue (memory, batching, sqlite, aws with one SQS queue per
priority): high first, low never starved, a delivery keeps its priority."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.errors import InvalidInput
from domain.models import Delivery
from domain.priorities import Priority
from tests.support.backends import QUEUE_BACKENDS, QueueHarness, aws_queue

LEASE = 30.0


@pytest.fixture(params=sorted(set(QUEUE_BACKENDS) - {"aws"}))
async def queue_harness(request: pytest.FixtureRequest) -> AsyncIterator[QueueHarness]:
    """Every queue that keeps priorities: all but the single SQS queue (aws without
    ``TASKQ_PRIORITIES``), which refuses them (the last test)."""
    async with QUEUE_BACKENDS[request.param]() as harness:
        yield harness


async def receive(harness: QueueHarness, count: int) -> list[Delivery]:
    return await harness.queue.receive(max_messages=count, visibility_timeout=LEASE, wait_seconds=1)


async def test_a_high_task_sent_behind_a_backlog_of_low_ones_is_received_within_one_round(
    queue_harness: QueueHarness,
) -> None:
    queue = queue_harness.queue
    await queue.send_batch([(f"low-{i}", 0) for i in range(10)], priority=Priority.LOW)
    await queue.send_batch([(f"low-{i}", 0) for i in range(10, 20)], priority=Priority.LOW)
    first = await receive(queue_harness, 3)  # a worker busy with the backlog
    assert {d.task_id for d in first} <= {f"low-{i}" for i in range(20)}
    await queue.send("urgent", priority=Priority.HIGH)

    rounds = [await receive(queue_harness, 3) for _ in range(2)]

    assert "urgent" in {d.task_id for got in rounds for d in got}
    assert rounds[0] or rounds[1]


async def test_high_comes_before_default_and_default_before_low(
    queue_harness: QueueHarness,
) -> None:
    queue = queue_harness.queue
    await queue.send("low", priority=Priority.LOW)
    await queue.send("default")
    await queue.send("high", priority=Priority.HIGH)

    got = await receive(queue_harness, 3)

    # A fresh queue's first round looks at high first (it has the largest weight),
    # then fills the batch in rank order.
    assert [d.task_id for d in got] == ["high", "default", "low"]


async def test_low_still_progresses_under_a_steady_stream_of_high_tasks(
    queue_harness: QueueHarness,
) -> None:
    queue = queue_harness.queue
    await queue.send_batch([(f"low-{i}", 0) for i in range(3)], priority=Priority.LOW)
    received: list[str] = []
    for round_ in range(10):  # one weight period (6 + 3 + 1)
        await queue.send(f"high-{round_}", priority=Priority.HIGH)  # never runs dry
        await queue.send(f"default-{round_}")
        got = await receive(queue_harness, 1)
        received += [d.task_id or "" for d in got]
        for delivery in got:
            await queue.ack(delivery)

    lows = [task for task in received if task.startswith("low-")]
    highs = [task for task in received if task.startswith("high-")]
    assert len(lows) == 1, received
    assert len(highs) == 6, received


async def test_a_released_delivery_comes_back_in_its_priority(
    queue_harness: QueueHarness,
) -> None:
    queue = queue_harness.queue
    await queue.send("high", priority=Priority.HIGH)
    [delivery] = await receive(queue_harness, 1)
    await queue.release(delivery, delay_seconds=0)
    await queue.send_batch([(f"low-{i}", 0) for i in range(5)], priority=Priority.LOW)

    got = await receive(queue_harness, 1)

    assert [d.task_id for d in got] == ["high"]
    assert got[0].receive_count == 2
    await queue.ack(got[0])
    assert (await queue.depth()).visible == 5


async def test_a_redriven_dead_letter_goes_back_to_its_priority(
    queue_harness: QueueHarness,
) -> None:
    queue = queue_harness.queue
    await queue.send("high", priority=Priority.HIGH)
    [delivery] = await receive(queue_harness, 1)
    await queue.dead_letter(delivery, reason="test")
    await queue.send_batch([(f"low-{i}", 0) for i in range(5)], priority=Priority.LOW)
    assert await queue.redrive_dead_letters() == 1

    got = await receive(queue_harness, 1)

    assert [d.task_id for d in got] == ["high"]


@pytest.mark.parametrize("priority", [Priority.HIGH, Priority.LOW])
async def test_a_batch_of_one_priority_is_received_as_sent(
    queue_harness: QueueHarness, priority: Priority
) -> None:
    await queue_harness.queue.send_batch([("a", 0), ("b", 0)], priority=priority)

    got = await receive(queue_harness, 2)

    assert sorted(d.task_id or "" for d in got) == ["a", "b"]


@pytest.mark.parametrize("priority", [Priority.HIGH, Priority.LOW])
async def test_the_single_sqs_queue_refuses_a_priority_naming_the_setting(
    priority: Priority,
) -> None:
    async with aws_queue() as harness:
        with pytest.raises(InvalidInput, match="TASKQ_PRIORITIES=true") as raised:
            await harness.queue.send("a", priority=priority)
        assert raised.value.field == "priority"
        with pytest.raises(InvalidInput, match="TASKQ_PRIORITIES=true"):
            await harness.queue.send_batch([("b", 0)], priority=priority)
        assert (await harness.queue.depth()).total == 0
