"""The Reconciler on the memory adapters: stale tasks re-sent, far tasks scheduled,
abandoned attempts settled. Every branch of a run, on a hand-moved clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from domain.models import Task, TaskStatus
from domain.reconcile import SCHEDULE_HORIZON_SECONDS
from tests.support.service_fakes import RacingRepository, UnreachableQueue
from tests.support.service_rig import LEASE_SECONDS, STALE_SECONDS, Rig

HOUR = 3600.0


def touched(task: Task) -> Task:
    return task.touch(task.updated_at + timedelta(seconds=1))


async def drain(rig: Rig) -> None:
    """Lose every visible message, as when the queue dead-letters them."""
    while deliveries := await rig.queue.receive(
        max_messages=10, visibility_timeout=30, wait_seconds=0
    ):
        await rig.queue.ack_batch(deliveries)


async def unsent(rig: Rig) -> Task:
    """A PENDING task whose message is gone."""
    task = await rig.submit()
    await drain(rig)
    return task


# -- stale PENDING tasks ------------------------------------------------------------------


async def test_a_stale_pending_task_is_resent_once_per_stale_period() -> None:
    rig = Rig()
    task = await unsent(rig)
    reconciler = rig.reconciler()

    await rig.clock.advance(STALE_SECONDS - 1)
    assert (await reconciler.run_once()).resent == 0, "not stale yet"
    await rig.clock.advance(1)
    report = await reconciler.run_once()
    assert (report.examined, report.resent) == (1, 1)
    assert (await reconciler.run_once()).resent == 0, "touched: fresh again"
    assert (await rig.service.get(task.id)).version == task.version + 1
    assert await rig.visible() == [task.id]


async def test_a_task_that_changed_under_the_reconciler_is_left_to_its_writer() -> None:
    repository = RacingRepository()
    rig = Rig(repository=repository)
    await unsent(rig)
    await rig.clock.advance(STALE_SECONDS)
    repository.race(touched)

    assert (await rig.reconciler().run_once()).resent == 0
    assert await rig.visible() == []


async def test_a_resend_that_fails_is_tried_again_a_stale_period_later() -> None:
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    rig.queue.down = False
    task = await unsent(rig)
    await rig.clock.advance(STALE_SECONDS)
    rig.queue.down = True

    assert (await rig.reconciler().run_once()).resent == 0
    rig.queue.down = False
    assert (await rig.reconciler().run_once()).resent == 0
    await rig.clock.advance(STALE_SECONDS)
    assert (await rig.reconciler().run_once()).resent == 1
    assert await rig.visible() == [task.id]


async def test_every_page_of_pending_tasks_is_examined() -> None:
    rig = Rig()
    for _ in range(205):
        await rig.submit(delay_seconds=HOUR)  # held: stored, no message
    await rig.clock.advance(HOUR)

    report = await rig.reconciler().run_once()

    assert (report.examined, report.scheduled) == (205, 205)


async def test_tasks_that_are_not_pending_are_left_alone() -> None:
    rig = Rig()
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        await rig.in_status(status)
    await rig.clock.advance(10 * STALE_SECONDS)

    report = await rig.reconciler().run_once()

    assert (report.examined, report.resent, report.scheduled, report.recovered) == (0, 0, 0, 0)


# -- delayed and held tasks ---------------------------------------------------------------


async def test_a_task_delayed_by_the_queue_is_not_resent_before_it_is_due() -> None:
    rig = Rig()
    task = await rig.submit(delay_seconds=600)
    reconciler = rig.reconciler()

    await rig.clock.advance(600 + STALE_SECONDS - 1)
    assert (await reconciler.run_once()).resent == 0
    await rig.clock.advance(1)
    assert (await reconciler.run_once()).resent == 1, "due a stale period ago, still PENDING"
    assert set(await rig.visible()) == {task.id}


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


async def test_a_held_task_whose_scheduling_send_failed_is_sent_after_it_is_due() -> None:
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    rig.queue.down = False
    task = await rig.submit(delay_seconds=2 * HOUR)
    await rig.clock.advance(2 * HOUR - 60)
    rig.queue.down = True
    assert (await rig.reconciler().run_once()).scheduled == 0
    rig.queue.down = False

    await rig.clock.advance(60 + STALE_SECONDS - 1)
    assert (await rig.reconciler().run_once()).resent == 0
    await rig.clock.advance(1)
    assert (await rig.reconciler().run_once()).resent == 1
    assert await rig.visible() == [task.id]


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


async def test_an_abandoned_task_retried_while_the_queue_is_down_is_resent_later() -> None:
    rig = Rig(queue=UnreachableQueue)
    assert isinstance(rig.queue, UnreachableQueue)
    rig.queue.down = False
    task = await abandoned(rig)
    await rig.clock.advance(LEASE_SECONDS + STALE_SECONDS)
    rig.queue.down = True

    assert (await rig.reconciler().run_once()).recovered == 1
    rig.queue.down = False
    await rig.clock.advance(STALE_SECONDS)
    assert (await rig.reconciler().run_once()).resent == 1
    assert await rig.visible() == [task.id]


async def test_an_abandoned_task_that_moved_on_is_not_settled() -> None:
    repository = RacingRepository()
    rig = Rig(repository=repository)
    task = await abandoned(rig)
    await rig.clock.advance(LEASE_SECONDS + STALE_SECONDS)
    repository.race(lambda t: t.complete("late but done", t.updated_at))

    assert (await rig.reconciler().run_once()).recovered == 0
    assert (await rig.service.get(task.id)).status is TaskStatus.COMPLETED
