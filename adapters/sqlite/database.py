"""The connections to one SQLite file: the event loop's, and a thread's for whatever
would make the loop wait.

Calls from the loop that first used the database are gathered while the loop runs its
other callbacks, then run together in one ``BEGIN IMMEDIATE ... COMMIT`` on the loop's
own connection (one commit for many small writes, and no hand-over of the GIL to another
thread around every statement). That connection never waits: its ``busy_timeout`` is 0,
it never checkpoints, and it is not used with ``synchronous = FULL`` (whose commits
fsync). When the write lock is held elsewhere (another process; a VACUUM), the calls go
to the database's thread instead, which waits for the lock; so do reads that are not
part of a write batch, calls run alone, and calls from other event loops. Until the
thread has run the writes handed to it, later writes go there too, so a loop's writes
commit in the order they were made.

A call that raises (a lost race, a duplicate id) rolls back only its own changes: when
it had changed rows, the batch is run again with a SAVEPOINT per call. A caller hears
of success only after the commit.

Several processes may share the file: WAL lets readers run beside the writer, and every
write transaction starts with ``BEGIN IMMEDIATE``, so claims and compare-and-set
transitions are atomic across processes (adapters/sqlite/write_lock.py).
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from adapters.sqlite.schema import DEPENDENCY, migrate
from adapters.sqlite.transaction import (
    Kind,
    Op,
    Outcome,
    call,
    deliver,
    infra,
    run_transaction,
    settle,
    translate,
)
from adapters.sqlite.write_lock import (
    DEFAULT_WRITE_LOCK_WAIT_SECONDS,
    WriteLockStats,
    take_write_lock,
    try_write_lock,
)
from domain.errors import InfrastructureError
from domain.ports import Clock

T = TypeVar("T")

MAX_OPS_PER_TRANSACTION: Final = 512
"""Upper bound on how many waiting calls one combined transaction runs."""
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
"""How long the statements of a read transaction or of a call run alone (VACUUM) wait
on a lock (SQLite's busy handler): a read while another process checkpoints, a VACUUM
while another process writes. Write transactions poll for the write lock instead."""
CHECKPOINT_EVERY: Final = 64
"""Write transactions committed on the event loop's connection between two checkpoints
asked of the database's thread (``PRAGMA wal_checkpoint(PASSIVE)``): the loop's
connection never checkpoints, which would make the loop wait for an fsync."""

_BUSY_TIMEOUT: Final = "PRAGMA busy_timeout = {ms:d}"
_NO_BUSY_TIMEOUT: Final = "PRAGMA busy_timeout = 0"
_JOURNAL_MODE_WAL: Final = "PRAGMA journal_mode = WAL"
_SYNCHRONOUS: Final = "PRAGMA synchronous = {mode}"
_FOREIGN_KEYS_ON: Final = "PRAGMA foreign_keys = ON"
_NO_AUTOCHECKPOINT: Final = "PRAGMA wal_autocheckpoint = 0"
_CHECKPOINT: Final = "PRAGMA wal_checkpoint(PASSIVE)"
_PING: Final = "SELECT 1"
_VACUUM: Final = "VACUUM"
_TRUNCATE_WAL: Final = "PRAGMA wal_checkpoint(TRUNCATE)"
_BEGIN_READ: Final = "BEGIN"


def statement(
    sql: str, params: Sequence[Any], *, many: bool = False
) -> Callable[[sqlite3.Connection], None]:
    """An operation that runs one statement and returns nothing (never a cursor)."""

    def run(conn: sqlite3.Connection) -> None:
        cursor = conn.executemany(sql, params) if many else conn.execute(sql, params)
        cursor.close()

    return run


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute(_CHECKPOINT).close()


def _outcome_seen(future: asyncio.Future[Any]) -> None:
    """Nobody awaits a checkpoint: a failed one is tried again after the next writes."""
    if not future.cancelled():
        future.exception()


class SqliteDatabase:
    """The connections to one SQLite file, and the thread that runs what would wait."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "NORMAL",
        clock: Clock,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        write_lock_wait_seconds: float = DEFAULT_WRITE_LOCK_WAIT_SECONDS,
        writes_on_loop: bool = True,
    ) -> None:
        """``writes_on_loop``: False runs every call on the database's thread (as with
        ``synchronous = FULL``)."""
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
        self._ops: queue.SimpleQueue[Op | None] = queue.SimpleQueue()  # None: stop
        self._closed = False
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="taskq-sqlite", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            self._thread.join()
            raise infra(self._open_error) from self._open_error
        # The event loop's lane (see the module's docstring).
        self._lane_loop: asyncio.AbstractEventLoop | None = None
        self._lane_conn: sqlite3.Connection | None = None
        self._lane_lock = threading.Lock()  # the lane's connection: a flush or close()
        self._pending: list[Op] = []
        self._handed = 0  # calls the lane handed to the thread (written by the lane)
        self._handed_done = 0  # of those, run by the thread (written by the thread)
        self._since_checkpoint = 0
        if writes_on_loop and self.synchronous == "NORMAL":
            try:
                self._lane_conn = self._connect_lane()
            except sqlite3.Error as exc:
                self.close()
                raise infra(exc) from exc

    # -- calling in ------------------------------------------------------------------

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a read transaction (a consistent snapshot)."""
        return await self._submit(fn, Kind.READ)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a write transaction, possibly shared with other calls; what
        ``fn`` raises rolls back only what ``fn`` did."""
        return await self._submit(fn, Kind.WRITE)

    async def bulk_write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``write`` for a call that spends milliseconds inside SQLite (deleting a
        thousand rows): it runs on the database's thread, where SQLite works while the
        loop runs on, instead of holding the loop."""
        return await self._submit(fn, Kind.BULK)

    async def alone(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` outside any transaction (for VACUUM and checkpoints)."""
        return await self._submit(fn, Kind.ALONE)

    async def _submit(self, fn: Callable[[sqlite3.Connection], T], kind: Kind) -> T:
        if self._closed:
            raise InfrastructureError(DEPENDENCY, f"database {self.path} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        op = Op(fn, kind, future, loop)
        if self._lane_conn is not None and (loop is self._lane_loop or self._take_lane(loop)):
            pending = self._pending
            pending.append(op)
            if len(pending) == 1:
                loop.call_soon(self._flush)
        else:
            self._ops.put(op)
        return await future

    async def ping(self) -> None:
        await self.read(lambda conn: conn.execute(_PING).fetchone())

    async def vacuum(self) -> None:
        """Rebuild the file to give back the space of deleted rows, then truncate the WAL."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_VACUUM)
            conn.execute(_TRUNCATE_WAL)

        await self.alone(run)

    async def on_each_connection(self, fn: Callable[[sqlite3.Connection], object]) -> None:
        """Run ``fn`` outside any transaction on each connection, the thread's and then
        the loop's: for a setting SQLite keeps per connection (a PRAGMA that takes no
        lock, such as ``max_page_count``)."""
        await self.alone(fn)
        with self._lane_lock:
            if self._lane_conn is not None:
                call(fn, self._lane_conn)

    def close(self) -> None:
        """Finish the calls already submitted, then close the connections."""
        if self._closed:
            return
        self._closed = True
        with self._lane_lock:
            pending, self._pending = self._pending, []
            for op in pending:  # gathered, not yet run: the thread runs them
                self._ops.put(op)
            if self._lane_conn is not None:
                self._lane_conn.close()
                self._lane_conn = None
        self._ops.put(None)
        self._thread.join()

    # -- the event loop's lane -------------------------------------------------------

    def _connect_lane(self) -> sqlite3.Connection:
        # Opened after the thread's connection has migrated the file and set WAL. Used
        # by one thread at a time (the lane's loop, or close()), under _lane_lock.
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(_NO_BUSY_TIMEOUT)
        conn.execute(_SYNCHRONOUS.format(mode=self.synchronous))
        conn.execute(_FOREIGN_KEYS_ON)
        conn.execute(_NO_AUTOCHECKPOINT)
        return conn

    def _take_lane(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether ``loop`` becomes the lane's loop: the first loop to call, or the next
        one once that loop is closed (what it gathered and never ran goes to the thread)."""
        previous = self._lane_loop
        if previous is not None and not previous.is_closed():
            return False
        with self._lane_lock:
            stale, self._pending = self._pending, []
            for op in stale:
                op.counted = True
                self._handed += 1
                self._ops.put(op)
        self._lane_loop = loop
        return True

    def _flush(self) -> None:
        """Run what the loop gathered, in order. While the thread has yet to run calls
        the lane handed it, the gathered calls wait here (the loop does not): the thread
        calls this again once it has run them."""
        pending = self._pending
        while pending and self._handed == self._handed_done:
            batch = pending[:MAX_OPS_PER_TRANSACTION]
            del pending[:MAX_OPS_PER_TRANSACTION]
            self._run_on_loop(batch)

    def _run_on_loop(self, batch: list[Op]) -> None:
        live = [op for op in batch if not op.future.cancelled()]
        kinds = {op.kind for op in live}
        if not live:
            return
        if Kind.ALONE in kinds or Kind.BULK in kinds:
            self._hand_over(live, counted=True)
            return
        if Kind.WRITE not in kinds:
            self._hand_over(live, counted=False)  # reads keep busy_timeout
            return
        with self._lane_lock:
            conn = self._lane_conn
            try:
                outcomes = (
                    None if conn is None else run_transaction(conn, live, self._begin_on_loop)
                )
            except Exception as exc:  # a failed ROLLBACK: tell every caller, run on
                outcomes = [(False, infra(exc))] * len(live)
        if outcomes is None:  # the lock is held elsewhere, or close() has begun
            self._hand_over(live, counted=True)
            return
        settle([(op.future, outcome) for op, outcome in zip(live, outcomes, strict=True)])
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self._ask_checkpoint(asyncio.get_running_loop())

    def _begin_on_loop(self, conn: sqlite3.Connection, write: bool) -> bool:
        assert write  # read-only batches go to the thread
        return try_write_lock(conn, self.lock_stats)

    def _hand_over(self, ops: list[Op], *, counted: bool) -> None:
        for op in ops:
            op.counted = counted
            self._ops.put(op)
        if counted:
            self._handed += len(ops)

    def _ask_checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        """A checkpoint of what the loop's connection wrote, on the database's thread.
        It is handed over as the lane's writes are, so the loop's next writes go to the
        thread behind it until it is done: run between two transactions, it copies the
        whole WAL into the file, and the next writer starts the WAL from its beginning
        again (as SQLite's own checkpoint after a commit does). The loop never waits."""
        self._since_checkpoint = 0
        future: asyncio.Future[Any] = loop.create_future()
        future.add_done_callback(_outcome_seen)
        self._hand_over([Op(_checkpoint, Kind.ALONE, future, loop)], counted=True)

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
            left: list[Op] = []
            while True:
                try:
                    item = self._ops.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    left.append(item)
            closed = InfrastructureError(DEPENDENCY, f"database {self.path} is closed")
            deliver(left, [(False, closed)] * len(left))

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Op]) -> None:
        live = [op for op in batch if not op.future.cancelled()]
        self._done([op for op in batch if op not in live], [])
        grouped = [op for op in live if op.kind is not Kind.ALONE]
        if grouped:
            outcomes = run_transaction(conn, grouped, self._begin)
            assert outcomes is not None  # the thread waits for the lock
            self._done(grouped, outcomes)
        for op in live:
            if op.kind is Kind.ALONE:
                try:
                    self._wait_when_busy(conn, True)
                    outcome: Outcome = (True, call(op.fn, conn))
                except BaseException as exc:
                    outcome = (False, translate(exc))
                self._done([op], [outcome])

    def _done(self, ops: list[Op], outcomes: list[Outcome]) -> None:
        """Hand the outcomes of ``ops`` (none for calls cancelled before they ran) to
        their loops; wake the lane's loop when it was waiting for some of them."""
        counted = sum(op.counted for op in ops)
        self._handed_done += counted  # before any caller hears of it
        if outcomes:
            deliver(ops, outcomes)
        lane = self._lane_loop
        if counted and lane is not None:
            try:
                lane.call_soon_threadsafe(self._flush)
            except RuntimeError:
                pass  # the loop is closed

    def _wait_when_busy(self, conn: sqlite3.Connection, waits: bool) -> None:
        """Set the connection's busy_timeout: none for write transactions (the write lock
        is polled for, and once it is held no statement waits), ``busy_timeout_ms`` for
        reads and calls run alone. Changed only when it must, so that back-to-back write
        transactions run no PRAGMA at all."""
        if waits != self._waits_when_busy:
            conn.execute(self._busy_timeout if waits else _NO_BUSY_TIMEOUT)
            self._waits_when_busy = waits

    def _begin(self, conn: sqlite3.Connection, write: bool) -> bool:
        self._wait_when_busy(conn, not write)
        if write:
            take_write_lock(conn, self.write_lock_wait_seconds, self.lock_stats)
        else:
            conn.execute(_BEGIN_READ)
        return True
