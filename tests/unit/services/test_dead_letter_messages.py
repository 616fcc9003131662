"""The operator's path for messages on the dead-letter queue (``DeadLetterMessages``):
look at them, poison ones included, drop one, send one or many back. On the memory
adapters, with the worker's own processing putting the messages there."""

from __future__ import annotations

import pytest

from domain.dead_letters import DeadLetterMessages
from domain.errors import DeadLetterNotFound, InvalidInput
from domain.limits import MAX_DEAD_LETTER_LIST, MAX_MESSAGE_ID_LENGTH, MAX_REDRIVE
from domain.models import RECEIVE_LIMIT_REASON, TaskStatus
from domain.processing import Outcome
from tests.support.processing_rig import LEASE, ProcessingRig


async def poison(rig: ProcessingRig, *bodies: str) -> None:
    """Messages no task can be read from, each taken by a worker, which dead-letters it."""
    for body in bodies:
        await rig.queue.send_raw(body)
        assert await rig.processor.process(await rig.receive()) is Outcome.POISON


async def test_a_poison_message_is_listed_with_why_and_dropped_for_good() -> None:
    rig = ProcessingRig()
    messages = DeadLetterMessages(rig.queue)
    await poison(rig, "{not json")

    [listed] = await messages.list()
    dropped = await messages.drop(listed.message_id)

    assert (listed.task_id, listed.raw_body, listed.receive_count) == (None, "{not json", 1)
    assert listed.reason == "undecodable message body"
    assert dropped == listed
    assert (await messages.list(), await messages.count()) == ([], 0)
    assert await rig.nothing_visible(), "a dropped message is not sent anywhere"


async def test_a_message_the_queue_gave_up_on_is_redriven_and_its_task_runs() -> None:
    """Workers that died before settling used up the message's receives: the queue moved
    it away while its task is still PENDING. Redriven, the task runs."""
    rig = ProcessingRig()
    rig.queue.max_receive_count = 2
    rig.handler("job", lambda payload: "ran")
    messages = DeadLetterMessages(rig.queue)
    task = await rig.submit("job")
    for _ in range(2):
        await rig.receive()
        await rig.clock.advance(LEASE + 1)
    assert await rig.nothing_visible()
    [listed] = await messages.list()

    redriven = await messages.redrive(listed.message_id)

    assert (redriven.task_id, redriven.reason) == (task.id, RECEIVE_LIMIT_REASON)
    assert await messages.count() == 0
    delivery = await rig.receive()
    assert delivery.receive_count == 1
    assert await rig.processor.process(delivery) is Outcome.COMPLETED
    assert (await rig.repo.get(task.id)).status is TaskStatus.COMPLETED


async def test_list_shows_at_most_its_limit_oldest_first() -> None:
    rig = ProcessingRig()
    messages = DeadLetterMessages(rig.queue)
    await poison(rig, "a", "b", "c")

    assert [d.raw_body for d in await messages.list(limit=2)] == ["a", "b"]
    assert await messages.count() == 3


async def test_redrive_all_moves_up_to_its_limit_and_leaves_the_rest() -> None:
    rig = ProcessingRig()
    messages = DeadLetterMessages(rig.queue)
    await poison(rig, "a", "b", "c")

    assert await messages.redrive_all(limit=2) == 2
    assert [d.raw_body for d in await messages.list()] == ["c"]
    assert await messages.redrive_all() == 1
    assert await messages.count() == 0


@pytest.mark.parametrize("limit", [0, MAX_DEAD_LETTER_LIST + 1])
async def test_a_list_limit_out_of_range_is_refused(limit: int) -> None:
    messages = DeadLetterMessages(ProcessingRig().queue)

    with pytest.raises(InvalidInput) as error:
        await messages.list(limit=limit)

    assert error.value.field == "limit"
    assert str(MAX_DEAD_LETTER_LIST) in error.value.message


@pytest.mark.parametrize("limit", [0, MAX_REDRIVE + 1])
async def test_a_redrive_limit_out_of_range_is_refused_and_moves_nothing(limit: int) -> None:
    rig = ProcessingRig()
    messages = DeadLetterMessages(rig.queue)
    await poison(rig, "a")

    with pytest.raises(InvalidInput) as error:
        await messages.redrive_all(limit=limit)

    assert error.value.field == "limit"
    assert await messages.count() == 1


@pytest.mark.parametrize("message_id", ["m-404", "", "x" * (MAX_MESSAGE_ID_LENGTH + 1)])
@pytest.mark.parametrize("action", ["drop", "redrive"])
async def test_an_id_the_queue_does_not_hold_is_not_found_and_changes_nothing(
    message_id: str, action: str
) -> None:
    rig = ProcessingRig()
    messages = DeadLetterMessages(rig.queue)
    await poison(rig, "a")

    with pytest.raises(DeadLetterNotFound) as error:
        await getattr(messages, action)(message_id)

    assert error.value.message_id == message_id
    assert await messages.count() == 1
    assert await rig.nothing_visible()
