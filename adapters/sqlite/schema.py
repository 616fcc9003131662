"""The schema of the SQLite file and the migrations that bring a file to it.

The version is ``PRAGMA user_version``: the number of migrations a file has had. A
migration is never edited once released: a file made by an older engine is brought up
to date by running the ones it lacks, in order.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from domain.errors import InfrastructureError
from domain.models import TaskStatus

DEPENDENCY: Final = "sqlite"
"""The dependency ``InfrastructureError`` names for this backend."""

_READ_VERSION: Final = "PRAGMA user_version"
_WRITE_VERSION: Final = "PRAGMA user_version = {version:d}"
_BEGIN: Final = "BEGIN IMMEDIATE"
_COMMIT: Final = "COMMIT"
_ROLLBACK: Final = "ROLLBACK"


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
    # 8: an operator drops or redrives one dead letter by its message id.
    ("CREATE INDEX dead_letters_by_message ON dead_letters (message_id)",),
    # 9: PENDING tasks by due time (Task.due_at), for the age of the oldest due task:
    # ``due_key`` is its UTC key while PENDING, else NULL. Rows written before this
    # version get it from their ISO times (converted to UTC, microseconds kept).
    (
        "ALTER TABLE tasks ADD COLUMN due_key TEXT",
        "CREATE INDEX tasks_by_due ON tasks (due_key) WHERE due_key IS NOT NULL",
        """UPDATE tasks SET due_key = (
            SELECT strftime('%Y-%m-%dT%H:%M:%S', due) || substr(due, 20, 7) || '+00:00'
            FROM (SELECT CASE WHEN started_at IS NOT NULL THEN updated_at
                ELSE coalesce(run_at, created_at) END AS due)
            ) WHERE status = 'PENDING'""",
    ),
    # 10: what a running handler last reported of its progress (TaskContext.progress):
    # JSON ``{"percent", "message", "updated_at"}``, NULL until it reports.
    ("ALTER TABLE tasks ADD COLUMN progress TEXT",),
    # 11 (append-only, after any other): a message's priority (Priority.rank: 0 high,
    # 1 default, 2 low). A receive reads each priority's visible messages by due time.
    (
        "ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 1",
        "CREATE INDEX messages_by_priority ON messages (priority, visible_at, id)",
    ),
    # 12 (append-only, after any other): periodic schedules; ``fired_through_key``
    # (the UTC time key fires are settled through) apart from the definition, since
    # concurrent schedulers only ever move it forward.
    (
        """CREATE TABLE schedules (
            name TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            fired_through_key TEXT
        ) WITHOUT ROWID""",
    ),
    # 13 (append-only, after any other; flow control): a task type's run-time settings,
    # the permits of its running tasks and its rate tokens, as JSON
    # (domain/flow_control.py); ``version`` is what a compare-and-set compares.
    (
        """CREATE TABLE flow_control (
            type TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            version INTEGER NOT NULL
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION`` in one write transaction; return the
    version found. Safe when several processes open the same file at once."""
    conn.execute(_BEGIN)
    try:
        found = _user_version(conn)
        if found > SCHEMA_VERSION:
            raise InfrastructureError(
                DEPENDENCY,
                f"schema version {found} is newer than this engine's ({SCHEMA_VERSION})",
            )
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(_WRITE_VERSION.format(version=SCHEMA_VERSION))
        conn.execute(_COMMIT)
    except BaseException:
        conn.execute(_ROLLBACK)
        raise
    return found


def _user_version(conn: sqlite3.Connection) -> int:
    """The file's schema version, read by column name whatever ``conn``'s row factory."""
    cursor = conn.cursor()
    try:
        cursor.row_factory = sqlite3.Row
        row = cursor.execute(_READ_VERSION).fetchone()
        return int(row["user_version"])
    finally:
        cursor.close()
