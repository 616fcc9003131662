"""Regression tests for the correctness bugs a review found (each failed before its fix)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from adapters.batching import BatchingTaskQueue
from adapters.clock import SystemClock
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository
from domain.errors import InfrastructureError, PermanentTaskError, QueueSendFailed
from domain.models import Task, TaskStatus, new_lease_token
from domain.processing import Outcome
from domain.reconcile import Reconciler
from domain.registry import TaskType
from domain.services import SubmitRequest
from tests.support.processing_rig import LEASE
from tests.support.processing_rig import ProcessingRig as ProcessingEnv


class Env(ProcessingEnv):
    """The processing tests' rig, plus a reconciler."""

    def __init__(self) -> None:
        super().__init__()
        self.reconciler = Reconciler(self.repo, self.queue, self.clock, stale_after_seconds=1800)


async def test_the_reconciler_does_not_undo_an_operators_retry() -> None:
    env = Env()
    started = asyncio.Event()
    calls = 0

    async def flaky(payload: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            started.set()
            await asyncio.Event().wait()  # runs until the worker shuts down
        raise PermanentTaskError("bad input")

    env.registry.add(TaskType("flaky", flaky, 600))
    task = await env.service.submit(SubmitRequest(type="flaky"))

    # Attempt 1 is given back at shutdown (the attempt is not counted) ...
    running = asyncio.ensure_future(env.processor.process(await env.receive()))
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    # ... the next delivery fails for good and is dead-lettered (receive 2, attempt 1).
    assert await env.processor.process(await env.receive()) is Outcome.FAILED
    assert (await env.repo.get(task.id)).attempts == 1

    retried = await env.service.retry(task.id)
    assert retried.status is TaskStatus.PENDING

    await env.reconciler.run_once()

    assert (await env.repo.get(task.id)).status is TaskStatus.PENDING


async def test_a_takeover_honours_a_cancel_requested_before_the_worker_died() -> None:
    env = Env()
    runs = 0

    async def work(payload: Any) -> Any:
        nonlocal runs
        runs += 1
        return "done"

    env.registry.add(TaskType("work", work, 60))
    task = await env.service.submit(SubmitRequest(type="work"))

    # A worker claims the task, then dies; the operator cancels while it is PROCESSING.
    await env.receive()
    claimed = task.claim(new_lease_token(), env.clock.now(), LEASE)
    await env.repo.transition(claimed, expected=task)
    flagged = await env.service.cancel(task.id)
    assert flagged.cancel_requested

    await env.clock.advance(LEASE + 1)
    outcome = await env.processor.process(await env.receive())

    assert runs == 0
    assert outcome is Outcome.CANCELLED
    assert (await env.repo.get(task.id)).status is TaskStatus.CANCELLED


class PartlyFailingQueue(InMemoryTaskQueue):
    """send_batch sends every item but ``refused`` and names it, as the port says."""

    def __init__(self, refused: str) -> None:
        super().__init__(SystemClock())
        self.refused = refused

    async def send_batch(self, items: Sequence[tuple[str, int]]) -> None:
        await super().send_batch([item for item in items if item[0] != self.refused])
        if any(task_id == self.refused for task_id, _ in items):
            raise QueueSendFailed([self.refused], f"1 of {len(items)} not sent")


async def test_a_coalesced_send_that_went_out_does_not_fail() -> None:
    inner = PartlyFailingQueue(refused="b")
    queue = BatchingTaskQueue(inner, send_linger_seconds=0.05)

    results = await asyncio.gather(queue.send("a"), queue.send("b"), return_exceptions=True)

    assert (await inner.depth()).visible == 1  # "a" was sent
    assert isinstance(results[1], InfrastructureError)
    assert results[0] is None


class FlakyRecordRepository(InMemoryTaskRepository):
    """The store fails once, transiently, when a result is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def transition(self, new: Task, *, expected: Task) -> None:
        if new.status is TaskStatus.COMPLETED and not self.failed:
            self.failed = True
            raise InfrastructureError("store", "timeout")
        await super().transition(new, expected=expected)


async def test_a_transient_store_error_at_completion_does_not_rerun_the_handler() -> None:
    env = Env()
    env.repo = FlakyRecordRepository()
    env.service.repository = env.repo
    env.processor.repository = env.repo
    runs = 0

    async def work(payload: Any) -> Any:
        nonlocal runs
        runs += 1
        return runs

    env.registry.add(TaskType("work", work, 60))
    task = await env.service.submit(SubmitRequest(type="work"))

    processing = asyncio.ensure_future(env.processor.process(await env.receive()))
    while not processing.done():  # the processor waits on the clock before it retries
        await env.clock.advance(0.25)
    assert processing.result() is Outcome.COMPLETED
    await env.clock.advance(LEASE + 1)
    deliveries = await env.queue.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=0)
    for delivery in deliveries:
        await env.processor.process(delivery)

    assert runs == 1
    assert (await env.repo.get(task.id)).status is TaskStatus.COMPLETED


async def test_a_task_whose_message_the_queue_dead_lettered_is_settled_behind_old_letters() -> None:
    env = Env()
    env.registry.add(TaskType("work", lambda payload: None, 60))
    for _ in range(100):  # old poison letters, as any long-lived DLQ holds
        await env.queue.send_raw("not a task")
        [poison] = await env.queue.receive(max_messages=1, visibility_timeout=1, wait_seconds=0)
        await env.processor.process(poison)
    assert await env.queue.dead_letter_count() == 100

    task = await env.service.submit(SubmitRequest(type="work"))
    await env.receive()
    # A worker claims it and heartbeats a long lease, while its message keeps coming back
    # (deferred) until the queue's redrive policy moves it away; then the worker dies.
    claimed = task.claim(new_lease_token(), env.clock.now(), 3600)
    await env.repo.transition(claimed, expected=task)
    for _ in range(env.queue.max_receive_count):
        await env.clock.advance(LEASE + 1)
        await env.queue.receive(max_messages=1, visibility_timeout=LEASE, wait_seconds=0)
    assert await env.queue.dead_letter_count() == 101
    await env.clock.advance(3600 + 1800)  # its lease ended, and then stale_after passed

    await env.reconciler.run_once()

    # Abandoned with attempts left: retried with a fresh message, then it completes.
    assert (await env.repo.get(task.id)).status is TaskStatus.PENDING
    assert await env.processor.process(await env.receive()) is Outcome.COMPLETED
