"""Scenario 11: held tasks behind a PENDING backlog; the reconciler sends no duplicates.

``held`` tasks are submitted due further off than the queue's delay limit (lowered to
``HORIZON`` seconds with ``TASKQ_MAX_QUEUE_DELAY_SECONDS``, so they are stored without
a message), then a larger backlog of tasks due now, with no worker running. After the
backlog is older than ``TASKQ_RECONCILE_STALE_AFTER_SECONDS`` (set low), ``taskq
reconcile`` runs several passes: the queue must hold exactly the backlog's messages
plus those of the held tasks the passes reported enqueued (0 duplicate messages; the
old reconciler re-sent every PENDING task). Then a worker (its reconciler on a short
interval) runs everything: the held tasks are found by due time whatever the backlog.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from domain.services import BatchEntry, SubmitRequest
from tests.support import processes as support
from tests.support.scenarios import RunLog, ScenarioResult, StatusWatch

pytestmark = pytest.mark.e2e

HORIZON = 2
"""TASKQ_MAX_QUEUE_DELAY_SECONDS: tasks due later are held."""
HELD_DELAY = 12
"""Seconds ahead the held tasks are due: past the horizon for the reconcile passes."""
STALE_AFTER = 1.0
BATCH = 100
SETTINGS = {
    "WORKER_COUNT": "20",
    "TASKQ_MAX_QUEUE_DELAY_SECONDS": str(HORIZON),
    "TASKQ_RECONCILE_STALE_AFTER_SECONDS": str(STALE_AFTER),
    "TASKQ_RECONCILE_INTERVAL_SECONDS": "1",
    "TASKQ_VISIBILITY_TIMEOUT": "10",
    "TASKQ_POLL_WAIT_SECONDS": "1",
}


def submit(env: dict[str, str], keys: list[str], delay: float) -> list[str]:
    """Submit a ``sleepy`` task per key through the engine's own service (as the API
    would, without HTTP in the way of a large backlog)."""

    async def go() -> list[str]:
        async with support.engine_container(env) as container:
            service = container.task_service()
            ids: list[str] = []
            for start in range(0, len(keys), BATCH):
                requests = [
                    SubmitRequest(
                        type="sleepy", payload={"key": key, "seconds": 0.05}, delay_seconds=delay
                    )
                    for key in keys[start : start + BATCH]
                ]
                outcomes = await service.submit_batch([BatchEntry(r) for r in requests])
                ids += [o.task.id for o in outcomes if o.task is not None]
            return ids

    return asyncio.run(go())


def messages(env: dict[str, str]) -> int:
    async def depth() -> int:
        async with support.engine_container(env) as container:
            return int((await container.queue().depth()).total)

    return asyncio.run(depth())


def reconcile_once(env: dict[str, str]) -> int:
    """One ``taskq reconcile``; how many held tasks it enqueued."""
    done = subprocess.run(
        support.taskq_command("reconcile"),
        cwd=support.ROOT,
        env={**os.environ, **support.with_repo_on_path(env)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"enqueued (\d+) held tasks", done.stdout)
    assert found, done.stdout + done.stderr
    return int(found.group(1))


def run_backlog(
    tmp_path: Path,
    env: dict[str, str],
    *,
    backend: str,
    held: int = 5,
    backlog: int = 60,
    passes: int = 3,
) -> ScenarioResult:
    env = env | SETTINGS
    run_log = RunLog(Path(env["TASKQ_TEST_RUN_LOG"]))
    held_keys = [uuid.uuid4().hex for _ in range(held)]
    backlog_keys = [uuid.uuid4().hex for _ in range(backlog)]
    ids = submit(env, held_keys, HELD_DELAY)  # the oldest: behind everything else
    ids += submit(env, backlog_keys, 0)
    before = messages(env)
    time.sleep(STALE_AFTER + 0.5)  # the whole backlog is now older than stale_after
    enqueued = 0
    for _ in range(passes):
        enqueued += reconcile_once(env)
        time.sleep(STALE_AFTER)
    duplicates = messages(env) - before - enqueued

    with support.ProcessGroup(tmp_path, env) as procs:
        api = procs.start("api", wait=True)
        started = time.monotonic()
        procs.start("worker")
        with api.client() as client:
            watch = StatusWatch(client, ids)
            # moto runs about 5 of these tasks a second with a deep queue; SQLite 100s.
            finished = watch.wait_all_final(timeout=60 + backlog / 4, interval=0.5)
            recover = time.monotonic() - started
        keys = held_keys + backlog_keys
        result = ScenarioResult.observed(
            "12. held tasks behind a backlog; no re-sends",
            backend,
            watch,
            run_log,
            keys,
            recover_seconds=recover if finished else None,
            reconciler_duplicates=duplicates,
            notes=f"{held} held (due in {HELD_DELAY} s, horizon {HORIZON} s) behind {backlog} "
            f"PENDING; {passes} reconciler passes over the backlog older than stale_after: "
            f"{duplicates} duplicate messages",
        )
        assert duplicates == 0, f"the reconciler sent {duplicates} duplicate messages"
        assert before == backlog, "held tasks have no message until they are due"
        assert finished, f"not final: {watch.not_final()}\n{procs.logs()}"
        assert {t["status"] for t in watch.latest.values()} == {"COMPLETED"}
        assert not watch.violations, watch.violations
        assert run_log.completions() == dict.fromkeys(keys, 1), "a handler ran twice"
        return result


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("aws (moto)", marks=pytest.mark.aws)])
def test_held_tasks_behind_a_backlog_run_and_the_backlog_is_not_resent(
    tmp_path: Path, backend: str
) -> None:
    if backend == "sqlite":
        run_backlog(tmp_path, support.sqlite_env(tmp_path), backend=backend).check()
        return
    support.on_moto(
        tmp_path, lambda env: run_backlog(tmp_path, env, backend=backend), visibility=10
    ).check()
