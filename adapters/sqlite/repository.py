"""The task repository on the ``tasks`` table of the SQLite file."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Final

from adapters.cursor import decode_cursor, encode_cursor
from adapters.sqlite.codec import (
    ROW_COLUMNS,
    TASK_COLUMNS,
    changed_columns,
    column_values,
    task_from_row,
    time_key,
)
from adapters.sqlite.database import SqliteDatabase
from domain.errors import (
    ConcurrencyConflict,
    IdempotencyKeyReused,
    InvalidCursor,
    TaskAlreadyExists,
    TaskNotFound,
)
from domain.limits import MAX_REFERENCE_CHARS
from domain.models import JSON, Page, Task, TaskStatus

PURGE_CHUNK: Final = 1000
"""Rows deleted per transaction by a retention purge."""

_COLUMNS: Final = ", ".join(TASK_COLUMNS)

_INSERT_TASK: Final = (
    f"INSERT INTO tasks ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' for _ in ROW_COLUMNS)})"
)
_TASK_STATE: Final = "SELECT status, version FROM tasks WHERE id = ?"
_GET_TASK: Final = f"SELECT {_COLUMNS}, finished_key FROM tasks WHERE id = ?"
_PENDING: Final = TaskStatus.PENDING.value

_LIST_BY_STATUS: Final = f"SELECT {_COLUMNS}, created_key FROM tasks WHERE status = ?"
_AFTER_CURSOR: Final = " AND (created_key, id) < (?, ?)"
_NOT_EXPIRED: Final = " AND (finished_key IS NULL OR finished_key > ?)"
_NEWEST_FIRST: Final = " ORDER BY created_key DESC, id DESC LIMIT ?"
_LIST_DUE_HELD: Final = (
    f"SELECT {_COLUMNS} FROM tasks WHERE held_key IS NOT NULL"
    " AND held_key <= ? ORDER BY held_key, id LIMIT ?"
)
"""``held_key`` sorts in time order; the partial index holds held tasks only."""
_OLDEST_DUE: Final = "SELECT due_key FROM tasks WHERE due_key IS NOT NULL ORDER BY due_key LIMIT 1"
"""One step down the partial index of PENDING tasks by due time."""
_COUNTS: Final = "SELECT status, n FROM task_counts"

_FIND_IDEMPOTENCY_KEY: Final = (
    "SELECT task_id, fingerprint, expires_key FROM idempotency_keys WHERE key = ?"
)
_KEEP_IDEMPOTENCY_KEY: Final = (
    "INSERT OR REPLACE INTO idempotency_keys (key, task_id, fingerprint, expires_key)"
    " VALUES (?, ?, ?, ?)"
)

_PURGE_IDEMPOTENCY_KEYS: Final = (
    "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys"
    " WHERE expires_key <= ? LIMIT ?)"
)
_PURGE_TASKS: Final = (
    "DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks"
    " WHERE finished_key IS NOT NULL AND finished_key <= ? LIMIT ?)"
    f" RETURNING CASE WHEN length(payload) <= {MAX_REFERENCE_CHARS} THEN payload END,"
    f" CASE WHEN length(result) <= {MAX_REFERENCE_CHARS} THEN result END"
)
"""Deletes a chunk and returns the short payloads and results of the deleted rows
(where a claim check's references are: ``on_purge``)."""


class SqliteTaskRepository:
    """Tasks in the ``tasks`` table; counts per status in ``task_counts``, kept by
    triggers in the same transaction as every insert, status change and delete.

    With ``retention_seconds``, finished tasks (COMPLETED, FAILED, CANCELLED) whose
    ``finished_at`` is older than that are hidden from ``get`` and ``list_by_status``
    at once, and deleted by ``purge_expired`` (which ``add`` also runs at most once per
    ``purge_interval_seconds``). Counts include expired tasks until they are purged.
    ``on_purge`` is handed the payloads and results of the purged tasks that are at
    most ``MAX_REFERENCE_CHARS`` long as JSON (the claim check deletes their blobs).
    """

    def __init__(
        self,
        db: SqliteDatabase,
        *,
        retention_seconds: float | None = None,
        purge_interval_seconds: float = 60.0,
        on_purge: Callable[[list[JSON]], Awaitable[None]] | None = None,
    ) -> None:
        if retention_seconds is not None and retention_seconds <= 0:
            raise ValueError("retention_seconds must be positive")
        self._db = db
        self.retention_seconds = retention_seconds
        self._purge_interval = purge_interval_seconds
        self._next_purge = float("-inf")
        self._on_purge = on_purge

    def _cutoff(self, now: datetime | None = None) -> str | None:
        if self.retention_seconds is None:
            return None
        now = now or self._db.clock.now()
        return time_key(now - timedelta(seconds=self.retention_seconds))

    async def add(self, task: Task) -> None:
        insert = _inserter(task)
        await self._db.write(insert)
        await self._maybe_purge()

    async def add_idempotent(
        self, task: Task, *, key: str, fingerprint: str, expires_at: datetime, now: datetime
    ) -> str | None:
        insert = _inserter(task)
        now_key, expires_key = time_key(now), time_key(expires_at)

        def run(conn: sqlite3.Connection) -> str | None:
            claim = conn.execute(_FIND_IDEMPOTENCY_KEY, (key,)).fetchone()
            if claim is not None and claim["expires_key"] > now_key:
                if claim["fingerprint"] != fingerprint:
                    raise IdempotencyKeyReused(key)
                return str(claim["task_id"])
            insert(conn)
            conn.execute(_KEEP_IDEMPOTENCY_KEY, (key, task.id, fingerprint, expires_key))
            return None

        existing = await self._db.write(run)
        if existing is None:
            await self._maybe_purge()
        return existing

    async def _maybe_purge(self) -> None:
        if self.retention_seconds is not None:
            mono = self._db.clock.monotonic()
            if mono >= self._next_purge:
                self._next_purge = mono + self._purge_interval
                await self.purge_expired(self._db.clock.now())

    async def get(self, task_id: str) -> Task:
        cutoff = self._cutoff()

        def run(conn: sqlite3.Connection) -> Task:
            row = conn.execute(_GET_TASK, (task_id,)).fetchone()
            if row is None or _expired(row["finished_key"], cutoff):
                raise TaskNotFound(task_id)
            return task_from_row(row)

        return await self._db.read(run)

    async def transition(self, new: Task, *, expected: Task) -> None:
        update, values = _compare_and_set(new, expected)

        def run(conn: sqlite3.Connection) -> None:
            if conn.execute(update, values).rowcount == 1:
                return
            current = conn.execute(_TASK_STATE, (expected.id,)).fetchone()
            if current is None:
                raise TaskNotFound(expected.id)
            wanted = f"{expected.status.value} v{expected.version}"
            found = f"{current['status']} v{current['version']}"
            raise ConcurrencyConflict(expected.id, f"expected {wanted}, found {found}")

        await self._db.write(run)

    async def claim_pending(
        self, task_id: str, *, lease_token: str, now: datetime, lease_seconds: float
    ) -> Task | None:
        """``ClaimsInOneWrite``: the read, the decision and the compare-and-set in one
        write transaction on the database's thread, so a delivery makes one round trip
        to it instead of a read's and a write's."""

        def run(conn: sqlite3.Connection) -> Task | None:
            row = conn.execute(_GET_TASK, (task_id,)).fetchone()
            if row is None or row["status"] != _PENDING or row["run_at"] is not None:
                return None  # declined: the processor reads it and decides
            current = task_from_row(row)
            claimed = current.claim(lease_token, now, lease_seconds)
            if conn.execute(*_compare_and_set(claimed, current)).rowcount != 1:
                return None
            return claimed

        return await self._db.write(run)

    async def list_by_status(
        self, status: TaskStatus, *, limit: int, cursor: str | None = None
    ) -> Page:
        after: tuple[str, str] | None = None
        if cursor is not None:
            key = decode_cursor(cursor, "c", "i")
            if not isinstance(key["c"], str) or not isinstance(key["i"], str):
                raise InvalidCursor()
            after = (key["c"], key["i"])
        if limit <= 0:
            return Page(items=[], next_cursor=None)
        cutoff = self._cutoff()
        sql = _LIST_BY_STATUS
        params: list[Any] = [status.value]
        if after is not None:
            sql += _AFTER_CURSOR
            params.extend(after)
        if cutoff is not None:
            sql += _NOT_EXPIRED
            params.append(cutoff)
        sql += _NEWEST_FIRST
        params.append(limit + 1)

        rows = await self._db.read(lambda conn: conn.execute(sql, params).fetchall())
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor({"c": last["created_key"], "i": last["id"]})
        return Page(items=[task_from_row(row) for row in page], next_cursor=next_cursor)

    async def list_due_held(self, before: datetime, *, limit: int) -> list[Task]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params = (time_key(before), limit)
        rows = await self._db.read(lambda conn: conn.execute(_LIST_DUE_HELD, params).fetchall())
        return [task_from_row(row) for row in rows]

    async def oldest_due_pending(self, now: datetime) -> datetime | None:
        row = await self._db.read(lambda conn: conn.execute(_OLDEST_DUE).fetchone())
        if row is None:
            return None
        due = datetime.fromisoformat(row["due_key"])
        return due if due <= now else None

    async def count_by_status(self) -> dict[TaskStatus, int]:
        rows = await self._db.read(lambda conn: conn.execute(_COUNTS).fetchall())
        counts = dict.fromkeys(TaskStatus, 0)
        for row in rows:
            counts[TaskStatus(row["status"])] = row["n"]
        return counts

    async def purge_expired(self, now: datetime) -> int:
        """Delete finished tasks past retention (and expired idempotency keys); return
        how many tasks. Counts follow. Deletes in chunks of ``PURGE_CHUNK`` rows, each
        its own transaction, so a large purge does not hold up other calls."""
        cutoff = self._cutoff(now)
        now_key = time_key(now)

        def drop_keys(conn: sqlite3.Connection) -> int:
            return conn.execute(_PURGE_IDEMPOTENCY_KEYS, (now_key, PURGE_CHUNK)).rowcount

        def drop_tasks(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute(_PURGE_TASKS, (cutoff, PURGE_CHUNK)).fetchall()

        while await self._db.bulk_write(drop_keys) == PURGE_CHUNK:
            pass
        if cutoff is None:
            return 0
        purged = 0
        while True:
            rows = await self._db.bulk_write(drop_tasks)
            purged += len(rows)
            if self._on_purge is not None:
                short = [json.loads(text) for row in rows for text in row if text is not None]
                await self._on_purge(short)
            if len(rows) < PURGE_CHUNK:
                return purged

    async def ping(self) -> None:
        await self._db.ping()


def _expired(finished_key: str | None, cutoff: str | None) -> bool:
    return cutoff is not None and finished_key is not None and finished_key <= cutoff


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> str:
    """The compare-and-set UPDATE of ``columns``: no row changes unless the status and
    version are the expected. Made once per set of columns (a handful in practice: one
    per kind of transition). Parameters are bound by position: binding two dozen named
    parameters costs a fifth more than the statement itself."""
    assignments = ", ".join(f"{column}=?" for column in columns)
    return f"UPDATE tasks SET {assignments} WHERE id=? AND status=? AND version=?"


def _compare_and_set(new: Task, expected: Task) -> tuple[str, list[Any]]:
    """The UPDATE that replaces ``expected`` by ``new``, writing only the columns that
    change, and its parameters."""
    if new.id != expected.id:
        raise ValueError("a transition must keep the task id")
    if new.version <= expected.version:
        raise ValueError("a transition must increase the version")
    columns = changed_columns(new, expected)
    values = column_values(new, columns)
    values += (expected.id, expected.status.value, expected.version)
    return _update_statement(columns), values


def _inserter(task: Task) -> Callable[[sqlite3.Connection], None]:
    values = column_values(task, ROW_COLUMNS)

    def insert(conn: sqlite3.Connection) -> None:
        try:
            conn.execute(_INSERT_TASK, values).close()
        except sqlite3.IntegrityError:
            raise TaskAlreadyExists(task.id) from None

    return insert
