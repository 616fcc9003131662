"""Scenario 4: the write/send gap.

A task stored with no queue message is exactly what a process leaves behind when it
dies between the write and the send. Such tasks are written straight into the store
(SQLite or DynamoDB); ``taskq reconcile`` (one shot) and the reconciler inside
``taskq worker`` (on an interval) re-send them, and they complete. Tasks whose
message was in fact queued are re-sent too: they still complete once, and their
handler runs once.

The other half, a send that fails under the API (503, task stored PENDING), is in
tests/unit/test_http_errors.py (``test_queue_send_failure_is_503_...``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from domain.models import Task
from tests.support.processes import (
    ROOT,
    MotoServer,
    ProcessGroup,
    RunLog,
    ScenarioResult,
    StatusWatch,
    aws_env,
    duplicated_runs,
    engine_container,
    sqlite_env,
    taskq_command,
    with_repo_on_path,
)

pytestmark = pytest.mark.e2e

STALE_AFTER = 2.0


def _write_stale_tasks(env: dict[str, str], keys: list[str], *, queued: bool) -> list[str]:
    """Store PENDING tasks last changed a minute ago; send their messages if ``queued``."""

    async def write() -> list[str]:
        async with engine_container(env) as container:
            repository = container.repository()
            queue = container.queue()
            then = container.clock().now() - timedelta(minutes=1)
            ids = []
            for key in keys:
                task = Task.create("sleepy", {"key": key, "seconds": 0.5}, then)
                await repository.add(task)
                if queued:
                    await queue.send(task.id)
                ids.append(task.id)
            return ids

    return asyncio.run(write())


def run_write_send_gap(
    tmp_path: Path, env: dict[str, str], *, backend: str, tasks: int = 10
) -> ScenarioResult:
    env = {
        **env,
        "WORKER_COUNT": "10",
        "TASKQ_RECONCILE_INTERVAL_SECONDS": "1",
        "TASKQ_RECONCILE_STALE_AFTER_SECONDS": str(STALE_AFTER),
        "TASKQ_VISIBILITY_TIMEOUT": "5",
        "TASKQ_POLL_WAIT_SECONDS": "1",
    }
    run_log = RunLog(Path(env["TASKQ_TEST_RUN_LOG"]))
    orphan_keys = [uuid.uuid4().hex for _ in range(tasks)]
    queued_keys = [uuid.uuid4().hex for _ in range(tasks)]
    ids = _write_stale_tasks(env, orphan_keys, queued=False)
    ids += _write_stale_tasks(env, queued_keys, queued=True)

    # One shot: every stale PENDING task is re-sent, those already queued included.
    once = subprocess.run(
        taskq_command("reconcile"),
        cwd=ROOT,
        env={**os.environ, **with_repo_on_path(env)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert once.returncode == 0, once.stderr
    assert f"re-sent {2 * tasks}" in once.stdout, once.stdout + once.stderr

    # Left behind after the one shot: only the worker's own reconciler can find these.
    late_keys = [uuid.uuid4().hex for _ in range(tasks)]
    ids += _write_stale_tasks(env, late_keys, queued=False)
    keys = orphan_keys + queued_keys + late_keys

    with ProcessGroup(tmp_path, env) as procs:
        api = procs.start("api", wait=True)
        started = time.monotonic()
        procs.start("worker")
        with api.client() as client:
            watch = StatusWatch(client, ids)
            finished = watch.wait_all_final(timeout=45)
            recover = time.monotonic() - started
            time.sleep(STALE_AFTER)  # the doubled messages are delivered, then skipped
            watch.poll()
        result = ScenarioResult(
            scenario="4. write/send gap (reconciler)",
            backend=backend,
            tasks=len(ids),
            lost=watch.lost(),
            stuck=len(watch.not_final()),
            duplicated_runs=duplicated_runs(run_log, keys),
            recover_seconds=round(recover, 1) if finished else None,
            double_completions=len(watch.violations),
            notes=f"{tasks} re-sent by taskq reconcile while queued, {2 * tasks} with no message",
        )
        assert finished, f"not final: {watch.not_final()}\n{procs.logs()}"
        assert {t["status"] for t in watch.latest.values()} == {"COMPLETED"}
        assert not watch.violations, watch.violations
        assert run_log.completions() == dict.fromkeys(keys, 1), "a handler ran twice"
        assert "reconciler re-sent" in procs.logs()
        return result


def test_sqlite_tasks_left_without_a_message_are_resent_and_complete_once(
    tmp_path: Path,
) -> None:
    run_write_send_gap(tmp_path, sqlite_env(tmp_path), backend="sqlite").check()


@pytest.mark.aws
def test_aws_tasks_left_without_a_message_are_resent_and_complete_once(tmp_path: Path) -> None:
    with MotoServer(tmp_path) as moto:
        env = aws_env(tmp_path, moto.url, visibility=5)
        run_write_send_gap(tmp_path, env, backend="aws (moto)").check()
