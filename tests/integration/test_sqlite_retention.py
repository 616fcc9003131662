"""Retention hides and purges finished tasks; counts stay exact through purge and vacuum."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.clock import ManualClock
from adapters.sqlite import SqliteDatabase, SqliteTaskRepository
from adapters.sqlite import repository as sqlite_repository
from domain.errors import TaskNotFound
from domain.models import Task, TaskStatus

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
RETENTION = 3600


def _counted_by_scan(path: str) -> dict[TaskStatus, int]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status").fetchall()
    conn.close()
    counts = dict.fromkeys(TaskStatus, 0)
    counts.update({TaskStatus(s): n for s, n in rows})
    return counts


async def _finish(repo: SqliteTaskRepository, task: Task, now: datetime, ok: bool) -> Task:
    claimed = task.claim("lease", now, 30)
    await repo.transition(claimed, expected=task)
    done = claimed.complete({"ok": True}, now) if ok else claimed.fail("boom", now)
    await repo.transition(done, expected=claimed)
    return done


@pytest.mark.parametrize("chunk", [1000, 7], ids=["one-chunk", "many-chunks"])
async def test_purge_and_vacuum_keep_counts_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(sqlite_repository, "PURGE_CHUNK", chunk)
    path = str(tmp_path / "taskq.db")
    clock = ManualClock(T0)
    db = SqliteDatabase(path, clock=clock)
    repo = SqliteTaskRepository(db, retention_seconds=RETENTION, purge_interval_seconds=1e9)
    big = "x" * 20_000  # so that vacuum has pages to give back
    old = [Task.create("email", big, T0, task_id=f"old-{n}") for n in range(40)]
    for task in old:
        await repo.add(task)
    for n, task in enumerate(old[:30]):
        await _finish(repo, task, T0, ok=n % 3 != 0)  # 20 COMPLETED, 10 FAILED
    await repo.transition(old[30].cancel(T0), expected=old[30])

    await clock.advance(RETENTION + 1)
    fresh = [Task.create("email", "y", clock.now(), task_id=f"new-{n}") for n in range(5)]
    for task in fresh:
        await repo.add(task)
    await _finish(repo, fresh[0], clock.now(), ok=True)

    # Past retention: hidden from reads at once, still counted until purged.
    with pytest.raises(TaskNotFound):
        await repo.get("old-1")
    completed = await repo.list_by_status(TaskStatus.COMPLETED, limit=100)
    assert [t.id for t in completed.items] == ["new-0"]
    assert (await repo.get("old-35")).status is TaskStatus.PENDING  # unfinished never expire
    assert await repo.count_by_status() == _counted_by_scan(path)

    assert await repo.purge_expired(clock.now()) == 31
    expected = {
        TaskStatus.PENDING: 9 + 4,
        TaskStatus.PROCESSING: 0,
        TaskStatus.COMPLETED: 1,
        TaskStatus.FAILED: 0,
        TaskStatus.CANCELLED: 0,
    }
    assert await repo.count_by_status() == expected
    assert _counted_by_scan(path) == expected
    assert await repo.purge_expired(clock.now()) == 0

    size_before = os.path.getsize(path)
    await db.vacuum()
    assert os.path.getsize(path) < size_before
    assert await repo.count_by_status() == expected
    assert (await repo.get("new-0")).result == {"ok": True}
    db.close()

    db = SqliteDatabase(path, clock=clock)
    assert await SqliteTaskRepository(db).count_by_status() == expected
    db.close()


async def test_add_purges_expired_tasks_once_per_interval(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=clock)
    repo = SqliteTaskRepository(db, retention_seconds=60, purge_interval_seconds=300)
    first = Task.create("email", 1, T0, task_id="first")
    await repo.add(first)
    await _finish(repo, first, T0, ok=True)
    await clock.advance(100)
    await repo.add(Task.create("email", 2, clock.now(), task_id="second"))
    # Within the interval of the purge that ran on the first add: nothing purged yet.
    assert (await repo.count_by_status())[TaskStatus.COMPLETED] == 1
    await clock.advance(300)
    await repo.add(Task.create("email", 3, clock.now(), task_id="third"))
    counts = await repo.count_by_status()
    assert (counts[TaskStatus.COMPLETED], counts[TaskStatus.PENDING]) == (0, 2)
    db.close()
