"""Send first, then store; held tasks found by due time (issue 10, items 1 and 2).

On the in-memory adapters with a hand-moved clock. The repository and queue fakes here
are subclasses of the real in-memory adapters with one path broken or gated.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository
from domain.errors import InfrastructureError, QueueSendFailed
from domain.models import Task, TaskStatus
from domain.priorities import Priority
from domain.processing import Outcome
from domain.reconcile import Reconciler
from domain.services import BatchEntry, SubmissionLimits, SubmitRequest, TaskService
from tests.support.processing_rig import ProcessingRig as Env
from tests.support.processing_rig import process_in_time


def reconciler(env: Env, **options: Any) -> Reconciler:
    return Reconciler(env.repo, env.queue, env.clock, stale_after_seconds=60, **options)


async def messages(env: Env) -> int:
    return (await env.queue.depth()).total


# -- item 1: held tasks behind any number of PENDING tasks ------------------------------


async def test_a_held_task_behind_more_pending_tasks_than_a_pass_examines_is_enqueued() -> None:
    env = Env()
    env.handler("job", lambda payload: "ran")
    held = await env.submit("job", delay_seconds=960)  # beyond the queue's 900 s
    await env.clock.advance(1)  # so the backlog is newer
    # Newer PENDING tasks, more than a pass used to look at (max_examined, rounded up
    # to its page of 100: the old reconciler scanned the newest PENDING tasks only).
    backlog = 105
    for _ in range(backlog):
        await env.submit("job", delay_seconds=600)
    assert await messages(env) == backlog

    await env.clock.advance(120)  # the held task is now due within the horizon
    report = await reconciler(env, max_examined=5).run_once()

    assert report.scheduled == 1
    assert await messages(env) == backlog + 1
    stored = await env.repo.get(held.id)
    assert stored.status is TaskStatus.PENDING and not stored.held
    await env.clock.advance(839)
    outcomes = [await env.processor.process(await env.receive()) for _ in range(backlog + 1)]
    assert outcomes == [Outcome.COMPLETED] * (backlog + 1)
    assert (await env.repo.get(held.id)).status is TaskStatus.COMPLETED


async def test_held_tasks_are_sent_in_pages_until_none_is_due() -> None:
    env = Env()
    env.handler("job", lambda payload: "ran")
    for _ in range(7):
        await env.submit("job", delay_seconds=3600)
    await env.clock.advance(3600 - 900)

    assert (await reconciler(env, held_page_size=3).run_once()).scheduled == 7
    assert (await reconciler(env, held_page_size=3).run_once()).scheduled == 0
    assert await messages(env) == 7


async def test_the_horizon_is_the_services_queue_delay_limit() -> None:
    env = Env()
    env.service.limits = SubmissionLimits(max_queue_delay_seconds=5)
    env.handler("job", lambda payload: "ran")
    held = await env.submit("job", delay_seconds=10)
    assert held.held and await messages(env) == 0

    assert (await reconciler(env, horizon_seconds=5).run_once()).scheduled == 0
    await env.clock.advance(5)
    assert (await reconciler(env, horizon_seconds=5).run_once()).scheduled == 1
    await env.clock.advance(5)
    assert await env.processor.process(await env.receive()) is Outcome.COMPLETED


def test_a_queue_delay_limit_beyond_the_queues_is_refused() -> None:
    with pytest.raises(ValueError, match="max_queue_delay_seconds"):
        SubmissionLimits(max_queue_delay_seconds=901)


class DownQueue(InMemoryTaskQueue):
    """The in-memory queue with every send refused while ``down``."""

    down = True

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        if self.down:
            raise InfrastructureError("queue", "connection refused")
        await super().send(task_id, delay_seconds=delay_seconds, priority=priority)

    async def send_batch(self, items: Any, *, priority: Priority = Priority.DEFAULT) -> None:
        if self.down:
            raise InfrastructureError("queue", "connection refused")
        await super().send_batch(items, priority=priority)


def rewire(
    env: Env, *, queue: InMemoryTaskQueue | None = None, repo: InMemoryTaskRepository | None = None
) -> Env:
    """``env`` with its queue or repository replaced everywhere it is used."""
    if queue is not None:
        env.queue = env.service.queue = queue
    if repo is not None:
        env.repo = env.service.repository = repo
    env.processor = env.new_processor()
    return env


async def test_a_held_task_whose_send_fails_stays_held_for_the_next_pass() -> None:
    env = Env()
    queue = DownQueue(env.clock, max_receive_count=10)
    env = rewire(env, queue=queue)
    queue.down = False
    env.handler("job", lambda payload: "ran")
    held = await env.submit("job", delay_seconds=3600)
    await env.clock.advance(2700)

    queue.down = True
    assert (await reconciler(env).run_once()).scheduled == 0
    assert (await env.repo.get(held.id)).held
    queue.down = False
    assert (await reconciler(env).run_once()).scheduled == 1
    assert not (await env.repo.get(held.id)).held


async def test_a_held_task_cancelled_before_its_hold_is_cleared_leaves_a_spare_skipped() -> None:
    env = Env()
    env.handler("job", lambda payload: "ran")
    held = await env.submit("job", delay_seconds=3600)
    await env.clock.advance(2700)

    class CancelOnSend(InMemoryTaskQueue):
        async def send_batch(self, items: Any, *, priority: Priority = Priority.DEFAULT) -> None:
            await super().send_batch(items, priority=priority)
            await env.service.cancel(held.id)  # lands between the send and the unhold

    env = rewire(env, queue=CancelOnSend(env.clock, max_receive_count=10))
    assert (await reconciler(env).run_once()).scheduled == 0
    assert (await env.repo.get(held.id)).status is TaskStatus.CANCELLED
    await env.clock.advance(900)
    assert await env.processor.process(await env.receive()) is Outcome.SKIPPED_FINISHED


# -- item 2: no re-sends; the write/send gap closed by sending first ---------------------


async def test_a_backlog_older_than_stale_after_gets_no_message_from_the_reconciler() -> None:
    env = Env()
    env.handler("job", lambda payload: "ran")
    for _ in range(25):
        await env.submit("job")
    assert await messages(env) == 25

    await env.clock.advance(3 * 3600)  # far past stale_after (60 s)
    for _ in range(3):
        await reconciler(env).run_once()
        await env.clock.advance(120)

    assert await messages(env) == 25, "the reconciler sent duplicates"


async def test_a_failed_send_stores_nothing() -> None:
    env = Env()
    env = rewire(env, queue=DownQueue(env.clock, max_receive_count=10))
    env.handler("job", lambda payload: "ran")

    with pytest.raises(QueueSendFailed, match="not enqueued"):
        await env.submit("job")
    outcomes = await env.service.submit_batch([BatchEntry(SubmitRequest(type="job"))] * 3)

    assert all(isinstance(o.error, QueueSendFailed) for o in outcomes)
    assert sum((await env.repo.count_by_status()).values()) == 0


class GatedRepository(InMemoryTaskRepository):
    """The in-memory repository whose ``add`` waits for ``gate``, or fails when
    ``broken``: the moment between a send and its write, stretched."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.broken = False

    async def add(self, task: Task) -> None:
        await self.gate.wait()
        if self.broken:
            raise InfrastructureError("repository", "disk I/O error")
        await super().add(task)


async def test_a_store_failure_after_the_send_leaves_an_orphan_acked_only_after_the_grace() -> None:
    repo = GatedRepository()
    env = rewire(Env(), repo=repo)
    env.handler("job", lambda payload: "ran")
    repo.broken = True

    with pytest.raises(InfrastructureError):
        await env.submit("job")
    assert await messages(env) == 1

    started = env.clock.monotonic()
    outcome = Outcome.AWAITING_TASK
    while outcome is Outcome.AWAITING_TASK:
        outcome = await process_in_time(env, await env.receive_when_visible())
    assert outcome is Outcome.ORPHAN
    assert env.clock.monotonic() - started >= env.settings.orphan_grace_seconds
    assert await messages(env) == 0


@pytest.mark.parametrize("row_after_seconds", [0.1, 5.0])
async def test_a_message_that_arrives_before_its_row_still_runs_the_task(
    row_after_seconds: float,
) -> None:
    repo = GatedRepository()
    env = rewire(Env(), repo=repo)
    runs = 0

    def job(payload: Any) -> str:
        nonlocal runs
        runs += 1
        return "ran"

    env.handler("job", job)
    repo.gate.clear()
    submitting = asyncio.ensure_future(env.submit("job"))
    delivery = await env.receive_when_visible()  # sent, not stored yet
    processing = asyncio.ensure_future(env.processor.process(delivery))
    await env.clock.advance(row_after_seconds)
    repo.gate.set()
    task = await submitting
    while not processing.done():
        await env.clock.advance(0.05)
    outcome = processing.result()
    if outcome is Outcome.AWAITING_TASK:  # the row came after the quick look: next receive
        outcome = await process_in_time(env, await env.receive_when_visible())

    assert outcome is Outcome.COMPLETED
    assert runs == 1
    assert (await env.repo.get(task.id)).status is TaskStatus.COMPLETED


async def test_a_retry_sends_its_message_ahead_and_a_failed_send_keeps_the_task_failed() -> None:
    env = Env()
    env.handler("job", lambda payload: (_ for _ in ()).throw(ValueError("no")))
    task = await env.submit("job", max_attempts=1)
    assert await env.processor.process(await env.receive()) is Outcome.FAILED
    queue = DownQueue(env.clock, max_receive_count=10)
    service = TaskService(env.repo, queue, env.clock, env.task_types, env.service.workers)

    with pytest.raises(QueueSendFailed):
        await service.retry(task.id)
    assert (await env.repo.get(task.id)).status is TaskStatus.FAILED


class SlowRepository(InMemoryTaskRepository):
    """Every transition takes ``seconds`` on the clock (a slow store)."""

    def __init__(self, clock: Any, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    async def transition(self, new: Task, *, expected: Task) -> None:
        await self.clock.sleep(self.seconds)
        await super().transition(new, expected=expected)


async def test_a_retry_whose_write_outlasts_its_send_delay_sends_again_before_answering() -> None:
    env = Env()
    env.handler("job", lambda payload: "ran")
    task = await env.submit("job", max_attempts=1)
    claimed = task.claim("l", env.clock.now(), 30)
    await env.repo.transition(claimed, expected=task)
    await env.repo.transition(claimed.fail("boom", env.clock.now()), expected=claimed)
    slow = SlowRepository(env.clock, 2.0)
    await slow.add(await env.repo.get(task.id))
    env = rewire(env, repo=slow)
    await env.queue.ack(await env.receive())  # the submit's message, out of the way

    retrying = asyncio.ensure_future(env.service.retry(task.id))
    while not retrying.done():
        await env.clock.advance(0.5)
    assert retrying.result().status is TaskStatus.PENDING
    # The first message (1 s ahead) may have found the task still FAILED; the second
    # was sent once the write had landed.
    assert await messages(env) == 2
