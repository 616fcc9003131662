"""The TaskQueue contract, asserted identically on every backend."""

from __future__ import annotations

import asyncio

import pytest

from adapters import envelope
from domain.errors import DeadLetterNotFound
from domain.models import DeadLetter, Delivery
from tests.support.backends import MAX_RECEIVE_COUNT, QueueHarness

LEASE = 1  # seconds; SQS visibility timeouts are whole seconds
T1, T2 = envelope.encode("t-1"), envelope.encode("t-2")


async def receive_all(h: QueueHarness, *, wait: float = 0.5, lease: float = 30) -> list[str]:
    """Drain what is visible now; return the task ids."""
    ids: list[str] = []
    while True:
        batch = await h.queue.receive(max_messages=10, visibility_timeout=lease, wait_seconds=wait)
        if not batch:
            return ids
        ids.extend(d.task_id for d in batch if d.task_id is not None)


async def test_send_then_receive_one_delivery(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    await q.send("t-1")
    [delivery] = await q.receive(max_messages=10, visibility_timeout=30, wait_seconds=2)
    assert delivery.task_id == "t-1"
    assert delivery.receive_count == 1
    assert delivery.receipt


async def test_received_message_is_invisible_until_its_lease_expires(
    queue_harness: QueueHarness,
) -> None:
    q = queue_harness.queue
    await q.send("t-1")
    [first] = await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=2)
    assert await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=0) == []
    await queue_harness.advance(LEASE + 0.5)
    [again] = await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=2)
    assert again.task_id == "t-1"
    assert again.receive_count == 2
    assert again.receipt != first.receipt


async def test_ack_deletes_the_message(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    await q.send("t-1")
    [delivery] = await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=2)
    await q.ack(delivery)
    await queue_harness.advance(LEASE + 0.5)
    assert await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=0) == []
    depth = await q.depth()
    assert depth.total == 0


async def test_ack_batch_deletes_every_message(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    await q.send_batch([(f"t-{i}", 0) for i in range(12)])
    deliveries: list[Delivery] = []
    while len(deliveries) < 12:
        batch = await q.receive(max_messages=10, visibility_timeout=LEASE, wait_seconds=2)
        assert batch, "messages were lost"
        deliveries.extend(batch)
    await q.ack_batch(deliveries)
    await queue_harness.advance(LEASE + 0.5)
    assert await receive_all(queue_harness, wait=0) == []


async def test_release_makes_it_visible_again_at_once(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    await q.send("t-1")
    [delivery] = await q.receive(max_messages=1, visibility_timeout=30, wait_seconds=2)
    await q.release(delivery, delay_seconds=0)
    [again] = await q.receive(max_messages=1, visibility_timeout=30, wait_seconds=2)
    assert again.task_id == "t-1"
    assert again.receive_count == 2


async def test_release_with_delay_hides_it_for_that_long(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    await q.send("t-1")
    [delivery] = await q.receive(max_messages=1, visibility_timeout=30, wait_seconds=2)
    await q.release(delivery, delay_seconds=LEASE)
    assert await q.receive(max_messages=1, visibility_timeout=30, wait_seconds=0) == []
    await queue_harness.advance(LEASE + 0.5)
    assert [
        d.task_id for d in await q.receive(max_messages=1, visibility_timeout=30, wait_seconds=2)
    ] == ["t-1"]


async def test_extend_keeps_the_lease_past_its_first_timeout(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    await q.send("t-1")
    [delivery] = await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=2)
    await q.extend(delivery, visibility_timeout=30)
    await queue_harness.advance(LEASE + 0.5)
    assert await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=0) == []
    await q.ack(delivery)


async def test_delayed_message_is_not_delivered_before_its_delay(
    queue_harness: QueueHarness,
) -> None:
    q = queue_harness.queue
    await q.send("t-late", delay_seconds=2)
    assert await q.receive(max_messages=1, visibility_timeout=30, wait_seconds=0) == []
    assert (await q.depth()).delayed == 1
    await queue_harness.advance(2.5)
    [delivery] = await q.receive(max_messages=1, visibility_timeout=30, wait_seconds=2)
    assert delivery.task_id == "t-late"


async def test_send_batch_larger_than_one_call_sends_everything(
    queue_harness: QueueHarness,
) -> None:
    q = queue_harness.queue
    ids = [f"t-{i}" for i in range(25)]
    await q.send_batch([(i, 0) for i in ids])
    got: list[str] = []
    for _ in range(20):
        batch = await q.receive(max_messages=10, visibility_timeout=30, wait_seconds=1)
        assert len(batch) <= 10
        got.extend(d.task_id for d in batch if d.task_id)
        if len(set(got)) == len(ids):
            break
    assert set(got) == set(ids)


async def test_receive_rejects_more_than_the_batch_limit(queue_harness: QueueHarness) -> None:
    with pytest.raises(ValueError):
        await queue_harness.queue.receive(
            max_messages=queue_harness.queue.max_batch + 1, visibility_timeout=1, wait_seconds=0
        )


async def test_long_poll_returns_empty_when_nothing_arrives(queue_harness: QueueHarness) -> None:
    assert (
        await queue_harness.queue.receive(max_messages=1, visibility_timeout=1, wait_seconds=0)
        == []
    )


async def test_long_poll_wakes_when_a_message_is_sent(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    loop = asyncio.get_running_loop()
    started = loop.time()
    receiver = asyncio.create_task(
        q.receive(max_messages=1, visibility_timeout=30, wait_seconds=10)
    )
    await asyncio.sleep(0.3)
    await q.send("t-1")
    [delivery] = await asyncio.wait_for(receiver, 15)
    assert delivery.task_id == "t-1"
    assert loop.time() - started < 8


async def test_message_goes_to_dead_letters_after_max_receive_count(
    queue_harness: QueueHarness,
) -> None:
    q = queue_harness.queue
    await q.send("t-poison")
    for attempt in range(1, MAX_RECEIVE_COUNT + 1):
        [delivery] = await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=2)
        assert delivery.receive_count == attempt
        await queue_harness.advance(LEASE + 0.5)
    assert await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=1) == []
    assert await q.dead_letter_count() == 1
    [dead] = await q.list_dead_letters(limit=10)
    assert dead.task_id == "t-poison"
    assert dead.reason == queue_harness.receive_limit_reason
    assert await q.dead_letter_count() == 1, "listing must not consume dead letters"

    assert await q.redrive_dead_letters() == 1
    assert await q.dead_letter_count() == 0
    [back] = await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=2)
    assert back.task_id == "t-poison"
    assert back.receive_count == 1


async def test_dead_letter_moves_a_delivery_at_once(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    await q.send("t-1")
    [delivery] = await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=2)
    await q.dead_letter(delivery, reason="failed for good")
    await queue_harness.advance(LEASE + 0.5)
    assert await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=0) == []
    assert [d.task_id for d in await q.list_dead_letters(limit=10)] == ["t-1"]


async def test_a_dead_letter_keeps_the_receive_count_of_its_deliveries_when_listed(
    queue_harness: QueueHarness,
) -> None:
    """DeadLetter.receive_count is the number of main-queue deliveries; listing (a
    receive, on SQS) must not change it."""
    q = queue_harness.queue
    await q.send("t-1")
    await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=2)
    await queue_harness.advance(LEASE + 0.5)
    [delivery] = await q.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=2)
    assert delivery.receive_count == 2
    await q.dead_letter(delivery, reason="failed for good")

    first = await q.list_dead_letters(limit=10)
    second = await q.list_dead_letters(limit=10)

    assert [d.receive_count for d in first] == [2]
    assert [d.receive_count for d in second] == [2]


async def test_redrive_respects_its_limit(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    await q.send_batch([(f"t-{i}", 0) for i in range(3)])
    deliveries: list[Delivery] = []
    while len(deliveries) < 3:
        deliveries.extend(await q.receive(max_messages=3, visibility_timeout=30, wait_seconds=2))
    for d in deliveries:
        await q.dead_letter(d, reason="x")
    assert await q.dead_letter_count() == 3
    assert await q.redrive_dead_letters(limit=2) == 2
    assert await q.dead_letter_count() == 1


async def test_undecodable_body_is_delivered_without_a_task_id(
    queue_harness: QueueHarness,
) -> None:
    await queue_harness.send_raw("this is not an envelope")
    [delivery] = await queue_harness.queue.receive(
        max_messages=1, visibility_timeout=30, wait_seconds=2
    )
    assert delivery.task_id is None
    assert delivery.raw_body == "this is not an envelope"


async def test_depth_counts_visible_in_flight_and_delayed(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    await q.send_batch([("a", 0), ("b", 0), ("c", 0), ("d", 600)])
    received: list[Delivery] = []
    while not received:
        received = await q.receive(max_messages=1, visibility_timeout=60, wait_seconds=2)
    depth = await q.depth()
    assert (depth.visible, depth.in_flight, depth.delayed) == (2, 1, 1)


async def test_ping_answers(queue_harness: QueueHarness) -> None:
    await queue_harness.queue.ping()


# -- one dead letter by its message id -------------------------------------------------


async def dead_lettered(h: QueueHarness, *bodies: str) -> list[DeadLetter]:
    """Put ``bodies`` on the queue as they are, receive each and dead-letter it with
    the reason "reason <body>"; the dead letters, as listed."""
    for body in bodies:
        await h.send_raw(body)
    deliveries: list[Delivery] = []
    while len(deliveries) < len(bodies):
        deliveries += await h.queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=2)
    for delivery in deliveries:
        await h.queue.dead_letter(delivery, reason=f"reason {delivery.raw_body}")
    listed = await h.queue.list_dead_letters(limit=10)
    assert sorted(d.raw_body for d in listed) == sorted(bodies)
    return sorted(listed, key=lambda d: bodies.index(d.raw_body))


async def test_a_dead_letter_is_listed_with_its_reason_poison_ones_included(
    queue_harness: QueueHarness,
) -> None:
    poison, task = await dead_lettered(queue_harness, "not an envelope", T1)

    assert (poison.task_id, poison.reason, poison.receive_count) == (
        None,
        "reason not an envelope",
        1,
    )
    assert (task.task_id, task.reason) == ("t-1", f"reason {T1}")
    assert poison.message_id and task.message_id != poison.message_id


async def test_drop_deletes_that_dead_letter_only(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    poison, kept = await dead_lettered(queue_harness, "poison", T1)

    dropped = await q.drop_dead_letter(poison.message_id)

    assert dropped == poison
    assert await q.list_dead_letters(limit=10) == [kept]
    assert await q.receive(max_messages=10, visibility_timeout=30, wait_seconds=0) == []
    with pytest.raises(DeadLetterNotFound) as missing:
        await q.drop_dead_letter(poison.message_id)
    assert missing.value.message_id == poison.message_id


async def test_redrive_one_sends_it_back_as_a_new_message(queue_harness: QueueHarness) -> None:
    q = queue_harness.queue
    kept, chosen = await dead_lettered(queue_harness, T1, T2)

    redriven = await q.redrive_dead_letter(chosen.message_id)

    assert redriven == chosen
    [back] = await q.receive(max_messages=10, visibility_timeout=30, wait_seconds=2)
    assert (back.task_id, back.raw_body, back.receive_count) == ("t-2", chosen.raw_body, 1)
    assert back.message_id != chosen.message_id
    assert await q.list_dead_letters(limit=10) == [kept]
    with pytest.raises(DeadLetterNotFound):
        await q.redrive_dead_letter(chosen.message_id)


async def test_an_unknown_message_id_is_not_found_and_changes_nothing(
    queue_harness: QueueHarness,
) -> None:
    q = queue_harness.queue
    dead = await dead_lettered(queue_harness, "a", "b", "c")

    with pytest.raises(DeadLetterNotFound):
        await q.drop_dead_letter("no-such-message")
    with pytest.raises(DeadLetterNotFound):
        await q.redrive_dead_letter("no-such-message")

    # Everything looked at while searching is visible again at once.
    assert sorted(await q.list_dead_letters(limit=10), key=lambda d: d.raw_body) == dead
    assert await q.dead_letter_count() == 3
    assert await q.redrive_dead_letters() == 3
