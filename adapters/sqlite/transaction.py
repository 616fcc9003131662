"""Running a batch of waiting calls in one transaction on one connection, and handing
their outcomes back to the event loops that wait for them.

Used by ``SqliteDatabase`` on either of its connections: the database thread's, and the
event loop's (which gives up, untouched, when the write lock is held elsewhere).
"""

from __future__ import annotations

import asyncio
import enum
import sqlite3
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from adapters.sqlite.schema import DEPENDENCY
from domain.errors import InfrastructureError

_COMMIT: Final = "COMMIT"
_ROLLBACK: Final = "ROLLBACK"
_SAVEPOINT: Final = "SAVEPOINT op"
_RELEASE_SAVEPOINT: Final = "RELEASE op"
_ROLLBACK_TO_SAVEPOINT: Final = "ROLLBACK TO op"


class Kind(enum.Enum):
    READ = "read"
    WRITE = "write"
    BULK = "bulk"  # a write that spends milliseconds inside SQLite: on the thread
    ALONE = "alone"  # outside any transaction, by itself (VACUUM)


_WRITES: Final = frozenset({Kind.WRITE, Kind.BULK})


@dataclass(slots=True, eq=False)
class Op:
    fn: Callable[[sqlite3.Connection], Any]
    kind: Kind
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    counted: bool = False
    """Handed to the database's thread by the event loop's lane, which keeps its writes
    in order by waiting until the thread has run every such call."""


Outcome = tuple[bool, Any]
"""(True, result) or (False, exception) of one call."""

Begin = Callable[[sqlite3.Connection, bool], bool]
"""Begins a transaction (a write one when the flag is set); False when it could not
because another connection holds the write lock and the caller will not wait."""


def infra(exc: BaseException) -> InfrastructureError:
    return InfrastructureError(DEPENDENCY, f"{type(exc).__name__}: {exc}")


def run_transaction(conn: sqlite3.Connection, ops: list[Op], begin: Begin) -> list[Outcome] | None:
    """Every call of ``ops`` in one transaction; None when ``begin`` could not begin
    (nothing ran)."""
    write = any(op.kind in _WRITES for op in ops)
    # Most calls either succeed or raise before changing anything (a failed
    # statement undoes itself), so the batch first runs without a SAVEPOINT per
    # call. Only when a call raises after changing rows is the batch rolled back and
    # run again with savepoints, so that the call's changes alone are undone.
    try:
        return _attempt(conn, ops, write, begin, savepoints=False)
    except _RunAgain:
        return _attempt(conn, ops, write, begin, savepoints=True)


def run_guarded(conn: sqlite3.Connection, ops: list[Op], begin: Begin) -> list[Outcome] | None:
    """``run_transaction``, where an error it lets out (a ROLLBACK that failed) fails
    every call of the batch instead, and leaves the connection outside any transaction
    so that the next batch can begin."""
    try:
        return run_transaction(conn, ops, begin)
    except BaseException as exc:
        if conn.in_transaction:
            try:
                conn.execute(_ROLLBACK)
            except sqlite3.Error:
                pass
        if not isinstance(exc, Exception):
            raise  # an interrupt: the process is on its way out
        return [(False, infra(exc))] * len(ops)


class _RunAgain(Exception):
    """A call raised after changing rows: the batch was rolled back, to be run again
    with savepoints."""


def _attempt(
    conn: sqlite3.Connection, ops: list[Op], write: bool, begin: Begin, *, savepoints: bool
) -> list[Outcome] | None:
    """The outcomes; None when the transaction could not begin."""
    try:
        if not begin(conn, write):
            return None
    except sqlite3.Error as exc:
        return [(False, infra(exc))] * len(ops)
    outcomes: list[Outcome] = []
    broken: BaseException | None = None
    for index, op in enumerate(ops):
        savepoint = savepoints and op.kind in _WRITES
        changes = conn.total_changes
        try:
            if savepoint:
                conn.execute(_SAVEPOINT)
            outcomes.append((True, call(op.fn, conn)))
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
                raise _RunAgain() from None
            outcomes.append((False, translate(exc)))
            if broken is not None:
                # SQLite rolled the whole transaction back (disk full, I/O error):
                # what the earlier calls did is gone, and later calls do not run.
                outcomes.extend((False, infra(broken)) for _ in ops[index + 1 :])
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
        outcomes = [(False, infra(broken)) if ok else (ok, value) for ok, value in outcomes]
    return outcomes


def call(fn: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection) -> Any:
    """``fn``'s result, which must not be a cursor."""
    try:
        result = fn(conn)
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


def translate(exc: BaseException) -> BaseException:
    """What the caller gets for ``exc``: InfrastructureError for SQLite's errors, a
    RuntimeError for a StopIteration (a future refuses one)."""
    if isinstance(exc, sqlite3.Error):
        error: BaseException = infra(exc)
    elif isinstance(exc, StopIteration):
        error = RuntimeError(f"a database operation raised StopIteration: {exc!r}")
    else:
        return exc
    error.__cause__ = exc
    return error


def deliver(ops: Sequence[Op], outcomes: Sequence[Outcome]) -> None:
    """Hand the outcomes to their event loops from another thread: one wake-up per loop
    per batch, not one per call (each wake-up is a write to the loop's self-pipe)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]] = {}
    for op, outcome in zip(ops, outcomes, strict=True):
        by_loop.setdefault(op.loop, []).append((op.future, outcome))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(settle, settled)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting for these any more


def settle(settled: Sequence[tuple[asyncio.Future[Any], Outcome]]) -> None:
    """Set the futures' outcomes (on their loop's thread)."""
    for future, (ok, value) in settled:
        if future.done():
            continue  # cancelled while the call ran
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
