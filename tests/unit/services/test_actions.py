"""The operator's actions: cancel, retry, and the bulk redrive of FAILED tasks."""

from __future__ import annotations

import asyncio

import pytest

from domain.errors import (
    ConcurrencyConflict,
    InvalidInput,
    QueueSendFailed,
    TaskNotFound,
    TaskStateConflict,
)
from domain.models import Task, TaskStatus
from domain.services import CANCEL_RETRIES, RETRY_SEND_DELAY_SECONDS, SubmissionLimits
from tests.support.service_fakes import (
    LateAnsweringQueue,
    RacingRepository,
    UnreachableQueue,
    edited,
)
from tests.support.service_rig import LEASE_SECONDS, Rig

FINISHED = [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def claimed_by_a_worker(task: Task) -> Task:
    return task.claim("rival", task.updated_at, LEASE_SECONDS)


# -- cancel ------------------------------------------------------------------------------


async def test_cancel_of_a_pending_task_ends_it_at_once() -> None:
    rig = Rig()
    task = await rig.submit()
    await rig.clock.advance(5)

    cancelled = await rig.service.cancel(task.id)

    assert cancelled.status is TaskStatus.CANCELLED
    assert cancelled.finished_at == rig.clock.now() and not cancelled.cancel_requested
    assert await rig.service.get(task.id) == cancelled
    assert (await rig.count(TaskStatus.CANCELLED), await rig.count(TaskStatus.PENDING)) == (1, 0)


@pytest.mark.parametrize("delay", [60, 7 * 24 * 3600])
async def test_cancel_of_a_delayed_or_held_task_ends_it(delay: int) -> None:
    rig = Rig()
    task = await rig.submit(delay_seconds=delay)

    assert (await rig.service.cancel(task.id)).status is TaskStatus.CANCELLED


async def test_cancel_of_a_running_task_flags_it_once_for_its_worker() -> None:
    rig = Rig()
    task = await rig.in_status(TaskStatus.PROCESSING)

    first = await rig.service.cancel(task.id)
    again = await rig.service.cancel(task.id)

    assert (first.status, first.cancel_requested) == (TaskStatus.PROCESSING, True)
    assert again == first, "asking twice writes nothing more"
    assert await rig.service.get(task.id) == first


@pytest.mark.parametrize("status", FINISHED)
async def test_cancel_of_a_finished_task_is_a_conflict_naming_its_status(
    status: TaskStatus,
) -> None:
    rig = Rig()
    task = await rig.in_status(status)

    with pytest.raises(TaskStateConflict) as info:
        await rig.service.cancel(task.id)

    assert (info.value.task_id, info.value.status) == (task.id, status.value)
    assert await rig.service.get(task.id) == task


async def test_cancel_of_an_unknown_task_is_not_found() -> None:
    with pytest.raises(TaskNotFound) as info:
        await Rig().service.cancel(UNKNOWN_ID)

    assert info.value.task_id == UNKNOWN_ID


async def test_cancel_that_loses_a_race_to_a_worker_flags_the_task_instead() -> None:
    repository = RacingRepository()
    rig = Rig(repository=repository)
    task = await rig.submit()
    repository.race(claimed_by_a_worker)

    result = await rig.service.cancel(task.id)

    assert (result.status, result.cancel_requested) == (TaskStatus.PROCESSING, True)
    assert await rig.service.get(task.id) == result


async def test_cancel_that_loses_a_race_to_the_end_of_the_task_is_a_conflict() -> None:
    repository = RacingRepository()
    rig = Rig(repository=repository)
    task = await rig.in_status(TaskStatus.PROCESSING)
    repository.race(lambda t: t.complete("done", t.updated_at))

    with pytest.raises(TaskStateConflict) as info:
        await rig.service.cancel(task.id)

    assert info.value.status == "COMPLETED"


async def test_cancel_retries_lost_races_and_gives_up_after_the_last() -> None:
    repository = RacingRepository()
    rig = Rig(repository=repository)
    wins, loses = await rig.submit(), await rig.submit()

    repository.race(edited, times=CANCEL_RETRIES - 1)
    assert (await rig.service.cancel(wins.id)).status is TaskStatus.CANCELLED
    repository.race(edited, times=CANCEL_RETRIES)
    with pytest.raises(ConcurrencyConflict) as info:
        await rig.service.cancel(loses.id)

    assert info.value.task_id == loses.id
    assert (await rig.service.get(loses.id)).status is TaskStatus.PENDING


# -- retry --------------------------------------------------------------------------------


async def test_retry_of_a_failed_task_queues_it_again_with_its_history() -> None:
    rig = Rig()
    task = await rig.in_status(TaskStatus.FAILED)
    await rig.visible()  # the submission's message, leased away
    await rig.clock.advance(5)

    retried = await rig.service.retry(task.id)

    assert retried.status is TaskStatus.PENDING and retried.finished_at is None
    assert (retried.attempts, retried.error, retried.retry_count) == (1, "smtp down", 1)
    assert retried.max_attempts == 1 + 3, "the attempts so far plus the default budget"
    assert retried.updated_at == rig.clock.now()
    assert await rig.service.get(task.id) == retried
    assert await rig.visible() == [], "sent ahead of the write, so it comes after it"
    await rig.clock.advance(RETRY_SEND_DELAY_SECONDS)
    assert await rig.visible() == [task.id]


async def test_retry_takes_the_number_of_further_attempts() -> None:
    rig = Rig(limits=SubmissionLimits(default_max_attempts=2, max_attempts_limit=6))
    task = await rig.in_status(TaskStatus.FAILED)

    assert (await rig.service.retry(task.id, extra_attempts=6)).max_attempts == 1 + 6


async def test_retry_uses_the_configured_default_budget() -> None:
    rig = Rig(limits=SubmissionLimits(default_max_attempts=2))
    task = await rig.in_status(TaskStatus.FAILED)

    assert (await rig.service.retry(task.id)).max_attempts == 1 + 2


async def test_a_retried_task_runs_now_whatever_its_old_run_at() -> None:
    rig = Rig()
    task = await rig.submit(delay_seconds=60)
    await rig.clock.advance(60)
    await rig.fail(task.id)
    await rig.visible()  # the submission's message, leased away

    retried = await rig.service.retry(task.id)

    assert retried.run_at is None
    await rig.clock.advance(RETRY_SEND_DELAY_SECONDS)
    assert await rig.visible() == [task.id]


@pytest.mark.parametrize("budget", [0, -1, 20])
async def test_retry_with_a_budget_out_of_range_is_refused_and_changes_nothing(
    budget: int,
) -> None:
    rig = Rig()
    task = await rig.in_status(TaskStatus.FAILED)
    await rig.visible()

    with pytest.raises(InvalidInput) as info:
        await rig.service.retry(task.id, extra_attempts=budget)

    assert info.value.field == "max_attempts"
    assert await rig.service.get(task.id) == task
    assert await rig.visible() == []


@pytest.mark.parametrize(
    "status",
    [TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.COMPLETED, TaskStatus.CANCELLED],
)
async def test_retry_of_a_task_that_has_not_failed_is_a_conflict(status: TaskStatus) -> None:
    rig = Rig()
    task = await rig.in_status(status)

    with pytest.raises(TaskStateConflict) as info:
        await rig.service.retry(task.id)

    assert info.value.status == status.value and "only FAILED" in str(info.value)
    assert await rig.service.get(task.id) == task


async def test_retry_of_an_unknown_task_is_not_found() -> None:
    with pytest.raises(TaskNotFound):
        await Rig().service.retry(UNKNOWN_ID)


async def test_retry_that_loses_a_race_leaves_the_task_to_its_writer_and_one_spare() -> None:
    """The message goes out before the write; when the write loses, the task stays as
    the other writer left it (FAILED) and its one message is skipped by the worker."""
    repository = RacingRepository()
    rig = Rig(repository=repository)
    task = await rig.in_status(TaskStatus.FAILED)
    await rig.visible()
    repository.race(edited)

    with pytest.raises(ConcurrencyConflict):
        await rig.service.retry(task.id)

    assert await rig.service.get(task.id) == edited(task)
    await rig.clock.advance(RETRY_SEND_DELAY_SECONDS)
    assert await rig.visible() == [task.id]


async def test_retry_while_the_queue_is_down_leaves_it_failed_to_retry_again() -> None:
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    task = await rig.submit(delay_seconds=3600)  # held: no send needed
    failed = await rig.fail(task.id)

    with pytest.raises(QueueSendFailed) as info:
        await rig.service.retry(task.id)

    assert info.value.task_id == task.id
    assert await rig.service.get(task.id) == failed, "a failed send changes nothing"
    rig.queue.down = False
    assert (await rig.service.retry(task.id)).status is TaskStatus.PENDING
    await rig.clock.advance(RETRY_SEND_DELAY_SECONDS)
    assert await rig.visible() == [task.id]


async def test_a_retry_whose_send_is_answered_late_sends_again_after_its_write() -> None:
    """The 1 s head start runs from when the queue took the message, not from when the
    send was answered: a late answer lets the message come before the write, find the
    task still FAILED and be skipped, so another is sent once the write has landed."""
    rig = Rig(queue=LateAnsweringQueue)
    assert isinstance(rig.queue, LateAnsweringQueue)
    task = await rig.in_status(TaskStatus.FAILED)
    await rig.visible()  # the submission's message, leased away
    rig.queue.answer_seconds = 2 * RETRY_SEND_DELAY_SECONDS

    retrying = asyncio.ensure_future(rig.service.retry(task.id))
    await asyncio.sleep(0)  # sent, the answer not in yet
    await rig.clock.advance(RETRY_SEND_DELAY_SECONDS)
    assert await rig.visible() == [task.id], "the first message is out before the write"
    assert (await rig.service.get(task.id)).status is TaskStatus.FAILED
    while not retrying.done():
        await rig.clock.advance(0.5)

    assert retrying.result().status is TaskStatus.PENDING
    assert await rig.visible() == [task.id], "a message that finds the task PENDING"


# -- the bulk redrive --------------------------------------------------------------------


async def failed(rig: Rig, count: int, task_type: str = "email") -> list[str]:
    """``count`` FAILED tasks, oldest first, a second apart."""
    ids = []
    for _ in range(count):
        ids.append((await rig.in_status(TaskStatus.FAILED, task_type)).id)
        await rig.clock.advance(1)
    return ids


async def test_redrive_retries_every_failed_task_newest_first() -> None:
    rig = Rig()
    ids = await failed(rig, 3)
    await rig.submit()  # PENDING: not retried

    retried = await rig.service.retry_failed(per_second=0)

    assert retried == ids[::-1]
    assert await rig.count(TaskStatus.FAILED) == 0
    for task_id in ids:
        task = await rig.service.get(task_id)
        assert task.status is TaskStatus.PENDING and task.error == "smtp down"


async def test_redrive_with_nothing_failed_retries_nothing() -> None:
    assert await Rig().service.retry_failed(per_second=0) == []


async def test_redrive_filters_by_type_and_stops_at_the_limit() -> None:
    rig = Rig()
    emails = await failed(rig, 3)
    exports = await failed(rig, 2, "data-export")

    by_type = await rig.service.retry_failed(task_type="data-export", per_second=0)
    limited = await rig.service.retry_failed(limit=2, per_second=0)

    assert sorted(by_type) == sorted(exports)
    assert len(limited) == 2 and set(limited) <= set(emails)
    assert await rig.count(TaskStatus.FAILED) == 1


@pytest.mark.parametrize(("count", "limit"), [(205, 1000), (205, 150)])
async def test_redrive_pages_through_every_failed_task(count: int, limit: int) -> None:
    rig = Rig()
    ids = await failed(rig, count)

    retried = await rig.service.retry_failed(limit=limit, per_second=0)

    assert len(retried) == len(set(retried)) == min(count, limit)
    assert set(retried) <= set(ids)


async def test_redrive_skips_a_task_that_moved_on_and_retries_the_rest() -> None:
    repository = RacingRepository()
    rig = Rig(repository=repository)
    ids = await failed(rig, 3)
    repository.race(edited)

    retried = await rig.service.retry_failed(per_second=0)

    assert retried == [ids[1], ids[0]], "the newest lost its race and was skipped"
    assert (await rig.service.get(ids[2])).status is TaskStatus.FAILED


async def test_redrive_keeps_to_its_rate_on_the_clock() -> None:
    rig = Rig()
    await failed(rig, 3)

    redrive = asyncio.ensure_future(rig.service.retry_failed(per_second=2))
    pending = []
    for _ in range(3):
        await asyncio.sleep(0)
        pending.append(await rig.count(TaskStatus.PENDING))
        await rig.clock.advance(0.5)

    assert pending == [1, 2, 3], "one retry every half second"
    assert len(await asyncio.wait_for(redrive, 1)) == 3


async def test_redrive_stops_when_the_queue_fails_and_keeps_what_it_did() -> None:
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    rig.queue.down = False
    ids = await failed(rig, 3)
    await rig.visible()  # the submissions' messages, leased away

    redrive = asyncio.ensure_future(rig.service.retry_failed(per_second=1))
    await asyncio.sleep(0)  # the newest is retried; the redrive waits its turn
    rig.queue.down = True
    await rig.clock.advance(1)

    with pytest.raises(QueueSendFailed) as info:
        await asyncio.wait_for(redrive, 1)
    assert info.value.task_id == ids[1]
    assert (await rig.service.get(ids[1])).status is TaskStatus.FAILED
    assert [await rig.count(s) for s in (TaskStatus.PENDING, TaskStatus.FAILED)] == [1, 2]
    assert await rig.visible() == [ids[2]], "the retry done before the outage stands"
