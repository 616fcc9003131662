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
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from adapters.sqlite.database_thread import MAX_OPS_PER_TRANSACTION, DatabaseThread
from adapters.sqlite.schema import DEPENDENCY
from adapters.sqlite.transaction import Kind, Op, call, infra, run_guarded, settle
from adapters.sqlite.write_lock import (
    DEFAULT_WRITE_LOCK_WAIT_SECONDS,
    WriteLockStats,
    try_write_lock,
)
from domain.errors import InfrastructureError
from domain.ports import Clock

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
"""How long the statements of a read transaction or of a call run alone (VACUUM) wait
on a lock (SQLite's busy handler): a read while another process checkpoints, a VACUUM
while another process writes. Write transactions poll for the write lock instead."""
CHECKPOINT_EVERY: Final = 64
"""Write transactions of the event loop's lane between two checkpoints asked of the
database's thread: neither connection checkpoints by itself, since on the loop's that
would make the loop wait for an fsync."""

_NO_BUSY_TIMEOUT: Final = "PRAGMA busy_timeout = 0"
_SYNCHRONOUS: Final = "PRAGMA synchronous = {mode}"
_FOREIGN_KEYS_ON: Final = "PRAGMA foreign_keys = ON"
_NO_AUTOCHECKPOINT: Final = "PRAGMA wal_autocheckpoint = 0"
_CHECKPOINT: Final = "PRAGMA wal_checkpoint(PASSIVE)"
_USER_VERSION: Final = "PRAGMA user_version"
_SET_USER_VERSION: Final = "PRAGMA user_version = {version:d}"
_PING: Final = "SELECT 1"
_VACUUM: Final = "VACUUM"
_TRUNCATE_WAL: Final = "PRAGMA wal_checkpoint(TRUNCATE)"


def statement(
    sql: str, params: Sequence[Any], *, many: bool = False
) -> Callable[[sqlite3.Connection], None]:
    """An operation that runs one statement and returns nothing (never a cursor)."""

    def run(conn: sqlite3.Connection) -> None:
        cursor = conn.executemany(sql, params) if many else conn.execute(sql, params)
        cursor.close()

    return run


def _checkpoint_calls() -> list[tuple[Callable[[sqlite3.Connection], None], Kind]]:
    """A checkpoint (run alone), then a write of one unchanged page when it copied the
    whole WAL: the writer that starts the WAL from its beginning again syncs the WAL's
    header, and this way that writer is the thread, not the loop."""
    complete: list[bool] = []

    def checkpoint(conn: sqlite3.Connection) -> None:
        row = conn.execute(_CHECKPOINT).fetchone()
        complete.append(row["busy"] == 0 and 0 < row["log"] == row["checkpointed"])

    def restart(conn: sqlite3.Connection) -> None:
        if any(complete):
            version = conn.execute(_USER_VERSION).fetchone()["user_version"]
            conn.execute(_SET_USER_VERSION.format(version=int(version))).close()

    return [(checkpoint, Kind.ALONE), (restart, Kind.WRITE)]


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
        self.lock_stats = WriteLockStats()
        self._closed = False
        # The event loop's lane (see the module's docstring).
        lane = writes_on_loop and self.synchronous == "NORMAL"
        self._lane_loop: asyncio.AbstractEventLoop | None = None
        self._lane_conn: sqlite3.Connection | None = None
        self._lane_lock = threading.Lock()  # the lane's connection and list, vs close()
        self._pending: list[Op] = []
        self._handed = 0  # calls the lane handed to the thread, counted (by the lane)
        self._since_checkpoint = 0
        self._thread = DatabaseThread(
            path,
            synchronous=self.synchronous,
            busy_timeout_ms=busy_timeout_ms,
            write_lock_wait_seconds=write_lock_wait_seconds,
            lock_stats=self.lock_stats,
            autocheckpoint=not lane,
            on_counted_done=self._wake,
        )
        self.schema_version_found = self._thread.schema_version_found
        if lane:
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
            self._thread.put([op])
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
        """Run the calls already made (gathered or queued), then close the connections.
        Safe from any thread."""
        with self._lane_lock:
            if self._closed:
                return
            self._closed = True
            gathered = list(self._pending)
            self._pending.clear()  # a flush running elsewhere finds nothing left
            self._thread.put(gathered)
            if self._lane_conn is not None:
                self._lane_conn.close()
                self._lane_conn = None
        self._thread.stop()

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
        with self._lane_lock:
            previous = self._lane_loop
            if previous is not None and not previous.is_closed():
                return False
            stale = list(self._pending)
            self._pending.clear()
            self._hand_over(stale)
            self._lane_loop = loop
            return True

    def _wake(self) -> None:
        """On the thread, once it has run calls the lane handed it: the lane's loop
        runs what it gathered meanwhile."""
        loop = self._lane_loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._flush)
            except RuntimeError:
                pass  # the loop is closed

    def _flush(self) -> None:
        """Run what the loop gathered, in order. While the thread has yet to run calls
        the lane handed it, the gathered calls wait here (the loop does not): the thread
        calls this again once it has run them."""
        try:
            while self._handed == self._thread.counted_done:
                with self._lane_lock:
                    pending = self._pending
                    if not pending:
                        return
                    batch = pending[:MAX_OPS_PER_TRANSACTION]
                    del pending[:MAX_OPS_PER_TRANSACTION]
                self._run_on_loop(batch)
        except BaseException:
            if self._pending:  # not left behind: nothing else would run them
                asyncio.get_running_loop().call_soon(self._flush)
            raise

    def _run_on_loop(self, batch: list[Op]) -> None:
        live = [op for op in batch if not op.future.cancelled()]
        kinds = {op.kind for op in live}
        if Kind.ALONE in kinds or Kind.BULK in kinds:
            self._hand_over(live)
        elif Kind.WRITE not in kinds:
            self._thread.put(live)  # reads keep busy_timeout; nothing waits for them
        else:
            with self._lane_lock:
                conn = self._lane_conn
                outcomes = None if conn is None else run_guarded(conn, live, self._begin_on_loop)
            if outcomes is None:  # the lock is held elsewhere, or close() has begun
                self._hand_over(live)
            else:
                settle([(op.future, outcome) for op, outcome in zip(live, outcomes, strict=True)])
                self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self._ask_checkpoint(asyncio.get_running_loop())

    def _begin_on_loop(self, conn: sqlite3.Connection, write: bool) -> bool:
        assert write  # read-only batches go to the thread
        return try_write_lock(conn, self.lock_stats)

    def _hand_over(self, ops: list[Op]) -> None:
        """To the thread, counted: the lane's next calls wait until it has run them."""
        if ops:
            self._handed += len(ops)
            self._thread.put(ops, counted=True)
            if any(op.kind in (Kind.WRITE, Kind.BULK) for op in ops):
                self._since_checkpoint += 1  # the thread commits them, not checkpointing

    def _ask_checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        """A checkpoint on the database's thread, handed over as the lane's writes are:
        the loop's next writes wait until it is done, so it runs between two
        transactions, copies the whole WAL into the file, and the WAL starts from its
        beginning again (as with SQLite's own checkpoint after a commit)."""
        calls = [Op(fn, kind, loop.create_future(), loop) for fn, kind in _checkpoint_calls()]
        for op in calls:
            op.future.add_done_callback(_outcome_seen)
        self._hand_over(calls)
        self._since_checkpoint = 0
