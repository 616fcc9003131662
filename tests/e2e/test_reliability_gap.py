"""Scenario 4: the write/send gap, with the send first.

A submission sends the task's message, then stores the task. What a process leaves
behind when it dies between the two (or when the store write fails) is a message whose
task is not stored (yet). Both halves are made here, against a running worker:

- ``late``: submissions whose store writes land ``ROW_DELAY`` seconds after their
  messages were sent (a slow store) while the worker is up: every one runs, once (a
  write later than half the grace sends its message again: TaskService's
  ``_resend_if_late``, so a store slower still leaves no task without a message);
- ``never``: messages whose rows are never stored (the API died, or its write failed;
  the client got no 201): the worker keeps each for ``TASKQ_ORPHAN_GRACE_SECONDS``,
  then acks it as an orphan, and no handler runs for them.

A send that fails under the API (503, nothing stored) is in
tests/unit/test_http_errors.py (``test_queue_send_failure_is_503_and_nothing_is_stored``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from domain.models import Task
from domain.services import SubmitRequest
from tests.support.processes import (
    ProcessGroup,
    engine_container,
    on_moto,
    sqlite_env,
)
from tests.support.scenarios import RunLog, ScenarioResult, StatusWatch, wait_for

pytestmark = pytest.mark.e2e

ROW_DELAY = 1.5
"""Seconds between a message's send and its row's write (less than the grace)."""
ORPHAN_GRACE = 4.0


def send_without_rows(env: dict[str, str], keys: list[str]) -> list[Task]:
    """Build a task per key and send its message, storing nothing."""

    async def send() -> list[Task]:
        async with engine_container(env) as container:
            service, queue = container.task_service(), container.queue()
            tasks = []
            for key in keys:
                task = service.validate_and_build(
                    SubmitRequest(type="sleepy", payload={"key": key, "seconds": 0.2})
                ).task
                await queue.send(task.id)
                tasks.append(task)
            return tasks

    return asyncio.run(send())


class SlowWrites:
    """The container's repository, each new task's write landing ``ROW_DELAY`` late."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def add(self, task: Task) -> None:
        await asyncio.sleep(ROW_DELAY)
        await self.inner.add(task)


def submit_with_slow_writes(env: dict[str, str], keys: list[str]) -> list[Task]:
    """Submit a task per key through the use case, whose store writes land late: the
    worker receives each message before its row is there."""

    async def submit() -> list[Task]:
        async with engine_container(env) as container:
            service = container.task_service()
            service.repository = SlowWrites(service.repository)
            requests = [
                SubmitRequest(type="sleepy", payload={"key": key, "seconds": 0.2}) for key in keys
            ]
            return list(await asyncio.gather(*(service.submit(r) for r in requests)))

    return asyncio.run(submit())


def queue_empty(client: Any) -> bool:
    metrics = client.get("/metrics").json()
    return bool(metrics["queue_depth"] + metrics["queue_in_flight"] + metrics["queue_delayed"] == 0)


def run_write_send_gap(
    tmp_path: Path, env: dict[str, str], *, backend: str, tasks: int = 10
) -> ScenarioResult:
    env = {
        **env,
        "WORKER_COUNT": "10",
        "TASKQ_ORPHAN_GRACE_SECONDS": str(ORPHAN_GRACE),
        "TASKQ_VISIBILITY_TIMEOUT": "5",
        "TASKQ_POLL_WAIT_SECONDS": "1",
    }
    run_log = RunLog(Path(env["TASKQ_TEST_RUN_LOG"]))
    late_keys = [uuid.uuid4().hex for _ in range(tasks)]
    never_keys = [uuid.uuid4().hex for _ in range(tasks)]

    with ProcessGroup(tmp_path, env) as procs:
        api = procs.start("api", wait=True)
        procs.start("worker")
        with api.client() as client:
            wait_for(
                lambda: client.get("/metrics").json()["active_workers"] > 0,
                timeout=30,
                what="the worker is up",
            )
            started = time.monotonic()
            send_without_rows(env, never_keys)
            late = submit_with_slow_writes(env, late_keys)
            watch = StatusWatch(client, [task.id for task in late])
            finished = watch.wait_all_final(timeout=60)
            recover = time.monotonic() - started
            wait_for(lambda: queue_empty(client), timeout=60, what="orphans acked")
            drained = time.monotonic() - started
            watch.poll()
        result = ScenarioResult.observed(
            "4. write/send gap (send first)",
            backend,
            watch,
            run_log,
            late_keys,
            recover_seconds=recover if finished else None,
            notes=f"{tasks} rows stored {ROW_DELAY:g} s after their message, all run; "
            f"{tasks} messages whose row never came acked as orphans after the "
            f"{ORPHAN_GRACE:g} s grace ({drained:.0f} s), none run",
        )
        assert finished, f"not final: {watch.not_final()}\n{procs.logs()}"
        assert {t["status"] for t in watch.latest.values()} == {"COMPLETED"}
        assert not watch.violations, watch.violations
        assert run_log.completions() == dict.fromkeys(late_keys, 1), "a handler ran twice"
        assert not set(run_log.starts()) & set(never_keys), "a task never stored ran"
        assert drained >= ORPHAN_GRACE, "an orphan was acked before the grace"
        assert "message for unknown task" in procs.logs()
        return result


def test_sqlite_a_message_before_its_row_runs_and_one_without_is_dropped_after_the_grace(
    tmp_path: Path,
) -> None:
    run_write_send_gap(tmp_path, sqlite_env(tmp_path), backend="sqlite").check()


@pytest.mark.aws
def test_aws_a_message_before_its_row_runs_and_one_without_is_dropped_after_the_grace(
    tmp_path: Path,
) -> None:
    on_moto(
        tmp_path, lambda env: run_write_send_gap(tmp_path, env, backend="aws (moto)"), visibility=5
    ).check()
