"""Three worker processes run the scheduler on one store (one SQLite file; DynamoDB
and SQS on a moto server): each fire of a seconds-resolution schedule becomes exactly
one task, with no leader among them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from domain.models import TaskStatus
from tests.support.processes import (
    MotoServer,
    ProcessGroup,
    aws_env,
    engine_container,
    sqlite_env,
)

PROCESSES = 3
RUN_SECONDS = 6.0
HANDLERS = {"TASKQ_HANDLERS": "tests.e2e.schedule_handlers", "TASKQ_WORKER_COUNT": "2"}


async def _fire_times(env: dict[str, str]) -> list[datetime]:
    """The ``run_at`` of every task the schedule submitted, in any status."""
    async with engine_container(env) as container:
        repository = container.repository()
        times: list[datetime] = []
        for status in TaskStatus:
            cursor = None
            while True:
                page = await repository.list_by_status(status, limit=100, cursor=cursor)
                times.extend(t.run_at for t in page.items if t.type == "every-second" and t.run_at)
                cursor = page.next_cursor
                if cursor is None:
                    break
        return sorted(times)


def _run_schedulers(tmp_path: Path, env: dict[str, str]) -> list[datetime]:
    with ProcessGroup(tmp_path, env) as group:
        for _ in range(PROCESSES):
            group.start("worker")
        deadline = time.monotonic() + 60
        while not asyncio.run(_fire_times(env)):  # every process up and firing
            assert time.monotonic() < deadline, group.logs()
            assert all(p.process.poll() is None for p in group.started), group.logs()
            time.sleep(0.5)
        time.sleep(RUN_SECONDS)
        for process in group.started:
            assert process.terminate() == 0, group.logs()
    return asyncio.run(_fire_times(env))


def _assert_one_task_per_fire(times: list[datetime]) -> None:
    repeated = {t: n for t, n in Counter(times).items() if n > 1}
    assert not repeated, f"fires submitted more than once: {repeated}"
    assert len(times) >= RUN_SECONDS - 1
    # Every second between the first and the last fire was submitted (none lost).
    span = int((times[-1] - times[0]).total_seconds())
    assert [times[0] + timedelta(seconds=i) for i in range(span + 1)] == times


def test_three_processes_on_one_sqlite_file_submit_each_fire_once(tmp_path: Path) -> None:
    env = {**sqlite_env(tmp_path), **HANDLERS}
    _assert_one_task_per_fire(_run_schedulers(tmp_path, env))


def test_three_processes_on_aws_submit_each_fire_once(tmp_path: Path) -> None:
    with MotoServer(tmp_path) as moto:
        env = {**aws_env(tmp_path, moto.url, visibility=30), **HANDLERS}
        _assert_one_task_per_fire(_run_schedulers(tmp_path, env))
