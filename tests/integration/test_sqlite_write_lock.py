"""Waiting for the file's write lock while another connection (another process) holds it:
the writer polls for the lock, runs as soon as it is free, and gives up with a clear
error after ``write_lock_wait_seconds``; reads keep SQLite's ``busy_timeout``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.clock import SystemClock
from adapters.sqlite import SqliteDatabase, SqliteTaskRepository
from domain.errors import InfrastructureError
from domain.models import Task, TaskStatus

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@contextmanager
def write_lock_held(path: str) -> Iterator[sqlite3.Connection]:
    """Another connection on the file, inside a write transaction until the block ends
    (it commits what it wrote there)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
        other.execute("COMMIT")
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


async def test_a_write_waits_for_the_other_transaction_and_runs_once_it_ends(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "taskq.db")
    db = SqliteDatabase(path, clock=SystemClock())
    repo = SqliteTaskRepository(db)
    first = Task.create("email", 1, T0, task_id="first")
    await repo.add(first)
    with write_lock_held(path) as other:
        adding = asyncio.create_task(repo.add(Task.create("email", 2, T0, task_id="second")))
        await asyncio.sleep(0.3)
        assert not adding.done()  # it cannot commit while the other transaction holds the lock
        other.execute("UPDATE tasks SET error = 'written by the other' WHERE id = 'first'")
    await adding
    assert (await repo.get("second")).payload == 2
    assert (await repo.get("first")).error == "written by the other"
    assert (await repo.count_by_status())[TaskStatus.PENDING] == 2
    stats = db.lock_stats
    assert (stats.transactions, stats.waits) == (2, 1)  # the first add found it free
    assert stats.wait_seconds >= 0.25  # it waited while the other held the lock
    db.close()


async def test_a_lock_held_past_the_wait_fails_those_calls_and_the_next_ones_run(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "taskq.db")
    db = SqliteDatabase(path, clock=SystemClock(), write_lock_wait_seconds=0.2)
    repo = SqliteTaskRepository(db)
    with write_lock_held(path):
        with pytest.raises(InfrastructureError, match="database is locked"):
            await repo.add(Task.create("email", 1, T0, task_id="refused"))
    await repo.add(Task.create("email", 2, T0, task_id="accepted"))
    counts = await repo.count_by_status()
    assert counts[TaskStatus.PENDING] == 1
    assert (await repo.get("accepted")).payload == 2
    assert db.lock_stats.waits == 1
    assert db.lock_stats.wait_seconds >= 0.2  # the whole wait, though it gave up
    db.close()


async def test_reads_and_calls_run_alone_keep_the_busy_timeout(tmp_path: Path) -> None:
    """Inside a write transaction the lock is already held, so nothing waits there; a
    read or a call run alone after it gets SQLite's busy_timeout back."""
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=SystemClock(), busy_timeout_ms=1234)
    repo = SqliteTaskRepository(db)

    def busy_timeout(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA busy_timeout").fetchone()["timeout"])

    assert await db.read(busy_timeout) == 1234
    await repo.add(Task.create("email", 1, T0, task_id="one"))
    assert await db.write(busy_timeout) == 0
    assert await db.read(busy_timeout) == 1234
    await repo.add(Task.create("email", 2, T0, task_id="two"))
    assert await db.alone(busy_timeout) == 1234
    db.close()


async def test_a_write_waits_for_another_writer_without_busy_timeout(tmp_path: Path) -> None:
    """With busy_timeout at zero, only the polling can wait: a short lock does not fail
    the write even though SQLite itself would not wait at all."""
    path = str(tmp_path / "taskq.db")
    db = SqliteDatabase(path, clock=SystemClock(), busy_timeout_ms=0)
    repo = SqliteTaskRepository(db)
    with write_lock_held(path):
        adding = asyncio.create_task(repo.add(Task.create("email", 1, T0, task_id="waited")))
        await asyncio.sleep(0.3)
        assert not adding.done()
    await adding
    assert (await repo.get("waited")).status is TaskStatus.PENDING
    db.close()
