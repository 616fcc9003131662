"""TaskService.submit_idempotent: one task per key and request, within the window."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest

from domain.errors import IdempotencyKeyReused, InfrastructureError, InvalidInput
from domain.limits import MAX_IDEMPOTENCY_KEY_LENGTH
from domain.models import TaskStatus
from domain.services import SubmissionLimits, SubmitRequest
from tests.support.service_fakes import UnreachableQueue
from tests.support.service_rig import EMAIL, Rig

WINDOW = 3600.0


async def test_a_repeat_returns_the_original_task_and_leaves_only_a_spare_message() -> None:
    """The repeat's message is sent before its key is looked up: it names no task and
    the worker drops it after its grace."""
    rig = Rig()

    first, created = await rig.service.submit_idempotent(EMAIL, "order-42")
    await rig.clock.advance(60)
    again, created_again = await rig.service.submit_idempotent(EMAIL, "order-42")

    assert (created, created_again) == (True, False)
    assert again == first
    assert await rig.stored() == 1
    owned, spares = await rig.messages()
    assert (owned, len(spares)) == ([first.id], 1)


async def test_the_repeat_returns_the_task_as_it_is_now() -> None:
    rig = Rig()
    first, _ = await rig.service.submit_idempotent(EMAIL, "k")
    await rig.fail(first.id)

    again, created = await rig.service.submit_idempotent(EMAIL, "k")

    assert not created
    assert (again.id, again.status) == (first.id, TaskStatus.FAILED)


@pytest.mark.parametrize(
    "change",
    [
        {"payload": "c@d.co"},
        {"type": "echo"},
        {"max_attempts": 5},
        {"timeout_seconds": 10},
        {"delay_seconds": 60},
        {"run_at_in": timedelta(hours=1)},
    ],
)
async def test_another_request_under_the_key_is_refused_and_stores_nothing(
    change: dict[str, Any],
) -> None:
    rig = Rig()
    await rig.service.submit_idempotent(EMAIL, "order-42")
    if "run_at_in" in change:
        change = {"run_at": rig.clock.now() + change.pop("run_at_in")}
    other = SubmitRequest(**{"type": "email", "payload": "a@b.co", **change})

    with pytest.raises(IdempotencyKeyReused) as info:
        await rig.service.submit_idempotent(other, "order-42")

    assert info.value.key == "order-42"
    assert await rig.stored() == 1


async def test_different_keys_make_different_tasks() -> None:
    rig = Rig()

    one, _ = await rig.service.submit_idempotent(EMAIL, "a")
    two, _ = await rig.service.submit_idempotent(EMAIL, "b")
    plain = await rig.service.submit(EMAIL)

    assert len({one.id, two.id, plain.id}) == 3
    assert await rig.stored() == 3


async def test_a_key_of_the_longest_length_is_accepted() -> None:
    rig = Rig()

    _, created = await rig.service.submit_idempotent(EMAIL, "x" * MAX_IDEMPOTENCY_KEY_LENGTH)

    assert created


async def test_an_invalid_request_does_not_claim_its_key() -> None:
    rig = Rig()

    with pytest.raises(InvalidInput):
        await rig.service.submit_idempotent(SubmitRequest(type="sms"), "k")
    task, created = await rig.service.submit_idempotent(EMAIL, "k")

    assert created and task.type == "email"


async def test_the_key_is_forgotten_after_the_window() -> None:
    rig = Rig(limits=SubmissionLimits(idempotency_window_seconds=WINDOW))
    first, _ = await rig.service.submit_idempotent(EMAIL, "k")

    await rig.clock.advance(WINDOW - 1)
    within, created_within = await rig.service.submit_idempotent(EMAIL, "k")
    await rig.clock.advance(1)
    after, created_after = await rig.service.submit_idempotent(EMAIL, "k")

    assert (within.id, created_within) == (first.id, False)
    assert created_after and after.id != first.id
    assert await rig.stored() == 2


async def test_after_the_window_the_key_may_carry_another_request() -> None:
    rig = Rig(limits=SubmissionLimits(idempotency_window_seconds=WINDOW))
    await rig.service.submit_idempotent(EMAIL, "k")
    await rig.clock.advance(WINDOW)

    other, created = await rig.service.submit_idempotent(SubmitRequest("echo", [1]), "k")

    assert created and other.type == "echo"


async def test_a_delayed_request_repeated_later_is_the_same_request() -> None:
    rig = Rig()
    request = SubmitRequest(type="email", payload="a@b.co", delay_seconds=600)
    first, _ = await rig.service.submit_idempotent(request, "k")

    await rig.clock.advance(300)
    again, created = await rig.service.submit_idempotent(request, "k")

    assert (again.id, again.run_at, created) == (first.id, first.run_at, False)
    await rig.clock.advance(300)
    assert await rig.visible() == [first.id], "the original's message keeps its delay"
    await rig.clock.advance(300)
    owned, spares = await rig.messages()
    assert (owned, len(spares)) == ([], 1), "the repeat's spare, delayed as it asked"


async def test_a_held_task_under_a_key_gets_no_message() -> None:
    rig = Rig()
    request = SubmitRequest(type="email", payload="a@b.co", delay_seconds=30 * 24 * 3600)

    first, _ = await rig.service.submit_idempotent(request, "k")
    again, _ = await rig.service.submit_idempotent(request, "k")

    assert again.id == first.id
    assert (await rig.queue.depth()).total == 0


async def test_twenty_concurrent_duplicates_make_one_task_and_nineteen_spares() -> None:
    rig = Rig()

    results = await asyncio.gather(
        *(rig.service.submit_idempotent(EMAIL, "race") for _ in range(20))
    )

    assert sorted(created for _, created in results) == [False] * 19 + [True]
    assert len({task.id for task, _ in results}) == 1
    assert await rig.stored() == 1
    owned, spares = await rig.messages()
    assert (owned, len(spares)) == ([results[0][0].id], 19)


async def test_a_client_repeating_after_a_failed_send_ends_with_one_queued_task() -> None:
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    with pytest.raises(InfrastructureError):
        await rig.service.submit_idempotent(EMAIL, "k")
    rig.queue.down = False

    task, created = await rig.service.submit_idempotent(EMAIL, "k")

    assert created, "the failed submission claimed no key"
    assert [t.id for t in (await rig.service.list(TaskStatus.PENDING)).items] == [task.id]
    assert await rig.visible() == [task.id]


# -- equal requests written differently ----------------------------------------------------

KOLKATA = timezone(timedelta(hours=5, minutes=30))
DUE = Rig().clock.now() + timedelta(hours=1)


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ({"delay_seconds": 30}, {"delay_seconds": 30.0}),
        ({"run_at": DUE.astimezone(UTC)}, {"run_at": DUE.astimezone(KOLKATA)}),
    ],
)
async def test_one_request_written_two_ways_is_the_same_request(
    first: dict[str, Any], again: dict[str, Any]
) -> None:
    rig = Rig()
    one = SubmitRequest(type="email", payload="a@b.co", **first)
    other = SubmitRequest(type="email", payload="a@b.co", **again)
    assert one == other
    original, _ = await rig.service.submit_idempotent(one, "k")

    repeat, created = await rig.service.submit_idempotent(other, "k")

    assert (repeat.id, created) == (original.id, False)
