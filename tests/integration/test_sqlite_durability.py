"""What is written survives closing, a killed process, and a schema upgrade."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.clock import ManualClock
from adapters.sqlite import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteDatabase,
    SqliteTaskQueue,
    SqliteTaskRepository,
    SqliteWorkerRegistry,
)
from domain.errors import InfrastructureError
from domain.models import Task, TaskStatus, WorkerInfo
from domain.priorities import Priority
from domain.progress import Progress

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


async def test_tasks_and_messages_survive_close_and_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "not-yet" / "created" / "taskq.db")  # parents are created
    clock = ManualClock(T0)
    db = SqliteDatabase(path, clock=clock, synchronous="FULL")
    repo = SqliteTaskRepository(db)
    queue = SqliteTaskQueue(db, clock, max_receive_count=5)
    task = Task.create("email", {"to": "a@example.com", "n": 1.5}, T0, timeout_seconds=3)
    await repo.add(task)
    claimed = task.claim("lease-1", T0, 30)
    await repo.transition(claimed, expected=task)
    await queue.send_batch([("t-1", 0), ("t-2", 60)])
    [delivery] = await queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=0)
    db.close()

    db = SqliteDatabase(path, clock=clock)
    repo = SqliteTaskRepository(db)
    queue = SqliteTaskQueue(db, clock, max_receive_count=5)
    assert db.schema_version_found == SCHEMA_VERSION
    assert await repo.get(task.id) == claimed
    assert (await repo.count_by_status())[TaskStatus.PROCESSING] == 1
    depth = await queue.depth()
    assert (depth.visible, depth.in_flight, depth.delayed) == (0, 1, 1)
    await queue.ack(delivery)  # the receipt issued before the restart is still the lease
    assert (await queue.depth()).in_flight == 0
    db.close()


WRITER = """
import asyncio, os, signal, sys
from datetime import UTC, datetime

from adapters.clock import SystemClock
from adapters.sqlite import SqliteDatabase, SqliteTaskQueue, SqliteTaskRepository
from domain.models import Task


async def main(path: str) -> None:
    clock = SystemClock()
    db = SqliteDatabase(path, clock=clock)
    repo = SqliteTaskRepository(db)
    queue = SqliteTaskQueue(db, clock, max_receive_count=5)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    await asyncio.gather(
        *(repo.add(Task.create("email", n, now, task_id=f"killed-{n}")) for n in range(50))
    )
    await queue.send_batch([(f"killed-{n}", 0) for n in range(10)])
    print("committed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no clean shutdown


asyncio.run(main(sys.argv[1]))
"""


async def test_committed_writes_survive_a_killed_process(tmp_path: Path) -> None:
    path = str(tmp_path / "taskq.db")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.run(
        [sys.executable, str(script), path],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr
    assert proc.stdout.strip() == "committed"

    clock = ManualClock(T0)
    db = SqliteDatabase(path, clock=clock)
    repo = SqliteTaskRepository(db)
    queue = SqliteTaskQueue(db, clock, max_receive_count=5)
    assert (await repo.get("killed-49")).payload == 49
    assert (await repo.count_by_status())[TaskStatus.PENDING] == 50
    assert (await queue.depth()).total == 10
    db.close()


def _make_version_1_file(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    done_at = (T0 + timedelta(seconds=5)).isoformat(timespec="microseconds")
    conn.execute(
        "INSERT INTO tasks (id, type, payload, status, created_at, created_key, updated_at, "
        "max_attempts, attempts, retry_count, finished_at, result, version) "
        "VALUES ('old-1', 'email', '\"x\"', 'COMPLETED', ?, ?, ?, 3, 1, 0, ?, '{\"ok\":1}', 3)",
        (T0.isoformat(timespec="microseconds"),) * 2 + (done_at, done_at),
    )
    conn.close()


async def test_opening_a_version_1_file_migrates_it_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_version_1_file(path)

    clock = ManualClock(T0 + timedelta(seconds=10))
    db = SqliteDatabase(str(path), clock=clock)
    assert db.schema_version_found == 1
    repo = SqliteTaskRepository(db, retention_seconds=60)
    old = await repo.get("old-1")
    assert old.status is TaskStatus.COMPLETED
    assert old.result == {"ok": 1}
    assert (await repo.count_by_status())[TaskStatus.COMPLETED] == 1

    # Version 2 brought the worker registry and retention; both work on the old data.
    workers = SqliteWorkerRegistry(db)
    info = WorkerInfo("w-1", "host", 1, 5, 0, T0, clock.now())
    await workers.beat(info, ttl_seconds=30)
    assert await workers.live(clock.now()) == [info]
    await clock.advance(120)
    assert await repo.purge_expired(clock.now()) == 1
    assert (await repo.count_by_status())[TaskStatus.COMPLETED] == 0
    db.close()

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_a_file_from_a_newer_engine_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(InfrastructureError, match="newer"):
        SqliteDatabase(str(path), clock=ManualClock())


async def test_a_closed_database_raises_infrastructure_error(tmp_path: Path) -> None:
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=ManualClock())
    repo = SqliteTaskRepository(db)
    await repo.ping()
    db.close()
    with pytest.raises(InfrastructureError):
        await repo.ping()


def _non_default(annotation: str, name: str) -> object:
    if "datetime" in annotation:
        return T0 + timedelta(hours=1, microseconds=7)
    if annotation == "TaskStatus":
        return TaskStatus.PROCESSING
    if annotation == "bool":
        return True
    if annotation.startswith("int"):
        return 7
    if annotation.startswith("float"):
        return 2.5
    if annotation.startswith("str"):
        return f"value of {name}"
    if annotation == "JSON":
        return {"k": [1, "ü", None]}
    if annotation.startswith("Progress"):
        return Progress(33.5, "ü step", T0 + timedelta(minutes=1))
    if annotation == "Priority":
        return Priority.LOW
    raise AssertionError(f"teach this test a value for Task.{name}: {annotation}")


async def test_every_task_field_round_trips_even_fields_without_a_column(
    tmp_path: Path,
) -> None:
    """A field added to Task later is kept (in the ``extra`` column), not dropped."""
    values = {f.name: _non_default(str(f.type), f.name) for f in dataclasses.fields(Task)}
    task = Task(**values)  # type: ignore[arg-type]
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=ManualClock(T0))
    repo = SqliteTaskRepository(db)
    await repo.add(task)
    db.close()
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=ManualClock(T0))
    stored = await SqliteTaskRepository(db).get(task.id)
    for field in dataclasses.fields(Task):
        assert getattr(stored, field.name) == values[field.name], field.name
    db.close()


async def test_tasks_held_by_an_engine_before_version_5_join_the_held_index(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:4]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    due = (T0 + timedelta(hours=1)).isoformat(timespec="microseconds")
    for task_id, updated in (("held", T0), ("enqueued", T0 + timedelta(minutes=50))):
        conn.execute(
            "INSERT INTO tasks (id, type, payload, status, created_at, created_key, updated_at,"
            " max_attempts, attempts, retry_count, result, run_at, version)"
            " VALUES (?, 'email', '\"x\"', 'PENDING', ?, ?, ?, 3, 0, 0, 'null', ?, 1)",
            (
                task_id,
                T0.isoformat(timespec="microseconds"),
                T0.isoformat(timespec="microseconds"),
                updated.isoformat(timespec="microseconds"),
                due,
            ),
        )
    conn.close()

    db = SqliteDatabase(str(path), clock=ManualClock(T0))
    repo = SqliteTaskRepository(db)
    due_tasks = await repo.list_due_held(T0 + timedelta(days=1), limit=10)
    assert [task.id for task in due_tasks] == ["held"]
    assert due_tasks[0].held and not (await repo.get("enqueued")).held
    db.close()
