"""Many concurrent calls in one process: combined into few transactions, never locked."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.clock import ManualClock, SystemClock
from adapters.sqlite import SqliteDatabase, SqliteTaskQueue, SqliteTaskRepository
from domain.errors import ConcurrencyConflict, TaskAlreadyExists
from domain.models import Task, TaskStatus

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


async def _life(repo: SqliteTaskRepository, n: int) -> None:
    task = Task.create("email", {"n": n}, T0, task_id=f"task-{n:04d}")
    await repo.add(task)
    claimed = task.claim(f"lease-{n}", T0, 30)
    await repo.transition(claimed, expected=task)
    await repo.transition(claimed.complete(n, T0), expected=claimed)


async def test_500_concurrent_lifecycles_never_hit_a_lock(tmp_path: Path) -> None:
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=SystemClock())
    repo = SqliteTaskRepository(db)
    results = await asyncio.gather(*(_life(repo, n) for n in range(500)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    counts = await repo.count_by_status()
    assert counts[TaskStatus.COMPLETED] == 500
    assert sum(counts.values()) == 500
    assert (await repo.get("task-0499")).result == 499
    db.close()


async def test_two_connections_on_one_file_share_the_write_lock(tmp_path: Path) -> None:
    """Two SqliteDatabase objects stand in for two processes: separate connections
    contending for the same file, serialised by BEGIN IMMEDIATE and busy_timeout."""
    path = str(tmp_path / "taskq.db")
    a = SqliteDatabase(path, clock=SystemClock())
    b = SqliteDatabase(path, clock=SystemClock())
    repo_a, repo_b = SqliteTaskRepository(a), SqliteTaskRepository(b)
    results = await asyncio.gather(
        *(_life(repo_a if n % 2 else repo_b, n) for n in range(500)), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (await repo_a.count_by_status())[TaskStatus.COMPLETED] == 500
    a.close()
    b.close()


async def test_a_failing_call_does_not_roll_back_the_calls_batched_with_it(
    tmp_path: Path,
) -> None:
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=SystemClock())
    repo = SqliteTaskRepository(db)
    existing = Task.create("email", 0, T0, task_id="taken")
    await repo.add(existing)
    await repo.transition(existing.claim("first", T0, 30), expected=existing)
    calls = []
    for n in range(200):
        if n % 10 == 0:
            calls.append(repo.add(Task.create("email", n, T0, task_id="taken")))
        elif n % 10 == 5:
            calls.append(repo.transition(existing.claim(f"late-{n}", T0, 30), expected=existing))
        else:
            calls.append(repo.add(Task.create("email", n, T0, task_id=f"new-{n}")))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, TaskAlreadyExists) for r in results) == 20
    assert sum(isinstance(r, ConcurrencyConflict) for r in results) == 20
    assert sum(r is None for r in results) == 160
    counts = await repo.count_by_status()
    assert counts[TaskStatus.PENDING] == 160
    assert counts[TaskStatus.PROCESSING] == 1
    assert (await repo.get("taken")).lease_token == "first"
    db.close()


async def test_the_event_loop_keeps_running_during_a_long_query(tmp_path: Path) -> None:
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=SystemClock())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    [count] = await db.read(
        lambda conn: conn.execute(
            "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 3000000)"
            " SELECT COUNT(*) FROM r"
        ).fetchone()
    )
    elapsed = time.perf_counter() - started
    ticking.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticking
    assert count == 3_000_000
    # Blocking the loop would allow no tick at all; allow for a slow, busy machine.
    assert ticks >= min(10, int(elapsed / 0.005 / 4)), (ticks, elapsed)
    db.close()


async def test_concurrent_receivers_in_one_process_get_disjoint_leases(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=clock)
    queue = SqliteTaskQueue(db, clock, max_receive_count=5)
    for start in range(0, 300, 10):
        await queue.send_batch([(f"t-{n}", 0) for n in range(start, start + 10)])

    async def drain() -> list[str]:
        got: list[str] = []
        while batch := await queue.receive(max_messages=7, visibility_timeout=600, wait_seconds=0):
            got.extend(d.message_id for d in batch)
        return got

    per_receiver = await asyncio.gather(*(drain() for _ in range(8)))
    everything = [m for got in per_receiver for m in got]
    assert len(everything) == 300
    assert len(set(everything)) == 300
    db.close()


async def test_one_idempotency_key_across_two_connections_stores_one_task(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "taskq.db")
    a = SqliteDatabase(path, clock=SystemClock())
    b = SqliteDatabase(path, clock=SystemClock())
    repos = [SqliteTaskRepository(a), SqliteTaskRepository(b)]
    tasks = [Task.create("email", n, T0) for n in range(40)]
    results = await asyncio.gather(
        *(
            repos[n % 2].add_idempotent(
                t, key="k", fingerprint="f", expires_at=T0 + timedelta(days=1), now=T0
            )
            for n, t in enumerate(tasks)
        )
    )
    stored = [t.id for t, r in zip(tasks, results, strict=True) if r is None]
    assert len(stored) == 1
    assert set(results) == {None, stored[0]}
    assert sum((await repos[1].count_by_status()).values()) == 1
    a.close()
    b.close()


async def test_an_operation_may_not_hand_a_cursor_to_the_event_loop(tmp_path: Path) -> None:
    """A cursor finalised on the loop's thread races the database thread on the shared
    statement cache (seen as a rare SQLITE_MISUSE on ack under load)."""
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=SystemClock())
    with pytest.raises(TypeError, match="cursor"):
        await db.write(lambda conn: conn.execute("SELECT 1"))
    await db.ping()  # the connection is still usable
    db.close()


async def test_a_call_that_raises_after_writing_is_undone_alone(tmp_path: Path) -> None:
    """The batch is rolled back and re-run with a SAVEPOINT per call: the failing call's
    rows are gone, every other call of the batch commits once."""
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=SystemClock())
    repo = SqliteTaskRepository(db)

    def write_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO workers (worker_id, host, pid, concurrency, in_flight, started_at, "
            "last_seen, expires_key) VALUES ('half-done', 'h', 1, 1, 0, 'x', 'x', 'x')"
        ).close()
        raise ValueError("changed my mind")

    calls = [repo.add(Task.create("email", n, T0, task_id=f"t-{n}")) for n in range(100)]
    calls[50:50] = [db.write(write_then_fail)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(r) for r in results if r is not None] == [ValueError]
    assert (await repo.count_by_status())[TaskStatus.PENDING] == 100
    [[workers]] = await db.read(
        lambda conn: conn.execute("SELECT COUNT(*) FROM workers").fetchall()
    )
    assert workers == 0
    db.close()
