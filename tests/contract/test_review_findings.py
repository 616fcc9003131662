"""Queue contract details a review found broken on one adapter (now fixed)."""

from __future__ import annotations

from tests.support.backends import QueueHarness

LEASE = 2.0


async def test_a_dead_letter_keeps_the_receive_count_of_its_deliveries(
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
