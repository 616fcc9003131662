"""Where a call runs: writes from the event loop that uses the database run on that loop's
own connection, gathered into one transaction, unless that would make the loop wait;
everything that might wait runs on the database's thread, and a loop's writes still
commit in the order they were made."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.clock import SystemClock
from adapters.sqlite import SqliteDatabase
from adapters.sqlite import database as sqlite_database
from domain.errors import InfrastructureError


def where(conn: sqlite3.Connection) -> int:
    """The thread a call runs on."""
    return threading.get_ident()


def insert(value: str) -> Callable[[sqlite3.Connection], int]:
    def run(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO log (value) VALUES (?)", (value,)).close()
        return threading.get_ident()

    return run


def logged(conn: sqlite3.Connection) -> list[str]:
    return [row["value"] for row in conn.execute("SELECT value FROM log ORDER BY seq")]


async def fails_between_two_writes(
    db: SqliteDatabase, failing: Callable[[sqlite3.Connection], None]
) -> BaseException | None:
    """What ``failing`` raises, gathered into one batch between two inserts."""
    before, middle, beside = await asyncio.gather(
        db.write(insert("before")),
        db.write(failing),
        db.write(insert("beside")),
        return_exceptions=True,
    )
    assert before == beside == threading.get_ident()  # on the loop, in one batch
    return middle if isinstance(middle, BaseException) else None


async def open_db(tmp_path: Path, **options: object) -> SqliteDatabase:
    db = SqliteDatabase(str(tmp_path / "taskq.db"), clock=SystemClock(), **options)  # type: ignore[arg-type]
    await db.alone(
        lambda conn: conn.execute(
            "CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, value TEXT NOT NULL)"
        ).close()
    )
    return db


async def test_writes_run_on_the_loop_and_reads_on_the_thread(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    here = threading.get_ident()
    assert await db.write(where) == here
    assert await db.read(where) != here  # a read keeps busy_timeout: the thread
    assert await db.alone(where) != here
    assert db.lock_stats.on_loop == 1
    db.close()


async def test_a_bulk_write_runs_on_the_thread_and_the_next_writes_after_it(
    tmp_path: Path,
) -> None:
    """A write that spends milliseconds inside SQLite (a retention purge's chunk) runs
    where SQLite works while the loop runs on."""
    db = await open_db(tmp_path)
    here = threading.get_ident()
    ran_on = await asyncio.gather(db.bulk_write(insert("bulk")), db.write(insert("after")))
    assert here not in ran_on  # gathered together: the batch goes to the thread
    assert await db.read(logged) == ["bulk", "after"]
    assert await db.write(insert("later")) == here
    db.close()


async def test_calls_made_in_one_loop_iteration_share_one_transaction(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    before = db.lock_stats.transactions
    ran_on = await asyncio.gather(*(db.write(insert(f"v{i}")) for i in range(20)))
    assert set(ran_on) == {threading.get_ident()}
    assert db.lock_stats.transactions - before == 1
    assert await db.read(logged) == [f"v{i}" for i in range(20)]
    db.close()


async def test_a_failing_call_undoes_only_its_own_changes_on_the_loop(tmp_path: Path) -> None:
    db = await open_db(tmp_path)

    def insert_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO log (value) VALUES ('undone')").close()
        raise ValueError("after a change")

    assert isinstance(await fails_between_two_writes(db, insert_then_fail), ValueError)
    assert await db.read(logged) == ["before", "beside"]
    db.close()


async def test_writes_wait_behind_what_the_thread_has_yet_to_run(tmp_path: Path) -> None:
    """While the thread runs a call the loop handed it, the loop's next writes wait for
    it (the loop itself does not), then run on the loop: a loop's calls keep their
    order."""
    db = await open_db(tmp_path)

    def slow_then_log(conn: sqlite3.Connection) -> None:
        time.sleep(0.3)
        conn.execute("INSERT INTO log (value) VALUES ('first')").close()

    first = asyncio.create_task(db.alone(slow_then_log))
    await asyncio.sleep(0.05)  # handed to the thread, which is sleeping in it
    second = asyncio.create_task(db.write(insert("second")))
    await asyncio.sleep(0.1)  # the loop runs on meanwhile
    assert not second.done()
    assert await second == threading.get_ident()
    assert first.done()
    assert await db.read(logged) == ["first", "second"]
    db.close()


async def test_a_write_lock_held_elsewhere_sends_the_writes_to_the_thread(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    writing = asyncio.create_task(db.write(insert("waited")))
    await asyncio.sleep(0.2)
    assert not writing.done()  # the loop is free; the thread polls for the lock
    other.execute("COMMIT")
    other.close()
    assert await writing != threading.get_ident()
    assert db.lock_stats.waits == 1
    db.close()


@pytest.mark.parametrize(
    "options", [{"synchronous": "FULL"}, {"writes_on_loop": False}], ids=["full", "off"]
)
async def test_without_the_loop_lane_every_call_runs_on_the_thread(
    tmp_path: Path, options: dict[str, object]
) -> None:
    """With synchronous = FULL a commit fsyncs: the loop must not wait for it."""
    db = await open_db(tmp_path, **options)
    assert await db.write(where) != threading.get_ident()
    assert db.lock_stats.on_loop == 0
    db.close()


async def test_another_loop_uses_the_thread_while_the_first_one_runs(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    assert await db.write(where) == threading.get_ident()
    other_thread: list[int] = []

    def elsewhere() -> int:
        other_thread.append(threading.get_ident())
        return asyncio.run(db.write(where))

    ran_on = await asyncio.to_thread(elsewhere)
    assert ran_on not in (threading.get_ident(), *other_thread)
    db.close()


def test_the_next_loop_takes_the_lane_once_the_first_is_closed(tmp_path: Path) -> None:
    db = asyncio.run(open_db(tmp_path))
    here = threading.get_ident()
    assert asyncio.run(db.write(where)) == here
    assert asyncio.run(db.write(where)) == here
    assert db.lock_stats.on_loop == 2
    db.close()


async def test_close_runs_the_writes_gathered_but_not_yet_run(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    writing = asyncio.create_task(db.write(insert("gathered")))
    await asyncio.sleep(0)  # the call is gathered; the loop has not run it yet
    db.close()
    await writing
    again = await open_db(tmp_path)
    assert await again.read(logged) == ["gathered"]
    again.close()
    with pytest.raises(InfrastructureError, match="closed"):
        await db.write(where)


def wal_bytes(db: SqliteDatabase) -> int:
    return Path(db.path + "-wal").stat().st_size


@pytest.mark.parametrize("every", [8, 10**9])
async def test_the_thread_checkpoints_what_the_loop_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    """The loop's connection never checkpoints; every CHECKPOINT_EVERY of its
    transactions the thread does, so the WAL stops growing (without, it grows with every
    transaction)."""
    monkeypatch.setattr(sqlite_database, "CHECKPOINT_EVERY", every)
    db = await open_db(tmp_path)
    for i in range(300):
        await db.write(insert("x" * 2000 + str(i)))
        await asyncio.sleep(0)
    size = wal_bytes(db)
    pages = 300 * 4096  # each transaction appends at least one page
    if every == 8:
        assert size < pages / 4, size
    else:
        assert size >= pages, size
    db.close()


async def test_close_from_another_thread_while_the_loop_writes(tmp_path: Path) -> None:
    """Every call made before close() either commits once or is told the database is
    closed; none is left waiting, none runs twice."""
    db = await open_db(tmp_path)
    writes = [asyncio.create_task(db.write(insert(f"v{i}"))) for i in range(600)]
    await asyncio.sleep(0)  # gathered; the loop starts on them as the other thread closes
    await asyncio.to_thread(db.close)
    done, waiting = await asyncio.wait(writes, timeout=10)
    assert not waiting
    committed = [task for task in done if task.exception() is None]
    refused = [task.exception() for task in done if task.exception() is not None]
    assert all(isinstance(error, InfrastructureError) for error in refused), refused
    again = await open_db(tmp_path)
    assert len(await again.read(logged)) == len(committed)
    again.close()


async def test_a_call_raising_stop_iteration_fails_alone(tmp_path: Path) -> None:
    """A future refuses a StopIteration: the caller gets a RuntimeError instead, and the
    calls beside it and after it run."""
    db = await open_db(tmp_path)

    def stops(conn: sqlite3.Connection) -> None:
        next(iter(()))

    assert isinstance(await fails_between_two_writes(db, stops), RuntimeError)
    assert await db.write(insert("after")) == threading.get_ident()
    assert await db.read(logged) == ["before", "beside", "after"]
    db.close()


@pytest.mark.parametrize("writes_on_loop", [True, False], ids=["loop", "thread"])
async def test_a_batch_that_breaks_fails_its_calls_and_the_next_ones_run(
    tmp_path: Path, writes_on_loop: bool
) -> None:
    """A "read" that writes and then raises cannot be undone alone (a read gets no
    savepoint): its whole batch fails, and the connection is left ready for the next."""
    db = await open_db(tmp_path, writes_on_loop=writes_on_loop)

    def read_that_writes(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO log (value) VALUES ('from a read')").close()
        raise ValueError("after a change")

    outcomes = await asyncio.gather(
        db.write(insert("beside")), db.read(read_that_writes), return_exceptions=True
    )
    assert all(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    await db.write(insert("next"))
    assert await db.read(logged) == ["next"]
    db.close()
