"""Migrations on files an older engine wrote: 9 indexes the due time of PENDING tasks,
10 gives tasks their progress (none, for the tasks already stored)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from adapters.clock import ManualClock
from adapters.sqlite import SqliteDatabase, SqliteTaskRepository
from domain.models import Task
from domain.progress import Progress
from tests.support.sqlite_files import old_schema_file

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))


async def test_pending_tasks_of_a_version_8_file_are_indexed_by_due_time(tmp_path: Path) -> None:
    created_in_paris = Task.create("email", 1, (T0 + timedelta(seconds=20)).astimezone(PARIS))
    task = Task.create("email", 2, T0)
    retried = task.claim("lease", T0, 30).fail_attempt("boom", T0 + timedelta(seconds=10))
    scheduled = Task.create("email", 3, T0, run_at=T0 + timedelta(seconds=5))
    done = Task.create("email", 4, T0 - timedelta(hours=1))
    done = done.claim("lease", T0, 30).complete(None, T0)
    path = tmp_path / "v8.db"
    tasks = [created_in_paris, retried, scheduled, done]
    old_schema_file(path, 8, tasks, newer_columns=["due_key", "progress"])

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


async def test_tasks_of_a_version_9_file_have_no_progress_and_can_get_one(
    tmp_path: Path,
) -> None:
    running = Task.create("email", 1, T0).claim("lease", T0, 30)
    path = tmp_path / "v9.db"
    old_schema_file(path, 9, [running], newer_columns=["progress"])

    db = SqliteDatabase(str(path), clock=ManualClock(T0))
    repo = SqliteTaskRepository(db)
    found = await repo.get(running.id)
    reported = found.report_progress(Progress.report(5, "began", T0), T0)
    await repo.transition(reported, expected=found)

    assert db.schema_version_found == 9
    assert found == running and found.progress is None
    assert await repo.get(running.id) == reported
    db.close()
