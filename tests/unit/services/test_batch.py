"""TaskService.submit_batch: one outcome per item, in order; each item stands alone."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import (
    IdempotencyKeyReused,
    InfrastructureError,
    InvalidInput,
    QueueSendFailed,
    TaskNotFound,
)
from domain.limits import MAX_BATCH_SIZE
from domain.services import BatchEntry, SubmitOutcome, SubmitRequest
from tests.support.service_fakes import FullRepository, UnreachableQueue
from tests.support.service_rig import EMAIL, Rig


def email(to: str, **options: Any) -> BatchEntry:
    return BatchEntry(SubmitRequest(type="email", payload=to, **options))


def fields(outcomes: list[SubmitOutcome]) -> list[str | None]:
    return [o.error.field if isinstance(o.error, InvalidInput) else None for o in outcomes]


async def test_every_valid_item_is_stored_and_queued_in_request_order() -> None:
    rig = Rig()
    entries = [email(f"user{i}@example.com") for i in range(12)]

    outcomes = await rig.service.submit_batch(entries)

    tasks = [o.task for o in outcomes if o.task is not None]
    assert [t.payload for t in tasks] == [f"user{i}@example.com" for i in range(12)]
    assert all(o.new and o.error is None for o in outcomes)
    for task in tasks:
        assert await rig.service.get(task.id) == task
    assert sorted(await rig.visible()) == sorted(t.id for t in tasks)


async def test_invalid_items_are_answered_in_place_and_the_valid_ones_created() -> None:
    rig = Rig()
    items: list[BatchEntry | InvalidInput] = [
        BatchEntry(EMAIL),
        BatchEntry(SubmitRequest(type="sms", payload="hi")),
        InvalidInput("body", "each task must be a JSON object"),
        email("a@b.co", max_attempts=0),
        BatchEntry(SubmitRequest(type="data-export", payload="users", delay_seconds=5)),
        email("nope"),
        email("a@b.co", run_at=Rig().clock.now().replace(tzinfo=None)),
    ]

    outcomes = await rig.service.submit_batch(items)

    assert fields(outcomes) == [None, "type", "body", "max_attempts", None, "payload", "run_at"]
    assert outcomes[2].error is items[2], "an unreadable item is answered as given"
    assert all(o.task is None for o in outcomes if o.error is not None)
    assert await rig.stored() == 2


async def test_a_batch_of_only_invalid_items_stores_nothing() -> None:
    rig = Rig()

    outcomes = await rig.service.submit_batch([email("a@b.co", max_attempts=0), email("x")])

    assert fields(outcomes) == ["max_attempts", "payload"]
    assert await rig.stored() == 0
    assert (await rig.queue.depth()).total == 0


@pytest.mark.parametrize("size", [1, MAX_BATCH_SIZE])
async def test_one_to_the_most_items_are_accepted(size: int) -> None:
    rig = Rig()

    outcomes = await rig.service.submit_batch([BatchEntry(EMAIL)] * size)

    assert [o.new for o in outcomes] == [True] * size
    assert len({o.task.id for o in outcomes if o.task}) == size, "every item is its own task"


@pytest.mark.parametrize("size", [0, MAX_BATCH_SIZE + 1])
async def test_the_refusal_of_an_empty_or_oversized_batch_says_the_limit(size: int) -> None:
    rig = Rig()

    with pytest.raises(InvalidInput) as info:
        await rig.service.submit_batch([BatchEntry(EMAIL)] * size)

    assert str(info.value) == f"tasks: must hold 1 to {MAX_BATCH_SIZE} tasks, not {size}"
    assert await rig.stored() == 0


async def test_delays_are_kept_per_item_and_far_tasks_are_held() -> None:
    rig = Rig()

    outcomes = await rig.service.submit_batch(
        [BatchEntry(EMAIL), email("a@b.co", delay_seconds=60), email("a@b.co", delay_seconds=86400)]
    )

    now, held = outcomes[0].task, outcomes[2].task
    assert now is not None and held is not None and held.run_at is not None
    depth = await rig.queue.depth()
    assert (depth.visible, depth.delayed) == (1, 1), "the far task has no message yet"
    assert await rig.visible() == [now.id]


# -- idempotency keys within a batch -------------------------------------------------------


async def test_keyed_items_are_created_once_across_and_within_batches() -> None:
    """Each repeat, and the refused reuse of a key, sent a message before its key was
    looked up: a spare naming no task, which the worker drops after its grace."""
    rig = Rig()
    single, _ = await rig.service.submit_idempotent(EMAIL, "k1")

    outcomes = await rig.service.submit_batch(
        [
            BatchEntry(EMAIL, "k1"),  # the single submission's key, same request
            BatchEntry(EMAIL, "k2"),
            BatchEntry(EMAIL, "k2"),  # a duplicate within the batch
            BatchEntry(SubmitRequest(type="email", payload="c@d.co"), "k1"),  # key reused
            BatchEntry(EMAIL),
        ]
    )

    assert [o.new for o in outcomes[:3]] == [False, True, False]
    assert outcomes[0].task is not None and outcomes[0].task.id == single.id
    assert outcomes[1].task is not None and outcomes[2].task is not None
    assert outcomes[1].task.id == outcomes[2].task.id
    assert isinstance(outcomes[3].error, IdempotencyKeyReused)
    assert outcomes[4].task is not None and outcomes[4].new
    assert await rig.stored() == 3
    owned, spares = await rig.messages()
    assert sorted(owned) == sorted([single.id, outcomes[1].task.id, outcomes[4].task.id])
    assert len(spares) == 3, "the repeat of k1, the duplicate k2, the reuse of k1"


async def test_a_repeated_keyed_batch_creates_nothing_new() -> None:
    rig = Rig()
    entries = [BatchEntry(EMAIL, f"k{i}") for i in range(5)]

    first = await rig.service.submit_batch(entries)
    again = await rig.service.submit_batch(entries)

    assert [o.new for o in again] == [False] * 5
    assert [o.task for o in again] == [o.task for o in first]
    assert await rig.stored() == 5


# -- when a dependency fails ----------------------------------------------------------------


async def test_a_failed_write_fails_only_its_item() -> None:
    rig = Rig(repository=FullRepository(room=2))

    outcomes = await rig.service.submit_batch([BatchEntry(EMAIL)] * 3)

    assert [o.task is not None for o in outcomes] == [True, True, False]
    assert isinstance(outcomes[2].error, InfrastructureError)
    assert outcomes[2].error.dependency == "repository"
    owned, spares = await rig.messages()
    assert sorted(owned) == sorted(o.task.id for o in outcomes if o.task is not None)
    assert len(spares) == 1, "the unstored item's message was sent before its write"


async def test_when_the_queue_is_down_due_items_fail_unstored_and_held_ones_are_created() -> None:
    """Every due item fails with the outage and nothing of it is stored (its send comes
    first); a held item needs no message yet, so it is created."""
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)

    outcomes = await rig.service.submit_batch(
        [
            BatchEntry(EMAIL),
            BatchEntry(SubmitRequest(type="")),
            BatchEntry(EMAIL),
            email("a@b.co", delay_seconds=86400),
        ]
    )

    assert fields(outcomes)[1] == "type"
    for error in (outcomes[0].error, outcomes[2].error):
        assert isinstance(error, QueueSendFailed)
        with pytest.raises(TaskNotFound):
            await rig.service.get(error.task_id)
    held = outcomes[3].task
    assert held is not None and held.held
    assert await rig.service.get(held.id) == held
    assert await rig.stored() == 1
    assert (await rig.queue.depth()).total == 0


async def test_items_the_queue_refused_fail_alone_and_are_not_stored() -> None:
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    rig.queue.down, rig.queue.refuse_last = False, 1

    outcomes = await rig.service.submit_batch([email(f"u{i}@b.co") for i in range(3)])

    sent = [o.task.id for o in outcomes[:2] if o.task is not None]
    assert len(sent) == 2
    refused = outcomes[2].error
    assert isinstance(refused, QueueSendFailed)
    with pytest.raises(TaskNotFound):
        await rig.service.get(refused.task_id)
    assert await rig.stored() == 2
    assert sorted(await rig.visible()) == sorted(sent)


async def test_the_error_of_a_refused_item_says_once_why() -> None:
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    rig.queue.down, rig.queue.refuse_last = False, 1

    [outcome] = await rig.service.submit_batch([BatchEntry(EMAIL)])

    assert isinstance(outcome.error, QueueSendFailed)
    assert str(outcome.error).count("not enqueued") == 1
