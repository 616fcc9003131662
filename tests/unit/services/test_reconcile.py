"""The Reconciler on the memory adapters: held tasks enqueued when due, abandoned
attempts settled, and PENDING tasks never re-sent (each was stored after its message was
sent). Every branch of a run, on a hand-moved clock."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from domain.models import Task, TaskStatus
from domain.reconcile import SCHEDULE_HORIZON_SECONDS, ReconcileReport
from tests.support.service_fakes import RacingRepository, Rival, UnreachableQueue
from tests.support.service_rig import LEASE_SECONDS, STALE_SECONDS, Rig

HOUR = 3600.0
DAY = 24 * HOUR


async def drain(rig: Rig) -> None:
    """Lose every visible message, as when the queue dead-letters them."""
    while deliveries := await rig.queue.receive(
        max_messages=10, visibility_timeout=30, wait_seconds=0
    ):
        await rig.queue.ack_batch(deliveries)


# -- PENDING tasks: never re-sent ---------------------------------------------------------


@pytest.mark.parametrize("age", [0, STALE_SECONDS, 30 * DAY])
@pytest.mark.parametrize("lost", [False, True], ids=["queued", "messages-lost"])
async def test_a_backlog_of_any_age_gets_no_message_from_the_reconciler(
    age: float, lost: bool
) -> None:
    """Not even when its messages are gone: a PENDING task that is not held was stored
    after its message was sent, and telling a lost message from a slow one would mean
    guessing from age, which re-sends whole backlogs."""
    rig = Rig()
    backlog = [await rig.submit() for _ in range(3)]
    backlog.append(await rig.submit(delay_seconds=600))  # delayed by the queue
    await rig.clock.advance(600)  # every one due
    if lost:
        await drain(rig)
    before = (await rig.queue.depth()).total
    await rig.clock.advance(age)
    reconciler = rig.reconciler()

    reports = [await reconciler.run_once() for _ in range(3)]

    assert reports == [ReconcileReport(scheduled=0, recovered=0)] * 3
    assert (await rig.queue.depth()).total == before
    assert sorted(await rig.visible()) == ([] if lost else sorted(t.id for t in backlog))


async def test_tasks_that_are_not_pending_are_left_alone() -> None:
    rig = Rig()
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        await rig.in_status(status)
    await drain(rig)
    await rig.clock.advance(10 * STALE_SECONDS)

    report = await rig.reconciler().run_once()

    assert report == ReconcileReport(scheduled=0, recovered=0)
    assert (await rig.queue.depth()).total == 0


# -- delayed and held tasks ---------------------------------------------------------------


async def test_held_tasks_are_enqueued_in_due_order_across_pages() -> None:
    """The index by due time gives the earliest first; a pass that may send only so
    many sends those, page after page, and leaves the rest to the next pass."""
    rig = Rig()
    offsets = list(range(10))
    random.Random(7).shuffle(offsets)
    by_due = {}
    for offset in offsets:  # submitted out of due order
        task = await rig.submit(delay_seconds=2 * HOUR + offset)
        by_due[offset] = task.id
    due_order = [by_due[offset] for offset in range(10)]
    await rig.clock.advance(2 * HOUR)  # every one due now
    reconciler = rig.reconciler(held_page_size=3, max_scheduled=7)

    assert (await reconciler.run_once()).scheduled == 7
    still_held = [t for t in due_order if (await rig.service.get(t)).held]
    assert still_held == due_order[7:]
    assert (await reconciler.run_once()).scheduled == 3
    assert (await reconciler.run_once()).scheduled == 0, "each is sent once"
    await rig.clock.advance(10)
    assert sorted(await rig.visible()) == sorted(due_order)


async def test_every_page_of_due_held_tasks_is_sent_in_one_pass() -> None:
    rig = Rig()
    for _ in range(205):
        await rig.submit(delay_seconds=HOUR)  # held: stored, no message
    await rig.clock.advance(HOUR)

    report = await rig.reconciler().run_once()

    assert report == ReconcileReport(scheduled=205, recovered=0)
    assert len(await rig.visible()) == 205


def other_reconciler(task: Task) -> Task:
    return task.unhold(task.updated_at)


def canceller(task: Task) -> Task:
    return task.cancel(task.updated_at)


@pytest.mark.parametrize(
    ("rival", "status"),
    [(other_reconciler, TaskStatus.PENDING), (canceller, TaskStatus.CANCELLED)],
)
async def test_a_held_task_that_changed_under_the_reconciler_is_left_to_its_writer(
    rival: Rival, status: TaskStatus
) -> None:
    """Its message went out before the hold was cleared: that message is a spare (a
    second one, or one for a cancelled task) that the worker skips, and the task is
    not held any more, so no pass sends it again."""
    repository = RacingRepository()
    rig = Rig(repository=repository)
    task = await rig.submit(delay_seconds=2 * HOUR)
    await rig.clock.advance(2 * HOUR)
    repository.race(rival)
    reconciler = rig.reconciler()

    assert (await reconciler.run_once()).scheduled == 0
    stored = await rig.service.get(task.id)
    assert (stored.status, stored.held) == (status, False)
    assert (await reconciler.run_once()).scheduled == 0
    assert await rig.visible() == [task.id]


async def test_a_held_task_is_scheduled_when_it_comes_within_the_horizon() -> None:
    rig = Rig()
    task = await rig.submit(delay_seconds=3 * HOUR)
    assert task.run_at is not None
    reconciler = rig.reconciler()
    until_window = 3 * HOUR - SCHEDULE_HORIZON_SECONDS

    await rig.clock.advance(until_window - 1)
    assert (await reconciler.run_once()).scheduled == 0, "still too far off"
    await rig.clock.advance(61)  # 59 s into the window
    assert (await reconciler.run_once()).scheduled == 1
    assert (await reconciler.run_once()).scheduled == 0, "scheduled once"
    assert (await rig.queue.depth()).delayed == 1
    await rig.clock.advance(SCHEDULE_HORIZON_SECONDS - 60 - 1)
    assert await rig.visible() == [], "the message waits for run_at"
    await rig.clock.advance(1)
    assert rig.clock.now() == task.run_at
    assert await rig.visible() == [task.id]


async def test_a_held_task_found_after_its_time_is_sent_at_once() -> None:
    rig = Rig()
    task = await rig.submit(delay_seconds=3 * HOUR)

    await rig.clock.advance(4 * HOUR)

    assert (await rig.reconciler().run_once()).scheduled == 1
    assert await rig.visible() == [task.id]


async def test_a_held_task_whose_send_failed_is_tried_again_on_the_next_pass() -> None:
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    task = await rig.submit(delay_seconds=2 * HOUR)  # held: the outage does not matter
    await rig.clock.advance(2 * HOUR - 60)
    reconciler = rig.reconciler()

    assert (await reconciler.run_once()).scheduled == 0
    assert (await rig.service.get(task.id)).held, "still held, so still in the index"
    rig.queue.down = False
    assert (await reconciler.run_once()).scheduled == 1
    assert not (await rig.service.get(task.id)).held
    await rig.clock.advance(59)
    assert await rig.visible() == []
    await rig.clock.advance(1)
    assert await rig.visible() == [task.id]


async def test_held_tasks_the_queue_refused_stay_held_and_the_rest_are_enqueued() -> None:
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    rig.queue.down, rig.queue.refuse_last = False, 2
    tasks = [await rig.submit(delay_seconds=2 * HOUR + i) for i in range(5)]
    await rig.clock.advance(2 * HOUR + 5)
    reconciler = rig.reconciler()

    assert (await reconciler.run_once()).scheduled == 3
    held = [t.id for t in tasks if (await rig.service.get(t.id)).held]
    assert held == [t.id for t in tasks[3:]], "the last two of the batch were refused"
    rig.queue.refuse_last = 0
    assert (await reconciler.run_once()).scheduled == 2
    assert sorted(await rig.visible()) == sorted(t.id for t in tasks)


async def test_a_cancelled_held_task_is_never_scheduled() -> None:
    rig = Rig()
    task = await rig.submit(delay_seconds=3 * HOUR)
    await rig.service.cancel(task.id)

    await rig.clock.advance(3 * HOUR)

    assert (await rig.reconciler().run_once()).scheduled == 0
    assert (await rig.queue.depth()).total == 0


# -- abandoned attempts ----------------------------------------------------------------------


async def abandoned(
    rig: Rig, *, max_attempts: int = 3, cancel: bool = False, isolated: bool = False
) -> Task:
    """A task whose worker died holding it, its message gone; ``isolated`` when that
    attempt ran isolated (a previous attempt was already lost)."""
    task = await rig.submit(max_attempts=max_attempts)
    await drain(rig)
    await rig.start(task.id)
    if isolated:
        running = await rig.service.get(task.id)
        marked = replace(running, isolated=True, version=running.version + 1)
        await rig.repository.transition(marked, expected=running)
    if cancel:
        await rig.service.cancel(task.id)
    return await rig.service.get(task.id)


async def test_a_running_task_is_left_alone_until_its_lease_ended_a_stale_period_ago() -> None:
    rig = Rig()
    await abandoned(rig)
    reconciler = rig.reconciler()

    await rig.clock.advance(LEASE_SECONDS + STALE_SECONDS - 1)
    assert (await reconciler.run_once()).recovered == 0
    await rig.clock.advance(1)
    assert (await reconciler.run_once()).recovered == 1


@pytest.mark.parametrize(
    ("max_attempts", "cancel", "isolated", "status", "attempts"),
    [
        # Not isolated: the crash may have been a neighbour's; the attempt is given
        # back and the task runs isolated next, even with no attempt left.
        (3, False, False, TaskStatus.PENDING, 0),
        (1, False, False, TaskStatus.PENDING, 0),
        # Isolated: the lost attempt was the task's own and counts.
        (3, False, True, TaskStatus.PENDING, 1),
        (1, False, True, TaskStatus.FAILED, 1),
        (1, True, False, TaskStatus.CANCELLED, 1),  # a cancel asked before the worker died
    ],
)
async def test_an_abandoned_attempt_is_settled_as_a_takeover_would(
    max_attempts: int, cancel: bool, isolated: bool, status: TaskStatus, attempts: int
) -> None:
    rig = Rig()
    task = await abandoned(rig, max_attempts=max_attempts, cancel=cancel, isolated=isolated)
    await rig.clock.advance(LEASE_SECONDS + STALE_SECONDS)

    assert (await rig.reconciler().run_once()).recovered == 1

    settled = await rig.service.get(task.id)
    assert settled.status is status
    assert settled.lease_token is None and settled.attempts == attempts
    assert settled.isolated is (status is not TaskStatus.CANCELLED)
    assert await rig.visible() == ([task.id] if status is TaskStatus.PENDING else [])
    if status is not TaskStatus.CANCELLED:
        assert "attempt 1" in (settled.error or "") and "lost" in (settled.error or "")


async def test_an_abandoned_task_whose_send_fails_is_left_processing_for_the_next_pass() -> None:
    """Its fresh message must go out before it is made PENDING again (a PENDING task is
    never re-sent): when the send fails the task is left untouched."""
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    rig.queue.down = False
    task = await abandoned(rig)
    await rig.clock.advance(LEASE_SECONDS + STALE_SECONDS)
    rig.queue.down = True
    reconciler = rig.reconciler()

    assert (await reconciler.run_once()).recovered == 0
    assert await rig.service.get(task.id) == task
    rig.queue.down = False
    assert (await reconciler.run_once()).recovered == 1
    assert (await rig.service.get(task.id)).status is TaskStatus.PENDING
    assert await rig.visible() == [task.id]


async def test_an_abandoned_task_that_moved_on_is_not_settled() -> None:
    repository = RacingRepository()
    rig = Rig(repository=repository)
    task = await abandoned(rig)
    await rig.clock.advance(LEASE_SECONDS + STALE_SECONDS)
    repository.race(lambda t: t.complete("late but done", t.updated_at))

    assert (await rig.reconciler().run_once()).recovered == 0
    assert (await rig.service.get(task.id)).status is TaskStatus.COMPLETED
