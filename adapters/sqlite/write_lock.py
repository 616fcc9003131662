"""Taking the SQLite file's write lock (``BEGIN IMMEDIATE``), and what taking it met.

Another process may hold the lock (the API and workers on one file). The database's
thread then polls for it every fraction of a millisecond instead of sleeping in SQLite's
busy handler, whose waits grow to tens of milliseconds. The event loop's thread never
waits for it: it tries once, and hands its calls to the database's thread when the lock
is held.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Final

DEFAULT_WRITE_LOCK_WAIT_SECONDS: Final = 25.0
"""How long a write transaction waits for the file's write lock, held by another
process, before the calls of that transaction fail with InfrastructureError."""
LOCK_POLL_SECONDS: Final = (0.00005, 0.0005)
"""The first and the longest pause between two tries of ``BEGIN IMMEDIATE`` (doubling in
between). SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms: with an API and two
workers on one file, that left the writers asleep a third of the time after the lock
was free (``python -m benchmarks.sustained --only split``)."""

_BEGIN_WRITE: Final = "BEGIN IMMEDIATE"


@dataclass(slots=True)
class WriteLockStats:
    """What this database's write transactions met, since it opened (read by the
    metrics). Each count has one writer: the database's thread or the event loop's."""

    on_thread: int = 0
    """Write transactions begun on the database's thread."""
    on_loop: int = 0
    """Write transactions begun on the event loop's thread (the lock was free)."""
    waits: int = 0
    """Of those, how many found the write lock held by another connection."""
    wait_seconds: float = 0.0
    """Time spent waiting for the write lock, those that got it and those that gave up."""

    @property
    def transactions(self) -> int:
        """Write transactions begun (each runs every call waiting at the time)."""
        return self.on_thread + self.on_loop


def take_write_lock(conn: sqlite3.Connection, wait_seconds: float, stats: WriteLockStats) -> None:
    """``BEGIN IMMEDIATE``, tried again after short pauses while another connection
    holds the write lock, for up to ``wait_seconds``; counted in ``stats``."""
    stats.on_thread += 1
    pause, longest = LOCK_POLL_SECONDS
    held_since: float | None = None  # when the lock was first found held
    try:
        while True:
            try:
                conn.execute(_BEGIN_WRITE)
                return
            except sqlite3.OperationalError as exc:
                if not busy(exc):
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


def try_write_lock(conn: sqlite3.Connection, stats: WriteLockStats) -> bool:
    """``BEGIN IMMEDIATE`` once, without waiting (the connection's busy_timeout is 0):
    False when another connection holds the lock."""
    try:
        conn.execute(_BEGIN_WRITE)
    except sqlite3.OperationalError as exc:
        if busy(exc):
            return False
        raise
    stats.on_loop += 1
    return True


def busy(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
