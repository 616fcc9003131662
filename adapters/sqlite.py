"""SQLite adapters: the embedded, durable backend for one machine.

One ``SqliteDatabase`` owns the file. Every call runs on its single database thread, so
the event loop never blocks on SQLite. That thread combines whatever calls are waiting
into one ``BEGIN IMMEDIATE ... COMMIT`` (one commit for many small writes), with a
SAVEPOINT per call so a call that raises (a lost race, a duplicate id) rolls back only
its own changes. A caller hears of success only after the commit.

Several processes may share the file: WAL lets readers run beside the writer, and every
write transaction starts with ``BEGIN IMMEDIATE`` under ``busy_timeout``, so claims and
compare-and-set transitions are atomic across processes.

Time on the queue is the Clock's ``now()`` as epoch seconds, not ``monotonic()``: a
monotonic clock is per process, and every process sharing the file must agree.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import json
import os
import queue
import secrets
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from adapters import envelope
from adapters.cursor import decode_cursor, encode_cursor
from domain.errors import (
    ConcurrencyConflict,
    IdempotencyKeyReused,
    InfrastructureError,
    InvalidCursor,
    TaskAlreadyExists,
    TaskNotFound,
)
from domain.models import DeadLetter, Delivery, Page, QueueDepth, Task, TaskStatus, WorkerInfo
from domain.ports import Clock

T = TypeVar("T")

MAX_BATCH: Final = 10
"""The SQS batch limit, kept so the SQLite queue fails where SQS would."""
MAX_DELAY_SECONDS: Final = 900
"""The SQS limit on DelaySeconds."""
POLL_INTERVAL_SECONDS: Final = 0.05
"""How often an idle long poll looks at the file for messages sent by other processes
(sends from this process wake it at once)."""
MAX_OPS_PER_TRANSACTION: Final = 512
"""Upper bound on how many waiting calls one combined transaction runs."""
DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
PURGE_CHUNK: Final = 1000
"""Rows deleted per transaction by a retention purge."""
BEGIN_ATTEMPTS: Final = 5
"""How many times BEGIN IMMEDIATE is tried (each waiting up to busy_timeout) before the
calls of that transaction fail with InfrastructureError."""

_DEPENDENCY: Final = "sqlite"


# -- schema ---------------------------------------------------------------------------

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: tasks, maintained counts, the queue and its dead letters.
    (
        """CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_key TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            max_attempts INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            retry_count INTEGER NOT NULL,
            timeout_seconds REAL,
            started_at TEXT,
            finished_at TEXT,
            error TEXT,
            result TEXT NOT NULL,
            lease_token TEXT,
            lease_expires_at TEXT,
            run_at TEXT,
            version INTEGER NOT NULL
        )""",
        "CREATE INDEX tasks_by_status ON tasks (status, created_key, id)",
        "CREATE TABLE task_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
        *(f"INSERT INTO task_counts (status, n) VALUES ('{s.value}', 0)" for s in TaskStatus),
        # The counts move in the same transaction as the task row, whatever writes it.
        """CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
            UPDATE task_counts SET n = n + 1 WHERE status = NEW.status;
        END""",
        """CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks
            WHEN OLD.status <> NEW.status BEGIN
            UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
            UPDATE task_counts SET n = n + 1 WHERE status = NEW.status;
        END""",
        """CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
            UPDATE task_counts SET n = n - 1 WHERE status = OLD.status;
        END""",
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            body TEXT NOT NULL,
            visible_at REAL NOT NULL,
            receive_count INTEGER NOT NULL DEFAULT 0,
            receipt TEXT,
            sent_at REAL NOT NULL
        )""",
        "CREATE INDEX messages_by_visibility ON messages (visible_at, id)",
        """CREATE TABLE dead_letters (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL,
            body TEXT NOT NULL,
            receive_count INTEGER NOT NULL,
            sent_at REAL NOT NULL,
            dead_at REAL NOT NULL,
            reason TEXT NOT NULL
        )""",
    ),
    # 2: the worker registry, and retention (finished tasks expire by finished_key).
    (
        """CREATE TABLE workers (
            worker_id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            concurrency INTEGER NOT NULL,
            in_flight INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            expires_key TEXT NOT NULL
        )""",
        "ALTER TABLE tasks ADD COLUMN finished_key TEXT",
        "UPDATE tasks SET finished_key = finished_at WHERE finished_at IS NOT NULL",
        "CREATE INDEX tasks_by_finished ON tasks (finished_key) WHERE finished_key IS NOT NULL",
    ),
    # 3: Task fields without a column of their own (added to the model later) as JSON.
    ("ALTER TABLE tasks ADD COLUMN extra TEXT NOT NULL DEFAULT '{}'",),
    # 4: idempotency keys of submissions.
    (
        """CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            task_id TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            expires_key TEXT NOT NULL
        ) WITHOUT ROWID""",
    ),
    # 5: held tasks (stored without a message, due beyond the queue's delay limit) by
    # due time: ``held_key`` is the run_at key while held, else NULL. Tasks held by an
    # older engine (PENDING, last written more than 900 s before their run_at) join it.
    (
        "ALTER TABLE tasks ADD COLUMN held_key TEXT",
        "CREATE INDEX tasks_by_held_due ON tasks (held_key, id) WHERE held_key IS NOT NULL",
        """UPDATE tasks SET held_key = run_at, extra = json_set(extra, '$.held', json('true'))
            WHERE status = 'PENDING' AND run_at IS NOT NULL
            AND (julianday(run_at) - julianday(updated_at)) * 86400.0 > 900""",
    ),
    # 6: a dead letter leaves with its task: when the task is retried (FAILED -> any
    # other status) or deleted (retention purge). task_id is read from the envelope;
    # a poison body (not JSON) has none and stays until redriven.
    (
        """ALTER TABLE dead_letters ADD COLUMN task_id TEXT GENERATED ALWAYS AS
            (CASE WHEN json_valid(body) THEN json_extract(body, '$.task_id') END) VIRTUAL""",
        "CREATE INDEX dead_letters_by_task ON dead_letters (task_id)",
        """CREATE TRIGGER tasks_retry_drops_dead_letters AFTER UPDATE OF status ON tasks
            WHEN OLD.status = 'FAILED' AND NEW.status <> 'FAILED' BEGIN
            DELETE FROM dead_letters WHERE task_id = NEW.id;
        END""",
        """CREATE TRIGGER tasks_delete_drops_dead_letters AFTER DELETE ON tasks BEGIN
            DELETE FROM dead_letters WHERE task_id = OLD.id;
        END""",
        # Dead letters left behind before this version: of purged tasks, and of tasks
        # retried since that then finished (a PENDING one may have been moved by its
        # receive count instead: kept).
        """DELETE FROM dead_letters WHERE task_id IS NOT NULL AND (
            task_id IN (SELECT id FROM tasks WHERE status IN ('COMPLETED', 'CANCELLED'))
            OR NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.id = dead_letters.task_id))""",
    ),
    # 7: a worker's heartbeat interval: it is live until one interval plus a margin after
    # its last beat (WorkerInfo.live_until, kept in expires_key), not for the whole TTL.
    # The default is frozen history (a migration never changes): workers then beat every
    # 10 s, and every beat rewrites the row.
    ("ALTER TABLE workers ADD COLUMN heartbeat_seconds REAL NOT NULL DEFAULT 10",),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION`` in one write transaction; return the
    version found. Safe when several processes open the same file at once."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise InfrastructureError(
                _DEPENDENCY,
                f"schema version {found} is newer than this engine's ({SCHEMA_VERSION})",
            )
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


# -- the database thread --------------------------------------------------------------


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


def _infra(exc: BaseException) -> InfrastructureError:
    return InfrastructureError(_DEPENDENCY, f"{type(exc).__name__}: {exc}")


def _statement(
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
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        if path == ":memory:" or path.startswith("file:"):
            raise ValueError(f"path must be a file path, not {path!r}")
        self.path = path
        self.synchronous = synchronous.upper()
        self.clock = clock
        self.busy_timeout_ms = busy_timeout_ms
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
            raise InfrastructureError(_DEPENDENCY, f"database {self.path} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._ops.put(_Op(fn, kind, future, loop))
        return await future

    async def ping(self) -> None:
        await self.read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def vacuum(self) -> None:
        """Rebuild the file to give back the space of deleted rows, then truncate the WAL."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

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
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise sqlite3.OperationalError(f"could not switch {self.path} to WAL (got {mode})")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
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
            closed = InfrastructureError(_DEPENDENCY, f"database {self.path} is closed")
            _deliver(left, [(False, closed)] * len(left))

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        live = [op for op in batch if not op.future.cancelled()]
        grouped = [op for op in live if op.kind is not _Kind.ALONE]
        if grouped:
            _deliver(grouped, self._run_transaction(conn, grouped))
        for op in live:
            if op.kind is _Kind.ALONE:
                try:
                    outcome: _Outcome = (True, _call(op, conn))
                except BaseException as exc:
                    outcome = (False, _translate(exc))
                _deliver([op], [outcome])

    def _begin(self, conn: sqlite3.Connection, write: bool) -> None:
        statement = "BEGIN IMMEDIATE" if write else "BEGIN"
        for attempt in itertools.count(1):
            try:
                conn.execute(statement)
                return
            except sqlite3.OperationalError as exc:
                # busy_timeout has already waited; another process holds the lock long.
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt >= BEGIN_ATTEMPTS:
                    raise
                time.sleep(0.01 * attempt)

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
                    conn.execute("SAVEPOINT op")
                outcomes.append((True, _call(op, conn)))
                if savepoint:
                    conn.execute("RELEASE op")
            except BaseException as exc:
                if not conn.in_transaction:
                    broken = exc
                elif savepoint:
                    try:
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                    except sqlite3.Error as rollback_error:
                        broken = rollback_error
                elif conn.total_changes != changes:
                    conn.execute("ROLLBACK")
                    return None  # run the batch again, with savepoints
                outcomes.append((False, _translate(exc)))
                if broken is not None:
                    # SQLite rolled the whole transaction back (disk full, I/O error):
                    # what the earlier calls did is gone, and later calls do not run.
                    outcomes.extend((False, _infra(broken)) for _ in ops[index + 1 :])
                    break
        if broken is None:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                broken = exc
        if broken is not None:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            outcomes = [(False, _infra(broken)) if ok else (ok, value) for ok, value in outcomes]
        return outcomes


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


# -- encoding -------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds")


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _key(value: datetime) -> str:
    """A string that sorts in time order: UTC, always with microseconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_COLUMN_FIELDS: Final = (
    "id",
    "type",
    "payload",
    "status",
    "created_at",
    "updated_at",
    "max_attempts",
    "attempts",
    "retry_count",
    "timeout_seconds",
    "started_at",
    "finished_at",
    "error",
    "result",
    "lease_token",
    "lease_expires_at",
    "run_at",
    "version",
    "extra",
)
_TASK_COLUMNS: Final = ", ".join(_COLUMN_FIELDS)
_EXTRA_FIELDS: Final = tuple(f.name for f in fields(Task) if f.name not in _COLUMN_FIELDS)
"""Task fields stored in the ``extra`` JSON column, so a field added to the model is
kept without a schema change (datetimes tagged so they come back as datetimes)."""


def _encode_extra(task: Task) -> str:
    extra: dict[str, Any] = {}
    for name in _EXTRA_FIELDS:
        value = getattr(task, name)
        extra[name] = {"$dt": _iso(value)} if isinstance(value, datetime) else value
    return _json(extra)


def _decode_extra(text: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for name, value in json.loads(text).items():
        if name not in _EXTRA_FIELDS:
            continue  # written by a newer model; this one has no such field
        if isinstance(value, dict) and set(value) == {"$dt"}:
            value = _from_iso(value["$dt"])
        extra[name] = value
    return extra


def _task_row(task: Task) -> tuple[Any, ...]:
    return (
        task.id,
        task.type,
        _json(task.payload),
        task.status.value,
        _iso(task.created_at),
        _iso(task.updated_at),
        task.max_attempts,
        task.attempts,
        task.retry_count,
        task.timeout_seconds,
        _iso(task.started_at),
        _iso(task.finished_at),
        task.error,
        _json(task.result),
        task.lease_token,
        _iso(task.lease_expires_at),
        _iso(task.run_at),
        task.version,
        _encode_extra(task),
    )


def _task_from_row(row: Sequence[Any]) -> Task:
    created_at = datetime.fromisoformat(row[4])
    updated_at = datetime.fromisoformat(row[5])
    return Task(
        id=row[0],
        type=row[1],
        payload=json.loads(row[2]),
        status=TaskStatus(row[3]),
        created_at=created_at,
        updated_at=updated_at,
        max_attempts=row[6],
        attempts=row[7],
        retry_count=row[8],
        timeout_seconds=row[9],
        started_at=_from_iso(row[10]),
        finished_at=_from_iso(row[11]),
        error=row[12],
        result=json.loads(row[13]),
        lease_token=row[14],
        lease_expires_at=_from_iso(row[15]),
        run_at=_from_iso(row[16]),
        version=row[17],
        **_decode_extra(row[18]),
    )


# -- the repository -------------------------------------------------------------------


class SqliteTaskRepository:
    """Tasks in the ``tasks`` table; counts per status in ``task_counts``, kept by
    triggers in the same transaction as every insert, status change and delete.

    With ``retention_seconds``, finished tasks (COMPLETED, FAILED, CANCELLED) whose
    ``finished_at`` is older than that are hidden from ``get`` and ``list_by_status``
    at once, and deleted by ``purge_expired`` (which ``add`` also runs at most once per
    ``purge_interval_seconds``). Counts include expired tasks until they are purged.
    """

    def __init__(
        self,
        db: SqliteDatabase,
        *,
        retention_seconds: float | None = None,
        purge_interval_seconds: float = 60.0,
    ) -> None:
        if retention_seconds is not None and retention_seconds <= 0:
            raise ValueError("retention_seconds must be positive")
        self._db = db
        self.retention_seconds = retention_seconds
        self._purge_interval = purge_interval_seconds
        self._next_purge = float("-inf")

    def _cutoff(self, now: datetime | None = None) -> str | None:
        if self.retention_seconds is None:
            return None
        now = now or self._db.clock.now()
        return _key(now - timedelta(seconds=self.retention_seconds))

    async def add(self, task: Task) -> None:
        insert = _inserter(task)
        await self._db.write(insert)
        await self._maybe_purge()

    async def add_idempotent(
        self, task: Task, *, key: str, fingerprint: str, expires_at: datetime, now: datetime
    ) -> str | None:
        insert = _inserter(task)
        now_key, expires_key = _key(now), _key(expires_at)

        def run(conn: sqlite3.Connection) -> str | None:
            claim = conn.execute(
                "SELECT task_id, fingerprint, expires_key FROM idempotency_keys WHERE key = ?",
                (key,),
            ).fetchone()
            if claim is not None and claim[2] > now_key:
                if claim[1] != fingerprint:
                    raise IdempotencyKeyReused(key)
                return str(claim[0])
            insert(conn)
            conn.execute(
                "INSERT OR REPLACE INTO idempotency_keys (key, task_id, fingerprint, expires_key)"
                " VALUES (?, ?, ?, ?)",
                (key, task.id, fingerprint, expires_key),
            )
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
            row = conn.execute(
                f"SELECT {_TASK_COLUMNS}, finished_key FROM tasks WHERE id = ?", (task_id,)
            ).fetchone()
            if row is None or (cutoff is not None and row[19] is not None and row[19] <= cutoff):
                raise TaskNotFound(task_id)
            return _task_from_row(row)

        return await self._db.read(run)

    async def transition(self, new: Task, *, expected: Task) -> None:
        if new.id != expected.id:
            raise ValueError("a transition must keep the task id")
        if new.version <= expected.version:
            raise ValueError("a transition must increase the version")
        values = _task_row(new)[1:]

        def run(conn: sqlite3.Connection) -> None:
            updated = conn.execute(
                "UPDATE tasks SET type=?, payload=?, status=?, created_at=?, updated_at=?, "
                "max_attempts=?, attempts=?, retry_count=?, timeout_seconds=?, started_at=?, "
                "finished_at=?, error=?, result=?, lease_token=?, lease_expires_at=?, "
                "run_at=?, version=?, extra=?, created_key=?, finished_key=?, held_key=? "
                "WHERE id=? AND status=? AND version=?",
                (
                    *values,
                    _key(new.created_at),
                    _finished_key(new),
                    _held_key(new),
                    expected.id,
                    expected.status.value,
                    expected.version,
                ),
            ).rowcount
            if updated == 1:
                return
            current = conn.execute(
                "SELECT status, version FROM tasks WHERE id = ?", (expected.id,)
            ).fetchone()
            if current is None:
                raise TaskNotFound(expected.id)
            raise ConcurrencyConflict(
                expected.id,
                f"expected {expected.status.value} v{expected.version}, "
                f"found {current[0]} v{current[1]}",
            )

        await self._db.write(run)

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

        def run(conn: sqlite3.Connection) -> list[Any]:
            sql = f"SELECT {_TASK_COLUMNS}, created_key FROM tasks WHERE status = ?"
            params: list[Any] = [status.value]
            if after is not None:
                sql += " AND (created_key, id) < (?, ?)"
                params.extend(after)
            if cutoff is not None:
                sql += " AND (finished_key IS NULL OR finished_key > ?)"
                params.append(cutoff)
            sql += " ORDER BY created_key DESC, id DESC LIMIT ?"
            params.append(limit + 1)
            return conn.execute(sql, params).fetchall()

        rows = await self._db.read(run)
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor({"c": page[-1][19], "i": page[-1][0]})
        return Page(items=[_task_from_row(r) for r in page], next_cursor=next_cursor)

    async def list_due_held(self, before: datetime, *, limit: int) -> list[Task]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # held_key sorts in time order; the partial index holds held tasks only.
        upper = _key(before)

        def run(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE held_key IS NOT NULL"
                " AND held_key <= ? ORDER BY held_key, id LIMIT ?",
                (upper, limit),
            ).fetchall()

        return [_task_from_row(row) for row in await self._db.read(run)]

    async def count_by_status(self) -> dict[TaskStatus, int]:
        rows = await self._db.read(
            lambda conn: conn.execute("SELECT status, n FROM task_counts").fetchall()
        )
        counts = dict.fromkeys(TaskStatus, 0)
        for status, n in rows:
            counts[TaskStatus(status)] = n
        return counts

    async def purge_expired(self, now: datetime) -> int:
        """Delete finished tasks past retention (and expired idempotency keys); return
        how many tasks. Counts follow. Deletes in chunks of ``PURGE_CHUNK`` rows, each
        its own transaction, so a large purge does not hold up other calls."""
        cutoff = self._cutoff(now)
        now_key = _key(now)

        def drop_keys(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys"
                " WHERE expires_key <= ? LIMIT ?)",
                (now_key, PURGE_CHUNK),
            ).rowcount

        def drop_tasks(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks"
                " WHERE finished_key IS NOT NULL AND finished_key <= ? LIMIT ?)",
                (cutoff, PURGE_CHUNK),
            ).rowcount

        while await self._db.write(drop_keys) == PURGE_CHUNK:
            pass
        if cutoff is None:
            return 0
        purged = 0
        while True:
            deleted = await self._db.write(drop_tasks)
            purged += deleted
            if deleted < PURGE_CHUNK:
                return purged

    async def vacuum(self) -> None:
        await self._db.vacuum()

    async def ping(self) -> None:
        await self._db.ping()


def _inserter(task: Task) -> Callable[[sqlite3.Connection], None]:
    row = (*_task_row(task), _key(task.created_at), _finished_key(task), _held_key(task))

    def insert(conn: sqlite3.Connection) -> None:
        try:
            conn.execute(
                f"INSERT INTO tasks ({_TASK_COLUMNS}, created_key, finished_key, held_key) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                row,
            ).close()
        except sqlite3.IntegrityError:
            raise TaskAlreadyExists(task.id) from None

    return insert


def _held_key(task: Task) -> str | None:
    """The due-time key of a held task (indexed); None for every other task."""
    if not task.held or task.run_at is None or task.status is not TaskStatus.PENDING:
        return None
    return _key(task.run_at)


def _finished_key(task: Task) -> str | None:
    if not task.status.is_final:
        return None
    return _key(task.finished_at or task.updated_at)


# -- the queue ------------------------------------------------------------------------


def _check_delay(delay_seconds: float) -> None:
    if not 0 <= delay_seconds <= MAX_DELAY_SECONDS:
        raise ValueError(f"delay_seconds must be between 0 and {MAX_DELAY_SECONDS}")


def _message_id(delivery: Delivery) -> int | None:
    try:
        return int(delivery.message_id)
    except ValueError:
        return None


class SqliteTaskQueue:
    """The queue in the ``messages`` table, with the memory queue's semantics.

    A receive claims messages in one ``BEGIN IMMEDIATE`` transaction and gives each a
    fresh random receipt, so two processes never hold the same lease, and an ack,
    release or extend with an older receipt changes nothing.
    """

    max_batch = MAX_BATCH

    def __init__(self, db: SqliteDatabase, clock: Clock, *, max_receive_count: int) -> None:
        if max_receive_count < 1:
            raise ValueError("max_receive_count must be at least 1")
        self._db = db
        self._clock = clock
        self.max_receive_count = max_receive_count
        self.poll_interval = POLL_INTERVAL_SECONDS
        self._wakeup = asyncio.Event()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    # -- sending ---------------------------------------------------------------------

    async def send(self, task_id: str, *, delay_seconds: int = 0) -> None:
        await self._put([(envelope.encode(task_id), delay_seconds)])

    async def send_raw(self, body: str, *, delay_seconds: int = 0) -> None:
        """Put any body on the queue (tests use it to inject poison messages)."""
        await self._put([(body, delay_seconds)])

    async def send_batch(self, items: Sequence[tuple[str, int]]) -> None:
        """All items in one transaction: every one is sent, or none and this raises."""
        await self._put([(envelope.encode(task_id), delay) for task_id, delay in items])

    async def _put(self, bodies: Sequence[tuple[str, float]]) -> None:
        for _, delay in bodies:
            _check_delay(delay)
        if not bodies:
            return
        now = self._now()
        rows = [(body, now + delay, now) for body, delay in bodies]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO messages (body, visible_at, sent_at) VALUES (?, ?, ?)", rows
            )

        await self._db.write(run)
        self._wakeup.set()

    # -- receiving -------------------------------------------------------------------

    async def receive(
        self, *, max_messages: int, visibility_timeout: float, wait_seconds: float
    ) -> list[Delivery]:
        if not 1 <= max_messages <= MAX_BATCH:
            raise ValueError(f"max_messages must be between 1 and {MAX_BATCH}")
        # As in the memory queue, the wait is real time; visibility is on the Clock.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        woken = True
        while True:
            self._wakeup.clear()
            deliveries: list[Delivery] = []
            # After a quiet poll interval, look before taking the write lock.
            if woken or await self._any_visible():
                deliveries = await self._claim(max_messages, visibility_timeout)
            remaining = deadline - loop.time()
            if deliveries or remaining <= 0:
                return deliveries
            try:
                await asyncio.wait_for(self._wakeup.wait(), min(remaining, self.poll_interval))
                woken = True
            except TimeoutError:
                woken = False

    async def _any_visible(self) -> bool:
        now = self._now()
        row = await self._db.read(
            lambda conn: conn.execute(
                "SELECT 1 FROM messages WHERE visible_at <= ? LIMIT 1", (now,)
            ).fetchone()
        )
        return row is not None

    async def _claim(self, max_messages: int, visibility_timeout: float) -> list[Delivery]:
        now = self._now()
        visible_at = now + max(0.0, visibility_timeout)
        limit = self.max_receive_count

        def run(conn: sqlite3.Connection) -> list[Delivery]:
            out: list[Delivery] = []
            while len(out) < max_messages:
                rows = conn.execute(
                    "SELECT id, body, receive_count, sent_at FROM messages "
                    "WHERE visible_at <= ? ORDER BY visible_at, id LIMIT ?",
                    (now, max_messages - len(out)),
                ).fetchall()
                if not rows:
                    break
                for message_id, body, receive_count, sent_at in rows:
                    if receive_count >= limit:
                        # The redrive policy: dead-lettered instead of delivered.
                        _move_to_dead_letters(
                            conn, message_id, body, receive_count, sent_at, now, "max receives"
                        )
                        continue
                    count = receive_count + 1
                    receipt = f"{message_id}:{count}:{secrets.token_hex(8)}"
                    conn.execute(
                        "UPDATE messages SET receive_count = ?, receipt = ?, visible_at = ? "
                        "WHERE id = ?",
                        (count, receipt, visible_at, message_id),
                    )
                    out.append(
                        Delivery(
                            receipt=receipt,
                            task_id=envelope.decode(body),
                            receive_count=count,
                            message_id=str(message_id),
                            raw_body=body,
                        )
                    )
            return out

        return await self._db.write(run)

    # -- settling --------------------------------------------------------------------

    async def ack(self, delivery: Delivery) -> None:
        await self.ack_batch([delivery])

    async def ack_batch(self, deliveries: Sequence[Delivery]) -> None:
        keys = [
            (message_id, d.receipt)
            for d in deliveries
            if (message_id := _message_id(d)) is not None
        ]
        if not keys:
            return
        await self._db.write(
            _statement("DELETE FROM messages WHERE id = ? AND receipt = ?", keys, many=True)
        )

    async def release(self, delivery: Delivery, *, delay_seconds: float = 0) -> None:
        await self._set_visibility(delivery, delay_seconds)
        self._wakeup.set()

    async def extend(self, delivery: Delivery, *, visibility_timeout: float) -> None:
        await self._set_visibility(delivery, visibility_timeout)

    async def _set_visibility(self, delivery: Delivery, seconds: float) -> None:
        message_id = _message_id(delivery)
        if message_id is None:
            return
        visible_at = self._now() + max(0.0, seconds)
        await self._db.write(
            _statement(
                "UPDATE messages SET visible_at = ? WHERE id = ? AND receipt = ?",
                (visible_at, message_id, delivery.receipt),
            )
        )

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        message_id = _message_id(delivery)
        if message_id is None:
            return
        now = self._now()

        def run(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT body, receive_count, sent_at FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is not None:
                _move_to_dead_letters(conn, message_id, row[0], row[1], row[2], now, reason)

        await self._db.write(run)

    # -- inspection ------------------------------------------------------------------

    async def depth(self) -> QueueDepth:
        now = self._now()

        def run(conn: sqlite3.Connection) -> QueueDepth:
            visible = conn.execute(
                "SELECT COUNT(*) FROM messages WHERE visible_at <= ?", (now,)
            ).fetchone()[0]
            in_flight, delayed = conn.execute(
                "SELECT COUNT(receipt), COUNT(*) - COUNT(receipt) FROM messages "
                "WHERE visible_at > ?",
                (now,),
            ).fetchone()
            return QueueDepth(visible=visible, in_flight=in_flight, delayed=delayed)

        return await self._db.read(run)

    async def dead_letter_count(self) -> int:
        row = await self._db.read(
            lambda conn: conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        )
        return int(row[0])

    async def list_dead_letters(self, *, limit: int) -> list[DeadLetter]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT message_id, body, receive_count FROM dead_letters ORDER BY seq LIMIT ?",
                (max(0, limit),),
            ).fetchall()
        )
        return [DeadLetter(m, envelope.decode(body), n, body) for m, body, n in rows]

    async def redrive_dead_letters(self, *, limit: int | None = None) -> int:
        now = self._now()

        def run(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT seq, body FROM dead_letters ORDER BY seq LIMIT ?",
                (-1 if limit is None else max(0, limit),),
            ).fetchall()
            conn.executemany(
                "INSERT INTO messages (body, visible_at, sent_at) VALUES (?, ?, ?)",
                [(body, now, now) for _, body in rows],
            )
            conn.executemany("DELETE FROM dead_letters WHERE seq = ?", [(s,) for s, _ in rows])
            return len(rows)

        moved = await self._db.write(run)
        if moved:
            self._wakeup.set()
        return moved

    async def ping(self) -> None:
        await self._db.ping()


def _move_to_dead_letters(
    conn: sqlite3.Connection,
    message_id: int,
    body: str,
    receive_count: int,
    sent_at: float,
    now: float,
    reason: str,
) -> None:
    conn.execute(
        "INSERT INTO dead_letters (message_id, body, receive_count, sent_at, dead_at, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (str(message_id), body, receive_count, sent_at, now, reason),
    )
    conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))


# -- the worker registry --------------------------------------------------------------


class SqliteWorkerRegistry:
    """Workers' last heartbeats. ``expires_key`` is when a worker stops counting as
    live; rows of workers dead for longer than the TTL are deleted by the next beat."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def beat(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        row = {
            "worker_id": info.worker_id,
            "host": info.host,
            "pid": info.pid,
            "concurrency": info.concurrency,
            "in_flight": info.in_flight,
            "started_at": _iso(info.started_at),
            "last_seen": _iso(info.last_seen),
            "expires_key": _key(info.live_until),
            "heartbeat_seconds": info.heartbeat_seconds,
        }
        forgotten = _key(info.last_seen - timedelta(seconds=ttl_seconds))

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT OR REPLACE INTO workers ({', '.join(row)}) "
                f"VALUES ({', '.join(':' + name for name in row)})",
                row,
            )
            conn.execute("DELETE FROM workers WHERE expires_key < ?", (forgotten,))

        await self._db.write(run)

    async def remove(self, worker_id: str) -> None:
        await self._db.write(_statement("DELETE FROM workers WHERE worker_id = ?", (worker_id,)))

    async def live(self, now: datetime) -> list[WorkerInfo]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT worker_id, host, pid, concurrency, in_flight, started_at, last_seen, "
                "heartbeat_seconds FROM workers WHERE expires_key > ? "
                "ORDER BY started_at, worker_id",
                (_key(now),),
            ).fetchall()
        )
        return [
            WorkerInfo(
                worker_id=worker_id,
                host=host,
                pid=pid,
                concurrency=concurrency,
                in_flight=in_flight,
                started_at=datetime.fromisoformat(started_at),
                last_seen=datetime.fromisoformat(last_seen),
                heartbeat_seconds=heartbeat_seconds,
            )
            for (
                worker_id,
                host,
                pid,
                concurrency,
                in_flight,
                started_at,
                last_seen,
                heartbeat_seconds,
            ) in rows
        ]
