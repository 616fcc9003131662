"""Claim at finish (domain/claim_at_finish.py) on the memory adapters with a hand-moved
clock: a first delivery's short attempt is stored in one write over its PENDING task;
a longer one is claimed at the delay and runs as a claimed attempt does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import taskq
from adapters.memory import InMemoryTaskRepository
from bootstrap.container import claim_delay
from bootstrap.settings import Settings
from domain.models import Task, TaskStatus
from domain.processing import Outcome, ProcessorSettings
from domain.task_types import TaskType
from tests.support.processing_rig import LEASE, ProcessingRig, process_in_time

DELAY = 1.0


class CountingRepository(InMemoryTaskRepository):
    """The memory store, keeping each transition as (expected status, new status)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[TaskStatus, TaskStatus]] = []

    async def transition(self, new: Task, *, expected: Task) -> None:
        await super().transition(new, expected=expected)
        self.writes.append((expected.status, new.status))


def lazy_rig() -> tuple[ProcessingRig, CountingRepository]:
    rig = ProcessingRig()
    repo = CountingRepository()
    rig.repo = rig.service.repository = repo
    rig.settings = ProcessorSettings(visibility_timeout=LEASE, claim_delay_seconds=DELAY)
    rig.processor = rig.new_processor()
    return rig, repo


async def started(running: asyncio.Future[Any], ready: asyncio.Event) -> None:
    """Wait until the handler runs (the delivery was read and not yet finished)."""
    await asyncio.wait_for(ready.wait(), 2)
    assert not running.done()


async def run_gated(
    rig: ProcessingRig, result: str
) -> tuple[Task, asyncio.Future[Any], asyncio.Event]:
    """A task whose handler returns ``result`` once the event returned is set, its
    delivery being processed (the handler already running)."""
    ready, release = asyncio.Event(), asyncio.Event()

    async def gated(payload: Any) -> str:
        ready.set()
        await release.wait()
        return result

    rig.handler("gated", gated)
    task = await rig.submit("gated")
    running = asyncio.ensure_future(rig.processor.process(await rig.receive()))
    await started(running, ready)
    return task, running, release


async def test_a_quick_task_goes_from_pending_to_completed_in_one_write() -> None:
    rig, repo = lazy_rig()
    rig.handler("double", lambda payload: payload * 2)
    task = await rig.submit("double", 21)

    assert await rig.processor.process(await rig.receive()) is Outcome.COMPLETED
    done = await repo.get(task.id)
    assert repo.writes == [(TaskStatus.PENDING, TaskStatus.COMPLETED)]
    assert (done.status, done.result, done.attempts, done.retry_count) == (
        TaskStatus.COMPLETED,
        42,
        1,
        0,
    )
    assert done.started_at is not None and done.finished_at is not None
    assert done.lease_token is None and done.lease_expires_at is None
    counts = await repo.count_by_status()
    assert (counts[TaskStatus.PENDING], counts[TaskStatus.PROCESSING]) == (0, 0)
    assert counts[TaskStatus.COMPLETED] == 1
    listed = await repo.list_by_status(TaskStatus.COMPLETED, limit=10)
    assert [t.id for t in listed.items] == [task.id]
    assert (await rig.queue.depth()).total == 0


async def test_a_slow_task_is_claimed_at_the_delay_and_finishes_as_before() -> None:
    rig, repo = lazy_rig()
    task, running, release = await run_gated(rig, "done")
    assert (await repo.get(task.id)).status is TaskStatus.PENDING, "not claimed yet"
    await rig.clock.advance(DELAY + 0.05)
    claimed = await repo.get(task.id)
    assert (claimed.status, claimed.attempts) == (TaskStatus.PROCESSING, 1)
    assert claimed.lease_token is not None
    release.set()
    assert await running is Outcome.COMPLETED
    assert repo.writes == [
        (TaskStatus.PENDING, TaskStatus.PROCESSING),
        (TaskStatus.PROCESSING, TaskStatus.COMPLETED),
    ]
    assert (await repo.get(task.id)).result == "done"


async def test_a_progress_report_writes_the_claim_first() -> None:
    rig, repo = lazy_rig()
    release = asyncio.Event()

    async def reporting(payload: Any, context: taskq.TaskContext) -> str:
        await context.progress(50, "half")
        await release.wait()
        return "done"

    handler: Any = reporting  # takes a context: TaskType's type names the plain form
    rig.task_types.add(TaskType("reporting", handler, 60, takes_context=True))
    task = await rig.submit("reporting")
    running = asyncio.ensure_future(rig.processor.process(await rig.receive()))
    for _ in range(100):
        if len(repo.writes) == 2:
            break
        await asyncio.sleep(0.01)
    stored = await repo.get(task.id)
    assert stored.status is TaskStatus.PROCESSING
    assert stored.progress is not None and stored.progress.percent == 50
    release.set()
    assert await running is Outcome.COMPLETED
    assert repo.writes[0] == (TaskStatus.PENDING, TaskStatus.PROCESSING)


async def test_a_cancel_while_unclaimed_keeps_the_task_cancelled_and_drops_the_result() -> None:
    rig, repo = lazy_rig()
    task, running, release = await run_gated(rig, "too late")
    assert (await rig.service.cancel(task.id)).status is TaskStatus.CANCELLED
    release.set()
    assert await running is Outcome.SKIPPED_FINISHED
    final = await repo.get(task.id)
    assert (final.status, final.result, final.attempts) == (TaskStatus.CANCELLED, None, 0)
    assert (await rig.queue.depth()).total == 0, "the message is acked"


async def test_a_cancel_before_the_delayed_claim_loses_the_attempt() -> None:
    rig, repo = lazy_rig()
    ready, stopped = asyncio.Event(), asyncio.Event()

    async def long(payload: Any) -> None:
        ready.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    rig.handler("long", long)
    task = await rig.submit("long")
    running = asyncio.ensure_future(rig.processor.process(await rig.receive()))
    await started(running, ready)
    await rig.service.cancel(task.id)
    await rig.clock.advance(DELAY + 0.05)
    assert await asyncio.wait_for(running, 2) is Outcome.LOST_LEASE
    assert stopped.is_set(), "the handler is told to stop"
    final = await repo.get(task.id)
    assert (final.status, final.attempts) == (TaskStatus.CANCELLED, 0)
    assert (TaskStatus.PENDING, TaskStatus.PROCESSING) not in repo.writes


async def test_a_redelivery_of_a_task_never_claimed_claims_it_isolated_first() -> None:
    rig, repo = lazy_rig()
    seen: list[tuple[TaskStatus, bool]] = []

    async def look(payload: Any) -> None:
        stored = await repo.get(task_id)
        seen.append((stored.status, stored.isolated))

    rig.handler("look", look)
    task = await rig.submit("look")
    task_id = task.id
    await rig.receive()  # a worker that died running it unclaimed (it wrote nothing)
    await rig.clock.advance(LEASE + 1)
    again = await rig.receive()
    assert again.receive_count == 2
    assert await rig.processor.process(again) is Outcome.COMPLETED
    assert seen == [(TaskStatus.PROCESSING, True)], "claimed first, as after a lost attempt"
    assert repo.writes[0] == (TaskStatus.PENDING, TaskStatus.PROCESSING)
    assert (await repo.get(task_id)).attempts == 1


async def test_a_failed_first_attempt_is_stored_for_a_retry_in_one_write() -> None:
    rig, repo = lazy_rig()
    calls = 0

    async def flaky(payload: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return "ok"

    rig.handler("flaky", flaky)
    task = await rig.submit("flaky")
    assert await rig.processor.process(await rig.receive()) is Outcome.RETRY_SCHEDULED
    assert repo.writes == [(TaskStatus.PENDING, TaskStatus.PENDING)]
    retrying = await repo.get(task.id)
    assert (retrying.attempts, retrying.retry_count, retrying.error) == (1, 1, "RuntimeError: boom")
    assert retrying.lease_token is None
    await rig.clock.advance(1.01)
    assert await rig.processor.process(await rig.receive()) is Outcome.COMPLETED
    done = await repo.get(task.id)
    assert (done.status, done.attempts, done.retry_count) == (TaskStatus.COMPLETED, 2, 1)
    assert not done.isolated, "its first attempt was stored: the redelivery is no loss"


async def test_a_duplicate_first_delivery_runs_but_only_one_result_is_kept() -> None:
    rig, repo = lazy_rig()
    gate = asyncio.Event()
    runs: list[int] = []

    async def job(payload: Any) -> int:
        runs.append(len(runs))
        number = runs[-1]
        await gate.wait()
        return number

    rig.handler("job", job)
    task = await rig.submit("job")
    await rig.queue.send(task.id)  # a duplicate message, as at-least-once allows
    first = asyncio.ensure_future(rig.processor.process(await rig.receive()))
    second = asyncio.ensure_future(rig.processor.process(await rig.receive()))
    while len(runs) < 2:
        await asyncio.sleep(0.01)
    gate.set()
    outcomes = sorted([await first, await second])
    assert outcomes == sorted([Outcome.COMPLETED, Outcome.SKIPPED_FINISHED])
    assert (await repo.get(task.id)).status is TaskStatus.COMPLETED
    assert repo.writes == [(TaskStatus.PENDING, TaskStatus.COMPLETED)]
    assert (await rig.queue.depth()).total == 0


async def test_shutdown_while_unclaimed_gives_the_message_back_and_writes_nothing() -> None:
    rig, repo = lazy_rig()
    ready = asyncio.Event()

    async def forever(payload: Any) -> None:
        ready.set()
        await asyncio.Event().wait()

    rig.handler("forever", forever)
    task = await rig.submit("forever")
    running = asyncio.ensure_future(rig.processor.process(await rig.receive()))
    await started(running, ready)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert repo.writes == []
    stored = await repo.get(task.id)
    assert (stored.status, stored.attempts) == (TaskStatus.PENDING, 0)
    again = await rig.receive()
    assert (again.task_id, again.receive_count) == (task.id, 1), "sent again, a first receive"
    assert await rig.nothing_visible()


async def test_a_message_ahead_of_its_row_still_runs_in_one_write() -> None:
    rig, repo = lazy_rig()
    rig.handler("job", lambda payload: "ran")
    task = Task.create("job", None, rig.clock.now())
    await rig.queue.send(task.id)  # the send precedes the store's write
    running = asyncio.ensure_future(rig.processor.process(await rig.receive()))
    await asyncio.sleep(0.01)  # it found no row, and looks again in a moment
    await repo.add(task)
    while not running.done():
        await rig.clock.advance(0.05)
    assert running.result() is Outcome.COMPLETED
    assert repo.writes == [(TaskStatus.PENDING, TaskStatus.COMPLETED)]


def test_the_delay_defaults_to_a_second_on_aws_only_and_the_variable_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert [claim_delay(Settings(backend=b)) for b in ("memory", "sqlite", "aws")] == [0, 0, 1]
    monkeypatch.setenv("TASKQ_CLAIM_DELAY_SECONDS", "0")
    assert claim_delay(Settings(backend="aws")) == 0
    monkeypatch.setenv("TASKQ_CLAIM_DELAY_SECONDS", "2.5")
    assert claim_delay(Settings(backend="sqlite")) == 2.5
    settings = ProcessorSettings(visibility_timeout=3, claim_delay_seconds=2.5)
    assert settings.claim_after == 1.0, "written by the first heartbeat at the latest"


async def test_a_message_given_back_unstarted_is_not_taken_for_a_lost_attempt() -> None:
    # The worker gives back what a receive brought after its stop (``Worker._give_back``
    # releases it at once): nothing ran, and the task must not run isolated for that.
    rig, repo = lazy_rig()
    rig.handler("plain", lambda payload: "ok")
    task = await rig.submit("plain")
    await rig.queue.release(await rig.receive(), delay_seconds=0)
    again = await rig.receive()
    assert again.receive_count == 2
    assert await rig.processor.process(again) is Outcome.COMPLETED
    done = await repo.get(task.id)
    assert (done.status, done.isolated) == (TaskStatus.COMPLETED, False)
    assert repo.writes == [(TaskStatus.PENDING, TaskStatus.COMPLETED)], "run unclaimed too"


async def test_a_message_that_came_before_its_row_is_not_taken_for_a_lost_attempt() -> None:
    # Released on its first receive for want of the row (``_orphan``), back a second
    # later: no attempt can have run, and none died.
    rig, repo = lazy_rig()
    rig.handler("plain", lambda payload: "ok")
    task = Task.create(task_type="plain", payload=None, now=rig.clock.now())
    await rig.queue.send(task.id)
    assert await process_in_time(rig, await rig.receive()) is Outcome.AWAITING_TASK
    await repo.add(task)
    again = await rig.receive_when_visible()
    assert again.receive_count == 2
    assert await rig.processor.process(again) is Outcome.COMPLETED
    assert not (await repo.get(task.id)).isolated
    assert repo.writes == [(TaskStatus.PENDING, TaskStatus.COMPLETED)], "in one write still"


async def test_a_claimed_attempt_given_back_at_shutdown_is_not_taken_for_a_lost_one() -> None:
    # Claimed at the delay, then cut short by a shutdown (``_release``): PENDING again
    # with its attempt given back, its message released; its claim was stored.
    rig, repo = lazy_rig()
    task, running, release = await run_gated(rig, "done")
    await rig.clock.advance(DELAY + 0.05)
    assert (await repo.get(task.id)).status is TaskStatus.PROCESSING
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    given_back = await repo.get(task.id)
    assert (given_back.status, given_back.attempts) == (TaskStatus.PENDING, 0)
    release.set()
    again = await rig.receive()
    assert again.receive_count == 2
    assert await rig.processor.process(again) is Outcome.COMPLETED
    assert not (await repo.get(task.id)).isolated
