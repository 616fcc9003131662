"""``taskq vacuum``: purges finished tasks past retention from the SQLite file."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.clock import SystemClock
from adapters.sqlite import SqliteDatabase, SqliteTaskRepository
from domain.models import Task, TaskStatus
from tests.support.processes import ROOT, taskq_command

pytestmark = pytest.mark.e2e
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


async def test_vacuum_purges_old_finished_tasks_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "taskq.db"
    db = SqliteDatabase(str(path), clock=SystemClock())
    repo = SqliteTaskRepository(db)
    for n in range(30):
        task = Task.create("email", "x" * 2000 + f"{n}@b.co", LONG_AGO)
        await repo.add(task)
        claimed = task.claim("lease", LONG_AGO, 30)
        await repo.transition(claimed, expected=task)
        await repo.transition(claimed.complete(None, LONG_AGO), expected=claimed)
    await repo.add(Task.create("email", "keep@b.co", LONG_AGO))  # PENDING: never purged
    db.close()

    done = subprocess.run(
        taskq_command("vacuum"),
        cwd=ROOT,
        env={
            **os.environ,
            "TASKQ_BACKEND": "sqlite",
            "TASKQ_SQLITE_PATH": str(path),
            "TASKQ_RETENTION_SECONDS": "3600",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "purged 30 expired tasks" in done.stdout

    db = SqliteDatabase(str(path), clock=SystemClock())
    try:
        counts = await SqliteTaskRepository(db).count_by_status()
    finally:
        db.close()
    assert counts[TaskStatus.COMPLETED] == 0
    assert counts[TaskStatus.PENDING] == 1
