"""The processing use case on the in-memory adapters with a hand-moved clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adapters.memory import InMemoryTaskRepository
from domain.errors import InfrastructureError, PermanentTaskError
from domain.models import Task, TaskStatus
from domain.processing import Outcome
from domain.reconcile import Reconciler
from domain.task_types import HandlerRegistry
from tests.support.processing_rig import LEASE, process_in_time
from tests.support.processing_rig import ProcessingRig as Env


def raising(error: BaseException) -> Callable[[Any], Awaitable[None]]:
    """A handler that raises ``error``."""

    async def handler(payload: Any) -> None:
        raise error

    return handler


async def test_a_successful_task_completes_and_its_message_is_deleted() -> None:
    env = Env()

    async def double(payload: Any) -> Any:
        return {"twice": payload * 2}

    env.handler("double", double)
    task = await env.submit("double", 21)
    assert (await env.repo.get(task.id)).status is TaskStatus.PENDING

    assert await env.processor.process(await env.receive()) is Outcome.COMPLETED
    done = await env.repo.get(task.id)
    assert done.status is TaskStatus.COMPLETED
    assert done.result == {"twice": 42}
    assert done.attempts == 1 and done.retry_count == 0
    assert done.started_at is not None and done.finished_at is not None
    assert (await env.queue.depth()).total == 0


async def test_sync_handlers_run_in_a_thread() -> None:
    env = Env()
    import threading

    main = threading.get_ident()
    env.handler("where", lambda payload: threading.get_ident() != main)
    task = await env.submit("where")
    await env.processor.process(await env.receive())
    assert (await env.repo.get(task.id)).result is True


async def test_a_failed_attempt_is_retried_after_a_backoff_then_completes() -> None:
    env = Env()
    calls = 0

    async def flaky(payload: Any) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError(f"boom {calls}")
        return "ok"

    env.handler("flaky", flaky)
    task = await env.submit("flaky")

    assert await env.processor.process(await env.receive()) is Outcome.RETRY_SCHEDULED
    after_one = await env.repo.get(task.id)
    assert after_one.status is TaskStatus.PENDING
    assert after_one.error == "RuntimeError: boom 1"
    assert after_one.retry_count == 1 and after_one.attempts == 1

    await env.clock.advance(1.01)  # the first backoff is at most base (1 s)
    assert await env.processor.process(await env.receive()) is Outcome.RETRY_SCHEDULED
    await env.clock.advance(2.01)  # the second at most 2 s
    assert await env.processor.process(await env.receive()) is Outcome.COMPLETED
    done = await env.repo.get(task.id)
    assert done.status is TaskStatus.COMPLETED
    assert (done.attempts, done.retry_count) == (3, 2)


async def test_a_task_failing_every_attempt_ends_failed_in_the_dead_letter_queue() -> None:
    env = Env()

    env.handler("broken", raising(ValueError("always")))
    task = await env.submit("broken", max_attempts=3)
    outcomes: list[Outcome] = []
    for _ in range(3):
        outcomes.append(await env.processor.process(await env.receive()))
        await env.clock.advance(10.01)
    assert outcomes == [Outcome.RETRY_SCHEDULED, Outcome.RETRY_SCHEDULED, Outcome.FAILED]
    failed = await env.repo.get(task.id)
    assert failed.status is TaskStatus.FAILED
    assert (failed.attempts, failed.retry_count) == (3, 3)
    assert failed.error == "ValueError: always"
    assert await env.queue.dead_letter_count() == 1
    assert await env.nothing_visible()


async def test_a_permanent_error_fails_at_once() -> None:
    env = Env()

    env.handler("refuse", raising(PermanentTaskError("bad recipient")))
    task = await env.submit("refuse", max_attempts=5)
    assert await env.processor.process(await env.receive()) is Outcome.FAILED
    failed = await env.repo.get(task.id)
    assert failed.attempts == 1
    assert "bad recipient" in (failed.error or "")


async def test_a_handler_past_its_timeout_is_a_failed_attempt() -> None:
    env = Env()

    async def slow(payload: Any) -> None:
        await asyncio.sleep(5)

    env.handler("slow", slow, timeout=0.05)
    task = await env.submit("slow", max_attempts=1)
    assert await env.processor.process(await env.receive()) is Outcome.FAILED
    failed = await env.repo.get(task.id)
    assert "timed out after 0.05s" in (failed.error or "")


async def test_the_heartbeat_keeps_a_long_task_leased() -> None:
    env = Env()
    release = asyncio.Event()

    async def long(payload: Any) -> str:
        await release.wait()
        return "done"

    env.handler("long", long)
    task = await env.submit("long")
    running = asyncio.create_task(env.processor.process(await env.receive()))
    await asyncio.sleep(0)
    for _ in range(6):  # three times the lease passes while the handler runs
        await env.clock.advance(LEASE / 2)
        assert await env.nothing_visible(), "the lease expired under a live handler"
    stored = await env.repo.get(task.id)
    assert stored.status is TaskStatus.PROCESSING
    assert stored.lease_expires_at is not None and not stored.lease_expired(env.clock.now())
    release.set()
    assert await running is Outcome.COMPLETED
    assert (await env.repo.get(task.id)).attempts == 1


async def test_a_worker_whose_lease_expired_cannot_record_its_result() -> None:
    env = Env(heartbeat=10 * LEASE)  # worker A never heartbeats in time: it stalls
    gate_a = asyncio.Event()
    runs: list[str] = []

    async def work(payload: Any) -> str:
        name = "A" if not runs else "B"
        runs.append(name)
        if name == "A":
            await gate_a.wait()
        return f"result from {name}"

    env.handler("work", work)
    task = await env.submit("work")
    worker_a = asyncio.create_task(env.processor.process(await env.receive()))
    await asyncio.sleep(0)
    await env.clock.advance(LEASE + 1)

    worker_b = env.new_processor()
    assert await worker_b.process(await env.receive()) is Outcome.COMPLETED
    gate_a.set()
    assert await worker_a is Outcome.LOST_LEASE

    final = await env.repo.get(task.id)
    assert final.status is TaskStatus.COMPLETED
    assert final.result == "result from B"
    assert final.attempts == 1, "A's lost attempt, in the shared process, is not counted"
    assert final.isolated, "B ran it isolated"
    assert runs == ["A", "B"]


async def test_a_delivery_of_a_finished_task_is_acked_and_skipped() -> None:
    env = Env()
    runs: list[Any] = []
    env.handler("once", runs.append)
    task = await env.submit("once", payload="the only run")
    await env.queue.send(task.id)  # a duplicate message, as at-least-once allows
    assert await env.processor.process(await env.receive()) is Outcome.COMPLETED
    assert await env.processor.process(await env.receive()) is Outcome.SKIPPED_FINISHED
    assert runs == ["the only run"]
    assert (await env.queue.depth()).total == 0


async def test_a_duplicate_delivery_of_a_running_task_is_deferred_not_run() -> None:
    env = Env()
    gate = asyncio.Event()
    calls = 0

    async def wait(payload: Any) -> None:
        nonlocal calls
        calls += 1
        await gate.wait()

    env.handler("wait", wait)
    task = await env.submit("wait")
    await env.queue.send(task.id)
    first = asyncio.create_task(env.processor.process(await env.receive()))
    await asyncio.sleep(0.01)
    assert await env.processor.process(await env.receive()) is Outcome.DEFERRED
    gate.set()
    assert await first is Outcome.COMPLETED
    assert calls == 1


async def test_an_undecodable_message_goes_to_the_dead_letter_queue() -> None:
    env = Env()
    await env.queue.send_raw("{not json")
    assert await env.processor.process(await env.receive()) is Outcome.POISON
    assert await env.queue.dead_letter_count() == 1


async def test_a_message_for_an_unknown_task_is_acked_only_after_the_grace() -> None:
    env = Env()  # orphan_grace_seconds: 60
    await env.queue.send("00000000-0000-4000-8000-000000000000")
    outcomes: list[Outcome] = []
    while not outcomes or outcomes[-1] is Outcome.AWAITING_TASK:
        delivery = await env.receive_when_visible()
        outcomes.append(await process_in_time(env, delivery))
    assert outcomes[-1] is Outcome.ORPHAN
    assert env.processor.outcomes[Outcome.ORPHAN] == 1
    # Released for 1, 2, 4, 8, 16 and 29 s: 60 s in all before the ack.
    assert outcomes.count(Outcome.AWAITING_TASK) == 6
    assert (await env.queue.depth()).total == 0


async def test_a_task_whose_workers_keep_dying_ends_failed_with_the_reason() -> None:
    env = Env(heartbeat=10 * LEASE)
    env.handler("crash", lambda payload: None)
    task = await env.submit("crash", max_attempts=2)
    # Three workers take it and die (their lease simply expires): the first attempt,
    # in a shared process, is given back; the two isolated ones count.
    for _ in range(3):
        delivery = await env.receive()
        stored = await env.repo.get(task.id)
        if stored.status is TaskStatus.PENDING:
            taken = stored.claim("dead-worker", env.clock.now(), LEASE)
        else:
            taken = stored.take_over("dead-worker", env.clock.now(), LEASE)
        await env.repo.transition(taken, expected=stored)
        await env.queue.extend(delivery, visibility_timeout=LEASE)
        await env.clock.advance(LEASE + 1)
    assert await env.processor.process(await env.receive()) is Outcome.FAILED
    failed = await env.repo.get(task.id)
    assert failed.status is TaskStatus.FAILED
    assert (failed.attempts, failed.isolated) == (2, True)
    assert "worker crashed or was killed" in (failed.error or "")
    assert await env.queue.dead_letter_count() == 1


async def test_a_task_of_an_unregistered_type_fails_instead_of_looping() -> None:
    env = Env()
    env.handler("gone", lambda payload: None)
    task = await env.submit("gone")
    env.task_types = HandlerRegistry()
    env.processor = env.new_processor()
    assert await env.processor.process(await env.receive()) is Outcome.FAILED
    assert "unknown task type" in ((await env.repo.get(task.id)).error or "")


async def test_cancelling_a_running_task_releases_it_for_immediate_redelivery() -> None:
    env = Env()

    async def forever(payload: Any) -> None:
        await asyncio.Event().wait()

    env.handler("forever", forever)
    task = await env.submit("forever")
    running = asyncio.create_task(env.processor.process(await env.receive()))
    await asyncio.sleep(0.01)
    assert (await env.repo.get(task.id)).status is TaskStatus.PROCESSING
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    released = await env.repo.get(task.id)
    assert released.status is TaskStatus.PENDING
    assert released.attempts == 0, "an attempt cut short by shutdown is given back"
    again = await env.receive()
    assert again.task_id == task.id


async def test_cancelling_a_pending_task_means_it_never_runs() -> None:
    env = Env()
    runs = 0

    def job(payload: Any) -> None:
        nonlocal runs
        runs += 1

    env.handler("job", job)
    task = await env.submit("job")
    cancelled = await env.service.cancel(task.id)
    assert cancelled.status is TaskStatus.CANCELLED
    assert await env.processor.process(await env.receive()) is Outcome.SKIPPED_FINISHED
    assert runs == 0


async def test_cancelling_a_running_task_stops_its_handler_at_the_next_heartbeat() -> None:
    env = Env()
    cancelled_inside = asyncio.Event()

    async def long(payload: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled_inside.set()
            raise

    env.handler("long", long)
    task = await env.submit("long")
    running = asyncio.create_task(env.processor.process(await env.receive()))
    await asyncio.sleep(0.01)
    flagged = await env.service.cancel(task.id)
    assert flagged.status is TaskStatus.PROCESSING and flagged.cancel_requested
    await env.clock.advance(LEASE / 3 + 0.1)
    assert await asyncio.wait_for(running, 2) is Outcome.CANCELLED
    assert cancelled_inside.is_set(), "async handlers see the cancellation"
    final = await env.repo.get(task.id)
    assert final.status is TaskStatus.CANCELLED
    assert (await env.queue.depth()).total == 0


async def test_a_finished_task_cannot_be_cancelled() -> None:
    from domain.errors import TaskStateConflict

    env = Env()
    env.handler("job", lambda payload: None)
    task = await env.submit("job")
    await env.processor.process(await env.receive())
    with pytest.raises(TaskStateConflict) as info:
        await env.service.cancel(task.id)
    assert info.value.status == "COMPLETED"


async def test_a_failed_task_retried_by_an_operator_runs_again_with_its_history() -> None:
    env = Env()
    fail = True

    def job(payload: Any) -> str:
        if fail:
            raise PermanentTaskError("downstream down")
        return "ok"

    env.handler("job", job)
    task = await env.submit("job", max_attempts=1)
    assert await env.processor.process(await env.receive()) is Outcome.FAILED
    fail = False
    retried = await env.service.retry(task.id)
    assert retried.status is TaskStatus.PENDING
    assert retried.max_attempts == 1 + 3
    assert await env.nothing_visible(), "sent a second ahead, to find the task PENDING"
    await env.clock.advance(1)
    assert await env.processor.process(await env.receive()) is Outcome.COMPLETED
    final = await env.repo.get(task.id)
    assert (final.status, final.attempts, final.retry_count) == (TaskStatus.COMPLETED, 2, 1)


async def test_a_task_delayed_past_the_queue_limit_is_enqueued_by_the_scheduler() -> None:
    from domain.reconcile import Reconciler

    env = Env()
    env.handler("job", lambda payload: "ran")
    task = await env.submit("job", delay_seconds=3 * 3600)
    assert task.run_at is not None
    assert (await env.queue.depth()).total == 0, "no message for a task due in 3 hours"
    reconciler = Reconciler(env.repo, env.queue, env.clock, stale_after_seconds=1800)

    await env.clock.advance(3600)
    assert (await reconciler.run_once()).scheduled == 0
    await env.clock.advance(2 * 3600 - 600)  # 10 minutes before it is due
    assert (await reconciler.run_once()).scheduled == 1
    assert (await reconciler.run_once()).scheduled == 0, "enqueued once"
    assert (await env.queue.depth()).delayed == 1
    assert await env.nothing_visible()
    await env.clock.advance(601)
    assert await env.processor.process(await env.receive()) is Outcome.COMPLETED
    assert (await env.repo.get(task.id)).status is TaskStatus.COMPLETED


async def test_an_early_delivery_of_a_scheduled_task_waits_on_the_queue() -> None:
    env = Env()
    env.handler("job", lambda payload: "ran")
    task = await env.submit("job", delay_seconds=7200)
    await env.queue.send(task.id)  # e.g. an operator's redrive, far too early
    assert await env.processor.process(await env.receive()) is Outcome.DEFERRED
    assert (await env.repo.get(task.id)).status is TaskStatus.PENDING
    await env.clock.advance(7201)
    assert await env.processor.process(await env.receive()) is Outcome.COMPLETED


async def test_a_pending_task_whose_message_the_queue_dead_lettered_waits_for_a_redrive() -> None:
    from domain.reconcile import Reconciler

    env = Env()
    env.queue.max_receive_count = 2
    env.handler("job", lambda payload: "ran")
    task = await env.submit("job")
    for _ in range(2):  # two deliveries that nobody settles (say, workers that died early)
        await env.receive()
        await env.clock.advance(LEASE + 1)
    assert await env.nothing_visible()
    assert await env.queue.dead_letter_count() == 1
    reconciler = Reconciler(env.repo, env.queue, env.clock, stale_after_seconds=60)
    await env.clock.advance(60)
    await reconciler.run_once()
    assert await env.nothing_visible(), "PENDING tasks are never re-sent by age"
    assert await env.queue.redrive_dead_letters() == 1  # the operator's path
    assert await env.processor.process(await env.receive()) is Outcome.COMPLETED
    assert (await env.repo.get(task.id)).status is TaskStatus.COMPLETED


@pytest.mark.parametrize(
    ("max_attempts", "isolated", "cancel", "final"),
    [
        (3, False, False, TaskStatus.COMPLETED),  # attempts left: retried with a fresh message
        (1, False, False, TaskStatus.COMPLETED),  # lost in a shared process: not counted
        (1, True, False, TaskStatus.FAILED),  # its isolated last attempt lost: spent
        (3, False, True, TaskStatus.CANCELLED),  # a cancel asked before the worker died
    ],
)
async def test_a_running_task_abandoned_without_a_message_is_settled(
    max_attempts: int, isolated: bool, cancel: bool, final: TaskStatus
) -> None:
    from domain.reconcile import Reconciler

    env = Env()
    env.handler("job", lambda payload: "ran")
    task = await env.submit("job", max_attempts=max_attempts)
    delivery = await env.receive()
    claimed = task.claim("dead-worker", env.clock.now(), LEASE)
    await env.repo.transition(claimed, expected=task)
    if isolated:  # a first worker died; the one that took the task over dies too
        await env.clock.advance(LEASE + 1)
        taken = claimed.take_over("dead-worker-2", env.clock.now(), LEASE)
        await env.repo.transition(taken, expected=claimed)
    if cancel:
        await env.service.cancel(task.id)
    await env.queue.dead_letter(delivery, reason="the queue gave up on it")
    reconciler = Reconciler(env.repo, env.queue, env.clock, stale_after_seconds=60)
    assert (await reconciler.run_once()).recovered == 0, "its lease has not ended yet"
    await env.clock.advance(LEASE + 61)
    assert (await reconciler.run_once()).recovered == 1
    if final is TaskStatus.COMPLETED:
        assert (await env.repo.get(task.id)).status is TaskStatus.PENDING
        assert await env.processor.process(await env.receive()) is Outcome.COMPLETED
    stored = await env.repo.get(task.id)
    assert stored.status is final
    if final is TaskStatus.FAILED:
        assert "lost" in (stored.error or "")


async def test_an_old_dead_letter_does_not_fail_a_task_an_operator_retried() -> None:
    from domain.reconcile import Reconciler

    env = Env()

    def job(payload: Any) -> None:
        raise PermanentTaskError("no")

    env.handler("job", job)
    task = await env.submit("job", max_attempts=1)
    assert await env.processor.process(await env.receive()) is Outcome.FAILED
    await env.service.retry(task.id)
    await Reconciler(env.repo, env.queue, env.clock, stale_after_seconds=60).run_once()
    assert (await env.repo.get(task.id)).status is TaskStatus.PENDING
    await env.clock.advance(1)
    assert await env.processor.process(await env.receive()) is Outcome.FAILED


async def test_the_reconciler_keeps_an_operators_retry_when_receives_outnumber_attempts() -> None:
    env = Env()
    started = asyncio.Event()

    async def flaky(payload: Any) -> Any:
        if not started.is_set():  # the first run lasts until the worker shuts down
            started.set()
            await asyncio.Event().wait()
        raise PermanentTaskError("bad input")

    env.handler("flaky", flaky, 600)
    task = await env.submit("flaky")

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

    await Reconciler(env.repo, env.queue, env.clock, stale_after_seconds=1800).run_once()

    assert (await env.repo.get(task.id)).status is TaskStatus.PENDING


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


async def test_a_result_the_store_failed_to_record_once_is_recorded_without_a_second_run() -> None:
    env = Env()
    env.repo = FlakyRecordRepository()
    env.service.repository = env.repo
    env.processor.repository = env.repo
    runs = 0

    async def work(payload: Any) -> Any:
        nonlocal runs
        runs += 1
        return runs

    env.handler("work", work)
    task = await env.submit("work")

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
