"""The database's thread: a connection of its own, for every call that might wait.

It takes every call waiting in its queue at once and runs them in order: consecutive
calls in one transaction (``run_transaction``), a call run alone (VACUUM, a checkpoint)
by itself between them. Write transactions poll for the file's write lock
(``take_write_lock``); reads and calls run alone keep SQLite's ``busy_timeout``.
Outcomes go back to each caller's loop with one wake-up per loop per transaction.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Final

from adapters.sqlite.schema import DEPENDENCY, migrate
from adapters.sqlite.transaction import (
    Kind,
    Op,
    Outcome,
    call,
    deliver,
    infra,
    run_guarded,
    translate,
)
from adapters.sqlite.write_lock import WriteLockStats, take_write_lock
from domain.errors import InfrastructureError

MAX_OPS_PER_TRANSACTION: Final = 512
"""Upper bound on how many waiting calls one combined transaction runs."""

_BUSY_TIMEOUT: Final = "PRAGMA busy_timeout = {ms:d}"
_NO_BUSY_TIMEOUT: Final = "PRAGMA busy_timeout = 0"
_JOURNAL_MODE_WAL: Final = "PRAGMA journal_mode = WAL"
_SYNCHRONOUS: Final = "PRAGMA synchronous = {mode}"
_FOREIGN_KEYS_ON: Final = "PRAGMA foreign_keys = ON"
_NO_AUTOCHECKPOINT: Final = "PRAGMA wal_autocheckpoint = 0"
_BEGIN_READ: Final = "BEGIN"


class DatabaseThread:
    """The thread and its connection (opened, and the file migrated, on construction)."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: str,
        busy_timeout_ms: int,
        write_lock_wait_seconds: float,
        lock_stats: WriteLockStats,
        autocheckpoint: bool,
        on_counted_done: Callable[[], None],
    ) -> None:
        """``autocheckpoint``: False when checkpoints are asked for explicitly.
        ``on_counted_done``: called on the thread after it has run calls put with
        ``counted``."""
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.write_lock_wait_seconds = write_lock_wait_seconds
        self.lock_stats = lock_stats
        self.schema_version_found = 0
        self.counted_done = 0
        """Calls put with ``counted`` that have run (written by the thread only)."""
        self._autocheckpoint = autocheckpoint
        self._on_counted_done = on_counted_done
        self._busy_timeout = _BUSY_TIMEOUT.format(ms=int(busy_timeout_ms))
        self._waits_when_busy = True  # the connection's busy_timeout is busy_timeout_ms
        self._ops: queue.SimpleQueue[Op | None] = queue.SimpleQueue()  # None: stop
        self._put_lock = threading.Lock()  # nothing is put after the stop
        self._stopped = False
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="taskq-sqlite", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            self._thread.join()
            raise infra(self._open_error) from self._open_error

    def put(self, ops: list[Op], *, counted: bool = False) -> None:
        """Queue ``ops`` in order; once stopped, they fail at once (database closed)."""
        with self._put_lock:
            if not self._stopped:
                for op in ops:
                    op.counted = counted
                    self._ops.put(op)
                return
        deliver(ops, [(False, self._closed_error())] * len(ops))

    def stop(self) -> None:
        """Run what was put before, then close the connection."""
        with self._put_lock:
            if self._stopped:
                return
            self._stopped = True
            self._ops.put(None)
        self._thread.join()

    def _closed_error(self) -> InfrastructureError:
        return InfrastructureError(DEPENDENCY, f"database {self.path} is closed")

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
        if not self._autocheckpoint:
            conn.execute(_NO_AUTOCHECKPOINT)
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
            left: list[Op] = []  # put after a failure ended this loop: cannot run now
            while True:
                try:
                    item = self._ops.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    left.append(item)
            deliver(left, [(False, self._closed_error())] * len(left))

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Op]) -> None:
        """The calls in order: consecutive ones in one transaction, those run alone by
        themselves between them. Calls cancelled before they run do not run."""
        live: list[Op] = []
        skipped: list[Op] = []
        for op in batch:
            (skipped if op.future.cancelled() else live).append(op)
        self._done(skipped, [])
        grouped: list[Op] = []
        for op in live:
            if op.kind is not Kind.ALONE:
                grouped.append(op)
                continue
            self._run_grouped(conn, grouped)
            grouped = []
            try:
                self._wait_when_busy(conn, True)
                outcome: Outcome = (True, call(op.fn, conn))
            except BaseException as exc:
                outcome = (False, translate(exc))
            self._done([op], [outcome])
        self._run_grouped(conn, grouped)

    def _run_grouped(self, conn: sqlite3.Connection, ops: list[Op]) -> None:
        if ops:
            outcomes = run_guarded(conn, ops, self._begin)
            assert outcomes is not None  # the thread waits for the lock
            self._done(ops, outcomes)

    def _done(self, ops: list[Op], outcomes: list[Outcome]) -> None:
        """Hand the outcomes of ``ops`` (none for calls cancelled before they ran) to
        their loops, after counting those put with ``counted``."""
        counted = sum(op.counted for op in ops)
        self.counted_done += counted  # before any caller hears of it
        if outcomes:
            deliver(ops, outcomes)
        if counted:
            self._on_counted_done()

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
