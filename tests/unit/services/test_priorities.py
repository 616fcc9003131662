"""Priorities through the use cases: set at submit (single, batch, idempotent), the
type's default, refused where the queue keeps none, kept by retry and the reconciler."""

from __future__ import annotations

import pytest

from domain.errors import IdempotencyKeyReused, InvalidInput
from domain.models import TaskStatus
from domain.priorities import Priority, PriorityOrder, PriorityWeights, by_priority
from domain.services import BatchEntry, SubmissionLimits, SubmitRequest
from domain.task_types import TaskType
from tests.support.service_rig import Rig

LEASE = 30.0


async def received(rig: Rig, count: int) -> list[str]:
    got = await rig.queue.receive(max_messages=count, visibility_timeout=LEASE, wait_seconds=0)
    return [d.task_id or "" for d in got]


async def test_a_task_keeps_the_priority_it_was_submitted_with() -> None:
    rig = Rig()

    task = await rig.submit(priority="high")

    assert task.priority is Priority.HIGH
    assert (await rig.service.get(task.id)).priority is Priority.HIGH


async def test_a_task_that_names_none_has_its_types_priority_else_default() -> None:
    rig = Rig()
    rig.task_types.add(TaskType("report", lambda payload: payload, 5.0, priority=Priority.LOW))

    assert (await rig.submit("report", None)).priority is Priority.LOW
    assert (await rig.submit("report", None, priority="high")).priority is Priority.HIGH
    assert (await rig.submit("echo", None)).priority is Priority.DEFAULT


async def test_a_high_task_submitted_behind_low_ones_is_received_first() -> None:
    rig = Rig()
    lows = [await rig.submit(priority="low") for _ in range(5)]
    high = await rig.submit(priority="high")

    assert await received(rig, 2) == [high.id, lows[0].id]


@pytest.mark.parametrize("value", ["urgent", "HIGH", "", 1])
async def test_an_unknown_priority_is_refused_naming_the_field(value: object) -> None:
    rig = Rig()

    with pytest.raises(InvalidInput) as raised:
        await rig.submit(priority=value)

    assert raised.value.field == "priority"
    assert "high, default, low" in raised.value.message
    assert await rig.stored() == 0


@pytest.mark.parametrize("priority", ["high", "low"])
async def test_without_priority_queues_a_priority_is_refused_naming_the_setting(
    priority: str,
) -> None:
    rig = Rig(limits=SubmissionLimits(priorities=False))

    with pytest.raises(InvalidInput, match="TASKQ_PRIORITIES=true") as raised:
        await rig.submit(priority=priority)

    assert raised.value.field == "priority"
    assert await rig.stored() == 0
    assert (await rig.submit(priority="default")).priority is Priority.DEFAULT


async def test_without_priority_queues_a_types_priority_is_not_used() -> None:
    rig = Rig(limits=SubmissionLimits(priorities=False))
    rig.task_types.add(TaskType("report", lambda payload: payload, 5.0, priority=Priority.HIGH))

    assert (await rig.submit("report", None)).priority is Priority.DEFAULT


async def test_a_batch_sends_each_item_in_its_own_priority() -> None:
    rig = Rig()
    items = [
        BatchEntry(SubmitRequest(type="echo", payload=i, priority=p))
        for i, p in enumerate(["low", "default", "high", None, "nope"])
    ]

    outcomes = await rig.service.submit_batch(items)

    tasks = [o.task for o in outcomes]
    assert [t.priority if t else None for t in tasks] == [
        Priority.LOW,
        Priority.DEFAULT,
        Priority.HIGH,
        Priority.DEFAULT,
        None,
    ]
    error = outcomes[4].error
    assert isinstance(error, InvalidInput) and error.field == "priority"
    ids = [t.id for t in tasks if t]
    assert await received(rig, 4) == [ids[2], ids[1], ids[3], ids[0]]


async def test_an_idempotent_repeat_with_another_priority_is_another_request() -> None:
    rig = Rig()
    task, _ = await rig.service.submit_idempotent(SubmitRequest("echo", 1, priority="high"), "k")

    again, new = await rig.service.submit_idempotent(SubmitRequest("echo", 1, priority="high"), "k")
    assert (again.id, new) == (task.id, False)
    with pytest.raises(IdempotencyKeyReused):
        await rig.service.submit_idempotent(SubmitRequest("echo", 1, priority="low"), "k")


async def test_a_retried_task_is_sent_in_its_priority() -> None:
    rig = Rig()
    task = await rig.submit(priority="high", max_attempts=1)
    await received(rig, 1)
    await rig.start(task.id)
    await rig.fail(task.id)
    assert (await rig.service.get(task.id)).status is TaskStatus.FAILED
    await rig.submit(priority="low")

    await rig.service.retry(task.id)
    await rig.clock.advance(2)

    assert (await received(rig, 1)) == [task.id]


async def test_a_held_task_is_sent_in_its_priority_when_it_comes_due() -> None:
    rig = Rig()
    held = await rig.submit(priority="high", delay_seconds=3 * 3600)
    assert held.held
    await rig.clock.advance(3 * 3600)
    await rig.submit(priority="low")

    await rig.reconciler().run_once()

    assert (await received(rig, 1)) == [held.id]


def test_the_weighted_order_gives_each_priority_first_place_its_weight_in_every_period() -> None:
    order = PriorityOrder(PriorityWeights(high=5, default=2, low=1))

    firsts = [order.next_round()[0] for _ in range(8 * 3)]

    for start in range(0, len(firsts), 8):
        period = firsts[start : start + 8]
        assert period.count(Priority.HIGH) == 5
        assert period.count(Priority.DEFAULT) == 2
        assert period.count(Priority.LOW) == 1
    assert firsts[0] is Priority.HIGH
    assert all(len(set(order.next_round())) == 3 for _ in range(5))


@pytest.mark.parametrize("text", ["high=0", "high=-1", "urgent=3", "high", "high=x", "high=1.5"])
def test_bad_weights_are_refused_naming_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match="high|PRIORITY"):
        PriorityWeights.parse(text)


def test_weights_given_in_part_keep_the_others_defaults() -> None:
    assert PriorityWeights.parse("low=2 , high=9") == PriorityWeights(high=9, default=3, low=2)
    assert PriorityWeights.parse("") == PriorityWeights()


def test_sends_are_grouped_by_priority_in_rank_order_keeping_their_order() -> None:
    groups = by_priority([(Priority.LOW, "a", 0), (Priority.HIGH, "b", 5), (Priority.HIGH, "c", 0)])
    assert list(groups) == [Priority.HIGH, Priority.LOW]
    assert groups[Priority.HIGH] == [("b", 5), ("c", 0)]
