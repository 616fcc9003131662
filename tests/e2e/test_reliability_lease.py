"""Scenarios 2 and 3: leases.

3. A task longer than its lease (2 s lease, 6 s task, real time, real processes): the
   heartbeat keeps it leased, so though a second worker is polling it runs exactly once.

2. (lost lease) is proven in tests/unit/test_processing.py
   (``test_a_worker_whose_lease_expired_cannot_record_its_result``). Here: a heartbeat
   whose write committed but whose answer had not arrived when the handler finished.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.clock import SystemClock
from adapters.sqlite import SqliteDatabase, SqliteTaskQueue, SqliteTaskRepository
from domain.models import Task, TaskStatus
from domain.processing import Outcome, ProcessorSettings, TaskProcessor
from domain.retry import RetryPolicy
from domain.task_types import HandlerRegistry, TaskType
from tests.support.processes import ProcessGroup, on_moto, sqlite_env
from tests.support.scenarios import (
    RunLog,
    ScenarioResult,
    StatusWatch,
    submit_sleepy,
)

pytestmark = pytest.mark.e2e


def run_long_task(
    tmp_path: Path,
    env: dict[str, str],
    *,
    backend: str,
    tasks: int = 3,
    lease: float = 2.0,
    task_seconds: float = 6.0,
    heartbeat: float | None = None,
) -> ScenarioResult:
    """Two workers poll one queue; tasks last three leases. Each must run once."""
    env = {
        **env,
        "WORKER_COUNT": str(tasks),
        "TASKQ_VISIBILITY_TIMEOUT": str(lease),
        # Default: a third of the lease, which divides the task's length, so the handler
        # ends as a heartbeat writes (see test_a_heartbeat_answer_..._is_not_lost).
        **({"TASKQ_HEARTBEAT_INTERVAL": str(heartbeat)} if heartbeat else {}),
        "TASKQ_POLL_WAIT_SECONDS": "1",
    }
    run_log = RunLog(Path(env["TASKQ_TEST_RUN_LOG"]))
    with ProcessGroup(tmp_path, env) as procs:
        api = procs.start("api", wait=True)
        procs.start("worker")
        procs.start("worker")
        with api.client() as client:
            started = time.monotonic()
            keys, ids = submit_sleepy(client, tasks, task_seconds)
            watch = StatusWatch(client, ids)
            finished = watch.wait_all_final(timeout=task_seconds * 4 + 20)
            took = time.monotonic() - started
        starts = run_log.starts()
        result = ScenarioResult.observed(
            f"3. {task_seconds:g} s task, {lease:g} s lease",
            backend,
            watch,
            run_log,
            keys,
            notes=f"all done in {took:.1f} s",
        )
        result.duplicated_runs += sum(max(0, starts.get(k, 0) - 1) for k in keys)
        assert finished, f"not final: {watch.not_final()}\n{procs.logs()}"
        assert {t["status"] for t in watch.latest.values()} == {"COMPLETED"}, procs.logs()
        assert all(t["attempts"] == 1 for t in watch.latest.values()), watch.latest
        assert all(starts.get(k) == 1 for k in keys), f"runs per task: {starts}"
        return result


def test_sqlite_heartbeat_keeps_a_long_task_leased_it_runs_once(tmp_path: Path) -> None:
    result = run_long_task(tmp_path, sqlite_env(tmp_path), backend="sqlite")
    result.check()
    assert result.duplicated_runs == 0


class _SlowAnswerRepository:
    """The real sqlite repository, but a lease extension's answer arrives late: the
    write has committed, the caller is still waiting (a slow network or a busy writer
    thread). Cancelling the caller does not undo the write, as with any remote store."""

    def __init__(self, inner: SqliteTaskRepository, answer_delay: float) -> None:
        self.inner = inner
        self.answer_delay = answer_delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def transition(self, new: Task, *, expected: Task) -> None:
        is_extension = (
            new.status is TaskStatus.PROCESSING
            and expected.status is TaskStatus.PROCESSING
            and new.lease_token == expected.lease_token
        )
        if not is_extension:
            await self.inner.transition(new, expected=expected)
            return

        async def write_then_answer_late() -> None:
            await self.inner.transition(new, expected=expected)
            await asyncio.sleep(self.answer_delay)

        await asyncio.shield(write_then_answer_late())


async def test_a_heartbeat_answer_in_flight_when_the_handler_ends_is_not_lost(
    tmp_path: Path,
) -> None:
    clock = SystemClock()
    db = SqliteDatabase(str(tmp_path / "lease.db"), clock=clock)
    try:
        repo = SqliteTaskRepository(db)
        queue = SqliteTaskQueue(db, clock, max_receive_count=10)
        task_types = HandlerRegistry()

        async def work(payload: Any) -> str:
            await asyncio.sleep(0.3)  # ends while the 0.2 s heartbeat awaits its answer
            return "done"

        task_types.add(TaskType("work", work, 10))
        processor = TaskProcessor(
            _SlowAnswerRepository(repo, answer_delay=0.3),
            queue,
            clock,
            task_types,
            RetryPolicy(base_seconds=0, cap_seconds=0, rng=random.Random(1)),
            ProcessorSettings(visibility_timeout=5, heartbeat_interval=0.2),
        )
        task = Task.create("work", None, clock.now())
        await repo.add(task)
        await queue.send(task.id)
        [delivery] = await queue.receive(max_messages=1, visibility_timeout=5, wait_seconds=1)

        outcome = await processor.process(delivery)

        stored = await repo.get(task.id)
        assert (outcome, stored.status) == (Outcome.COMPLETED, TaskStatus.COMPLETED)
        assert (await queue.depth()).total == 0, "the message of a completed task is acked"
    finally:
        db.close()


@pytest.mark.aws
def test_aws_heartbeat_keeps_a_long_task_leased_it_runs_once(tmp_path: Path) -> None:
    result = on_moto(
        tmp_path, lambda env: run_long_task(tmp_path, env, backend="aws (moto)"), visibility=2
    )
    result.check()
    assert result.duplicated_runs == 0
