"""The connection to one SQLite file, and the thread that runs every call on it.

Every call runs on the database's single thread, so the event loop never blocks on
SQLite. That thread combines whatever calls are waiting into one ``BEGIN IMMEDIATE ...
COMMIT`` (one commit for many small writes). A call that raises (a lost race, a
duplicate id) rolls back only its own changes: when it had changed rows, the batch is
run again with a SAVEPOINT per call. A caller hears of success only after the commit.

Several processes may share the file: WAL lets readers run beside the writer, and every
write transaction starts with ``BEGIN IMMEDIATE``, so claims and compare-and-set
transitions are atomic across processes. A writer waiting for another process's
transaction polls for the lock every fraction of a millisecond instead of sleeping in
SQLite's busy handler, whose waits grow to tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import enum
import os
import queue
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from adapters.sqlite.schema import DEPENDENCY, migrate
from domain.errors import InfrastructureError
from domain.ports import Clock

T = TypeVar("T")

MAX_OPS_PER_TRANSACTION: Final = 512
"""Upper bound on how many waiting calls one combined transaction runs."""
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
"""How long the statements of a read transaction or of a call run alone (VACUUM) wait
on a lock (SQLite's busy handler): a read while another process checkpoints, a VACUUM
while another process writes. Write transactions poll for the write lock instead."""
DEFAULT_WRITE_LOCK_WAIT_SECONDS: Final = 25.0
"""How long a write transaction waits for the file's write lock, held by another
process, before the calls of that transaction fail with InfrastructureError."""
LOCK_POLL_SECONDS: Final = (0.00005, 0.0005)
"""The first and the longest pause between two tries of ``BEGIN IMMEDIATE`` (doubling in
between). SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms: with an API and two
workers on one file, that left the writers asleep a third of the time after the lock
was free (``python -m benchmarks.sustained --only split``)."""

_BUSY_TIMEOUT: Final = "PRAGMA busy_timeout = {ms:d}"
_NO_BUSY_TIMEOUT: Final = "PRAGMA busy_timeout = 0"
_JOURNAL_MODE_WAL: Final = "PRAGMA journal_mode = WAL"
_SYNCHRONOUS: Final = "PRAGMA synchronous = {mode}"
_FOREIGN_KEYS_ON: Final = "PRAGMA foreign_keys = ON"
_PING: Final = "SELECT 1"
_VACUUM: Final = "VACUUM"
_TRUNCATE_WAL: Final = "PRAGMA wal_checkpoint(TRUNCATE)"
_BEGIN_READ: Final = "BEGIN"
_BEGIN_WRITE: Final = "BEGIN IMMEDIATE"
_COMMIT: Final = "COMMIT"
_ROLLBACK: Final = "ROLLBACK"
_SAVEPOINT: Final = "SAVEPOINT op"
_RELEASE_SAVEPOINT: Final = "RELEASE op"
_ROLLBACK_TO_SAVEPOINT: Final = "ROLLBACK TO op"


class _Kind(enum.Enum):
    READ = "read"
    WRITE = "write"
    ALONE = "alone"  # outside any transaction, by itself (VACUUM)


@dataclass(slots=True)
class _Op:
    fn: Callable[[sqlite3.Connection], Any]
    kind: _Kind
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


@dataclass(slots=True)
class WriteLockStats:
    """What this connection's write transactions met, since it opened (read by the
    metrics; written by the database's thread only)."""

    transactions: int = 0
    """Write transactions begun (each runs every call waiting at the time)."""
    waits: int = 0
    """Of those, how many found the write lock held by another connection."""
    wait_seconds: float = 0.0
    """Time spent waiting for the write lock, those that got it and those that gave up."""


def _infra(exc: BaseException) -> InfrastructureError:
    return InfrastructureError(DEPENDENCY, f"{type(exc).__name__}: {exc}")


def statement(
    sql: str, params: Sequence[Any], *, many: bool = False
) -> Callable[[sqlite3.Connection], None]:
    """An operation that runs one statement and returns nothing (never a cursor)."""

    def run(conn: sqlite3.Connection) -> None:
        cursor = conn.executemany(sql, params) if many else conn.execute(sql, params)
        cursor.close()

    return run


def _call(op: _Op, conn: sqlite3.Connection) -> Any:
    try:
        result = op.fn(conn)
    except BaseException as exc:
        _drop_locals(exc)
        raise
    if isinstance(result, sqlite3.Cursor):
        # A cursor finalised later on the event loop's thread would touch the
        # connection while this thread uses it (SQLITE_MISUSE): never let one out.
        result.close()
        raise TypeError("a database operation must not return a cursor")
    return result


def _drop_locals(exc: BaseException) -> None:
    """Clear the locals of the frames in ``exc``'s tracebacks (and its cause's and
    context's) before it leaves this thread: a cursor kept alive by a frame would be
    finalised on another thread. Line numbers stay for the traceback."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current: BaseException | None = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if current.__traceback__ is not None:
            traceback.clear_frames(current.__traceback__)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


class SqliteDatabase:
    """The connection to one SQLite file and the thread every call runs on."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "NORMAL",
        clock: Clock,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        write_lock_wait_seconds: float = DEFAULT_WRITE_LOCK_WAIT_SECONDS,
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        if path == ":memory:" or path.startswith("file:"):
            raise ValueError(f"path must be a file path, not {path!r}")
        self.path = path
        self.synchronous = synchronous.upper()
        self.clock = clock
        self.busy_timeout_ms = busy_timeout_ms
        self.write_lock_wait_seconds = write_lock_wait_seconds
        self._busy_timeout = _BUSY_TIMEOUT.format(ms=int(busy_timeout_ms))
        self._waits_when_busy = True  # the connection's busy_timeout is busy_timeout_ms
        self.lock_stats = WriteLockStats()
        self.schema_version_found = 0
        self._ops: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()  # None: stop
        self._closed = False
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="taskq-sqlite", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            self._thread.join()
            raise _infra(self._open_error) from self._open_error

    # -- calling in ------------------------------------------------------------------

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a read transaction (a consistent snapshot)."""
        return await self._submit(fn, _Kind.READ)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a write transaction, possibly shared with other calls; what
        ``fn`` raises rolls back only what ``fn`` did."""
        return await self._submit(fn, _Kind.WRITE)

    async def alone(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` outside any transaction (for VACUUM and checkpoints)."""
        return await self._submit(fn, _Kind.ALONE)

    async def _submit(self, fn: Callable[[sqlite3.Connection], T], kind: _Kind) -> T:
        if self._closed:
            raise InfrastructureError(DEPENDENCY, f"database {self.path} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._ops.put(_Op(fn, kind, future, loop))
        return await future

    async def ping(self) -> None:
        await self.read(lambda conn: conn.execute(_PING).fetchone())

    async def vacuum(self) -> None:
        """Rebuild the file to give back the space of deleted rows, then truncate the WAL."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_VACUUM)
            conn.execute(_TRUNCATE_WAL)

        await self.alone(run)

    def close(self) -> None:
        """Finish the calls already submitted, then close the connection."""
        if self._closed:
            return
        self._closed = True
        self._ops.put(None)
        self._thread.join()

    # -- the thread ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,  # we issue BEGIN / COMMIT ourselves
            check_same_thread=True,
        )
        conn.row_factory = sqlite3.Row  # every row is read by column name
        conn.execute(self._busy_timeout)
        mode = conn.execute(_JOURNAL_MODE_WAL).fetchone()["journal_mode"]
        if str(mode).lower() != "wal":
            conn.close()
            raise sqlite3.OperationalError(f"could not switch {self.path} to WAL (got {mode})")
        conn.execute(_SYNCHRONOUS.format(mode=self.synchronous))
        conn.execute(_FOREIGN_KEYS_ON)
        self.schema_version_found = migrate(conn)
        return conn

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to the constructor
            self._open_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                first = self._ops.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < MAX_OPS_PER_TRANSACTION:
                    try:
                        item = self._ops.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                self._run_batch(conn, batch)
        finally:
            conn.close()
            # Anything submitted after close() began cannot run any more.
            left: list[_Op] = []
            while True:
                try:
                    item = self._ops.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    left.append(item)
            closed = InfrastructureError(DEPENDENCY, f"database {self.path} is closed")
            _deliver(left, [(False, closed)] * len(left))

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        live = [op for op in batch if not op.future.cancelled()]
        grouped = [op for op in live if op.kind is not _Kind.ALONE]
        if grouped:
            _deliver(grouped, self._run_transaction(conn, grouped))
        for op in live:
            if op.kind is _Kind.ALONE:
                try:
                    self._wait_when_busy(conn, True)
                    outcome: _Outcome = (True, _call(op, conn))
                except BaseException as exc:
                    outcome = (False, _translate(exc))
                _deliver([op], [outcome])

    def _wait_when_busy(self, conn: sqlite3.Connection, waits: bool) -> None:
        """Set the connection's busy_timeout: none for write transactions (the write lock
        is polled for, and once it is held no statement waits), ``busy_timeout_ms`` for
        reads and calls run alone. Changed only when it must, so that back-to-back write
        transactions run no PRAGMA at all."""
        if waits != self._waits_when_busy:
            conn.execute(self._busy_timeout if waits else _NO_BUSY_TIMEOUT)
            self._waits_when_busy = waits

    def _begin(self, conn: sqlite3.Connection, write: bool) -> None:
        self._wait_when_busy(conn, not write)
        if write:
            _take_write_lock(conn, self.write_lock_wait_seconds, self.lock_stats)
        else:
            conn.execute(_BEGIN_READ)

    def _run_transaction(self, conn: sqlite3.Connection, ops: list[_Op]) -> list[_Outcome]:
        write = any(op.kind is _Kind.WRITE for op in ops)
        # Most calls either succeed or raise before changing anything (a failed
        # statement undoes itself), so the batch first runs without a SAVEPOINT per
        # call. Only when a call raises after changing rows is the batch rolled back and
        # run again with savepoints, so that the call's changes alone are undone.
        outcomes = self._attempt(conn, ops, write, savepoints=False)
        if outcomes is None:
            outcomes = self._attempt(conn, ops, write, savepoints=True)
        assert outcomes is not None
        return outcomes

    def _attempt(
        self, conn: sqlite3.Connection, ops: list[_Op], write: bool, *, savepoints: bool
    ) -> list[_Outcome] | None:
        try:
            self._begin(conn, write)
        except sqlite3.Error as exc:
            return [(False, _infra(exc))] * len(ops)
        outcomes: list[_Outcome] = []
        broken: BaseException | None = None
        for index, op in enumerate(ops):
            savepoint = savepoints and op.kind is _Kind.WRITE
            changes = conn.total_changes
            try:
                if savepoint:
                    conn.execute(_SAVEPOINT)
                outcomes.append((True, _call(op, conn)))
                if savepoint:
                    conn.execute(_RELEASE_SAVEPOINT)
            except BaseException as exc:
                if not conn.in_transaction:
                    broken = exc
                elif savepoint:
                    try:
                        conn.execute(_ROLLBACK_TO_SAVEPOINT)
                        conn.execute(_RELEASE_SAVEPOINT)
                    except sqlite3.Error as rollback_error:
                        broken = rollback_error
                elif conn.total_changes != changes:
                    conn.execute(_ROLLBACK)
                    return None  # run the batch again, with savepoints
                outcomes.append((False, _translate(exc)))
                if broken is not None:
                    # SQLite rolled the whole transaction back (disk full, I/O error):
                    # what the earlier calls did is gone, and later calls do not run.
                    outcomes.extend((False, _infra(broken)) for _ in ops[index + 1 :])
                    break
        if broken is None:
            try:
                conn.execute(_COMMIT)
            except sqlite3.Error as exc:
                broken = exc
        if broken is not None:
            if conn.in_transaction:
                try:
                    conn.execute(_ROLLBACK)
                except sqlite3.Error:
                    pass
            outcomes = [(False, _infra(broken)) if ok else (ok, value) for ok, value in outcomes]
        return outcomes


def _take_write_lock(conn: sqlite3.Connection, wait_seconds: float, stats: WriteLockStats) -> None:
    """``BEGIN IMMEDIATE``, tried again after short pauses while another connection
    holds the write lock, for up to ``wait_seconds``; counted in ``stats``."""
    stats.transactions += 1
    pause, longest = LOCK_POLL_SECONDS
    held_since: float | None = None  # when the lock was first found held
    try:
        while True:
            try:
                conn.execute(_BEGIN_WRITE)
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                if held_since is None:
                    held_since = time.monotonic()
                    stats.waits += 1
                elif time.monotonic() - held_since >= wait_seconds:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, longest)
    finally:
        if held_since is not None:
            stats.wait_seconds += time.monotonic() - held_since


def _busy(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


_Outcome = tuple[bool, Any]
"""(True, result) or (False, exception) of one call."""


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        error = _infra(exc)
        error.__cause__ = exc
        return error
    return exc


def _deliver(ops: Sequence[_Op], outcomes: Sequence[_Outcome]) -> None:
    """Hand the outcomes to their event loops: one wake-up per loop per batch, not one
    per call (each wake-up is a write to the loop's self-pipe)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], _Outcome]]] = {}
    for op, outcome in zip(ops, outcomes, strict=True):
        by_loop.setdefault(op.loop, []).append((op.future, outcome))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting for these any more


def _settle(settled: list[tuple[asyncio.Future[Any], _Outcome]]) -> None:
    for future, (ok, value) in settled:
        if future.done():
            continue  # cancelled while the call ran
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
