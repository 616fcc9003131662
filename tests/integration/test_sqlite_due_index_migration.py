"""Migration 9 indexes the due time of PENDING tasks written by an older engine."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from adapters.clock import ManualClock
from adapters.sqlite import MIGRATIONS, SqliteDatabase, SqliteTaskRepository
from adapters.sqlite.codec import task_row
from domain.models import Task

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))


def _make_version_8_file(path: Path, tasks: list[Task]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:8]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 8")
    for task in tasks:
        row = task_row(task)
        del row["due_key"]  # the column version 9 adds
        marks = ", ".join("?" for _ in row)
        conn.execute(f"INSERT INTO tasks ({', '.join(row)}) VALUES ({marks})", list(row.values()))
    conn.close()


async def test_pending_tasks_of_a_version_8_file_are_indexed_by_due_time(tmp_path: Path) -> None:
    created_in_paris = Task.create("email", 1, (T0 + timedelta(seconds=20)).astimezone(PARIS))
    task = Task.create("email", 2, T0)
    retried = task.claim("lease", T0, 30).fail_attempt("boom", T0 + timedelta(seconds=10))
    scheduled = Task.create("email", 3, T0, run_at=T0 + timedelta(seconds=5))
    done = Task.create("email", 4, T0 - timedelta(hours=1))
    done = done.claim("lease", T0, 30).complete(None, T0)
    path = tmp_path / "v8.db"
    _make_version_8_file(path, [created_in_paris, retried, scheduled, done])

    db = SqliteDatabase(str(path), clock=ManualClock(T0))
    repo = SqliteTaskRepository(db)
    assert db.schema_version_found == 8
    assert await repo.oldest_due_pending(T0 + timedelta(seconds=4)) is None
    assert await repo.oldest_due_pending(T0 + timedelta(seconds=60)) == T0 + timedelta(seconds=5)
    await repo.transition(scheduled.cancel(T0), expected=scheduled)
    assert await repo.oldest_due_pending(T0 + timedelta(seconds=60)) == T0 + timedelta(seconds=10)
    await repo.transition(retried.cancel(T0), expected=retried)
    found = await repo.oldest_due_pending(T0 + timedelta(seconds=60))
    assert found == T0 + timedelta(seconds=20), "an offset time is keyed in UTC"
    db.close()
