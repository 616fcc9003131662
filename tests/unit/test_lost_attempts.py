"""A lost attempt (its lease expired: the worker process crashed, was killed or stalled).

A task never fails because another task crashed the process they shared: an attempt
lost in the shared process is given back and the task runs isolated from then on; an
isolated attempt that is lost, or whose child process crashes, counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.errors import IllegalTransition
from domain.models import Task, TaskStatus, new_lease_token
from domain.processing import Outcome
from domain.reconcile import Reconciler
from domain.task_types import TaskType
from tests.support.lost_attempts import LEASE, LostAttemptRig
from tests.support.sandbox import FakeSandbox

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(seconds=LEASE + 1)


# -- the rule, in the model -----------------------------------------------------------


def running(*, attempts: int, max_attempts: int = 3, isolated: bool = False) -> Task:
    """A PROCESSING task on its ``attempts``-th attempt, claimed at NOW."""
    task = Task.create("job", None, NOW - timedelta(seconds=1), max_attempts=max_attempts)
    for n in range(attempts):
        task = task.claim(f"lease-{n}", NOW, LEASE)
        if n < attempts - 1:
            task = task.retry_later("boom", NOW)
    if isolated:
        task = task.take_over("isolating", LATER, LEASE)
        # take_over gave the attempt back and claimed again: the same attempt, isolated
        assert task.isolated and task.attempts == attempts
    return task


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "isolated", "cancel", "status", "attempts_after"),
    [
        (1, 3, False, False, TaskStatus.PENDING, 0),  # given back, isolated
        (3, 3, False, False, TaskStatus.PENDING, 2),  # even the last one
        (1, 3, True, False, TaskStatus.PENDING, 1),  # isolated: counts, budget left
        (3, 3, True, False, TaskStatus.FAILED, 3),  # isolated, the last: FAILED
        (1, 3, False, True, TaskStatus.CANCELLED, 1),  # a cancel was asked first
        (3, 3, True, True, TaskStatus.CANCELLED, 3),
    ],
)
def test_settling_a_lost_attempt(
    attempts: int,
    max_attempts: int,
    isolated: bool,
    cancel: bool,
    status: TaskStatus,
    attempts_after: int,
) -> None:
    task = running(attempts=attempts, max_attempts=max_attempts, isolated=isolated)
    if cancel:
        task = task.request_cancel(NOW)
    now = LATER + timedelta(seconds=LEASE + 1)
    settled = task.settle_lost_attempt(now)
    assert settled.status is status
    assert settled.attempts == attempts_after
    assert settled.version > task.version
    assert settled.lease_token is None
    if status is not TaskStatus.CANCELLED:
        assert settled.isolated, "a task whose attempt was lost runs isolated from then on"
        assert "lost" in (settled.error or "")
    if status is TaskStatus.FAILED:
        assert "worker crashed or was killed" in (settled.error or "")
        assert settled.finished_at == now
    counted = 1 if isolated and not cancel else 0
    assert settled.retry_count == task.retry_count + counted


def test_a_lost_attempt_in_the_shared_process_spends_no_budget() -> None:
    task = running(attempts=1, max_attempts=1)
    taken = task.take_over("new", LATER, LEASE)
    assert taken.status is TaskStatus.PROCESSING
    assert (taken.attempts, taken.max_attempts, taken.isolated) == (1, 1, True)
    assert taken.lease_token == "new"


def test_a_lost_isolated_attempt_counts_so_a_task_cannot_loop_forever() -> None:
    task = running(attempts=1, max_attempts=2, isolated=True)
    later = LATER + timedelta(seconds=LEASE + 1)
    second = task.take_over("2", later, LEASE)
    assert (second.status, second.attempts) == (TaskStatus.PROCESSING, 2)
    failed = second.take_over("3", later + timedelta(seconds=LEASE + 1), LEASE)
    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None and "attempt 2 of 2 lost" in failed.error


def test_only_an_expired_lease_of_a_running_task_can_be_taken_over() -> None:
    task = running(attempts=1)
    with pytest.raises(IllegalTransition):
        task.take_over("early", NOW + timedelta(seconds=1), LEASE)
    with pytest.raises(IllegalTransition):
        Task.create("job", None, NOW).settle_lost_attempt(NOW)


def test_isolation_survives_an_operator_retry() -> None:
    task = running(attempts=1, max_attempts=1, isolated=True)
    failed = task.fail("HandlerCrashed: ...", LATER)
    assert failed.retry_failed(LATER, extra_attempts=1).isolated


# -- the processor, on the memory adapters ----------------------------------------------


def rig(crashing: frozenset[str] = frozenset()) -> tuple[LostAttemptRig, FakeSandbox, list[str]]:
    """Task types "healthy" and "poison"; the list names the handlers that ran in this
    process without the sandbox (the fake sandbox plays a crash for ``crashing``)."""
    ran_here: list[str] = []
    sandbox = FakeSandbox(crashing=crashing)

    def handler(name: str) -> Any:
        async def run(payload: Any) -> Any:
            if not sandbox.running:
                ran_here.append(name)
            return f"{name} done"

        return run

    types = [TaskType(name, handler(name), 60) for name in ("healthy", "poison")]
    return LostAttemptRig(*types, sandbox=sandbox), sandbox, ran_here


async def test_a_poison_task_fails_alone_and_its_neighbour_completes() -> None:
    env, sandbox, ran_here = rig(crashing=frozenset({"poison"}))
    healthy = await env.submit("healthy", max_attempts=1)
    poison = await env.submit("poison", max_attempts=2)
    # Both ran in one worker process, which the poison task crashed.
    await env.worker_dies_holding(2)

    processor = env.processor()
    outcomes = []
    while (delivery := await env.next_delivery()) is not None:
        outcomes.append(await processor.process(delivery))

    done = await env.repo.get(healthy.id)
    assert done.status is TaskStatus.COMPLETED, done
    assert (done.attempts, done.isolated) == (1, True)
    failed = await env.repo.get(poison.id)
    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None
    assert failed.error.startswith("HandlerCrashed: the 'poison' handler crashed its worker")
    assert "SIGKILL" in failed.error
    assert (failed.attempts, failed.isolated) == (2, True), "both isolated attempts counted"
    assert sorted(sandbox.runs) == ["healthy", "poison", "poison"]
    assert ran_here == [], "after a lost attempt nothing runs in the worker's process"
    assert await env.queue.dead_letter_count() == 1
    assert outcomes.count(Outcome.FAILED) == 1


async def test_a_crash_in_the_child_is_a_failed_attempt_and_the_task_stays_isolated() -> None:
    env, sandbox, _ = rig(crashing=frozenset({"poison"}))
    task = await env.submit("poison", max_attempts=3)
    await env.worker_dies_holding()
    processor = env.processor()
    assert await processor.process(await env.receive()) is Outcome.RETRY_SCHEDULED
    retried = await env.repo.get(task.id)
    assert retried.status is TaskStatus.PENDING
    assert (retried.attempts, retried.retry_count, retried.isolated) == (1, 1, True)
    assert "crashed its worker process (killed by signal SIGKILL (9))" in (retried.error or "")
    await env.clock.advance(2)
    assert await processor.process(await env.receive()) is Outcome.RETRY_SCHEDULED
    assert sandbox.runs == ["poison", "poison"]


async def test_tasks_whose_attempts_were_never_lost_run_in_the_worker_process() -> None:
    env, sandbox, ran_here = rig()
    task = await env.submit("healthy")
    assert await env.processor().process(await env.receive()) is Outcome.COMPLETED
    assert ran_here == ["healthy"] and sandbox.runs == []
    assert not (await env.repo.get(task.id)).isolated


async def test_without_a_sandbox_an_isolated_task_runs_in_the_worker_process() -> None:
    env, sandbox, ran_here = rig()
    await env.submit("healthy")
    await env.worker_dies_holding()
    processor = env.processor(isolating=False)
    assert await processor.process(await env.receive()) is Outcome.COMPLETED
    assert ran_here == ["healthy"] and sandbox.runs == []


async def test_the_reconciler_settles_an_abandoned_attempt_by_the_same_rule() -> None:
    env, sandbox, _ = rig()
    task = await env.submit("healthy", max_attempts=1)
    delivery = await env.receive()
    claimed = task.claim("dead", env.clock.now(), LEASE)
    await env.repo.transition(claimed, expected=task)
    await env.queue.dead_letter(delivery, reason="the queue gave up on it")
    await env.clock.advance(LEASE + 61)

    reconciler = Reconciler(env.repo, env.queue, env.clock, stale_after_seconds=60)
    assert (await reconciler.run_once()).recovered == 1
    settled = await env.repo.get(task.id)
    assert settled.status is TaskStatus.PENDING, "its only attempt was not spent"
    assert (settled.attempts, settled.isolated) == (0, True)
    assert await env.processor().process(await env.receive()) is Outcome.COMPLETED
    assert sandbox.runs == ["healthy"]


async def test_a_cancel_asked_while_the_worker_was_alive_is_honoured_at_takeover_unrun() -> None:
    runs: list[Any] = []
    env = LostAttemptRig(TaskType("work", runs.append, 60))
    task = await env.submit("work")

    # A worker claims the task, then dies; the operator cancels while it is PROCESSING.
    await env.receive()
    claimed = task.claim(new_lease_token(), env.clock.now(), LEASE)
    await env.repo.transition(claimed, expected=task)
    assert (await env.service.cancel(task.id)).cancel_requested

    await env.clock.advance(LEASE + 1)
    outcome = await env.processor().process(await env.receive())

    assert runs == []
    assert outcome is Outcome.CANCELLED
    assert (await env.repo.get(task.id)).status is TaskStatus.CANCELLED


async def test_an_abandoned_task_is_settled_however_many_old_letters_the_queue_holds() -> None:
    env = LostAttemptRig(TaskType("work", lambda payload: None, 60))
    processor = env.processor()
    for _ in range(100):  # old poison letters, as any long-lived DLQ holds
        await env.queue.send_raw("not a task")
        [poison] = await env.queue.receive(max_messages=1, visibility_timeout=1, wait_seconds=0)
        await processor.process(poison)
    assert await env.queue.dead_letter_count() == 100

    task = await env.submit("work")
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

    await Reconciler(env.repo, env.queue, env.clock, stale_after_seconds=1800).run_once()

    # Abandoned, its attempt not spent: retried with a fresh message, then it completes.
    assert (await env.repo.get(task.id)).status is TaskStatus.PENDING
    assert await processor.process(await env.receive()) is Outcome.COMPLETED
