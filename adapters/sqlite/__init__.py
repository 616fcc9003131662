"""SQLite adapters: the embedded, durable backend for one machine.

One file holds the tasks, the queue, its dead letters and the worker registry:

- ``database``: ``SqliteDatabase``, the event loop's connection (its lane), which
  gathers the loop's writes into one transaction;
- ``database_thread``: the thread and its connection, for whatever would make the
  loop wait;
- ``transaction``: running such a batch (savepoints when a call fails) and handing the
  outcomes back;
- ``write_lock``: taking the file's write lock (polling when another process holds it);
- ``schema``: the migrations (``MIGRATIONS``, ``SCHEMA_VERSION``, ``migrate``);
- ``codec``: a Task as a row and back, and the time keys that sort;
- ``repository``: ``SqliteTaskRepository`` on ``tasks``, ``task_counts`` and
  ``idempotency_keys``;
- ``queue``: ``SqliteTaskQueue`` on ``messages`` and ``dead_letters``;
- ``workers``: ``SqliteWorkerRegistry`` on ``workers``;
- ``flow_control``: ``SqliteFlowControlStore`` on ``flow_control`` (task types' limits).

Each module keeps its SQL as named constants at its top; rows are ``sqlite3.Row`` and
read by column name. A constant is read where it is defined: to change one in a test,
patch that module (``adapters.sqlite.repository.PURGE_CHUNK``), not this package.
"""

from adapters.sqlite.database import DEFAULT_BUSY_TIMEOUT_MS, SqliteDatabase
from adapters.sqlite.database_thread import MAX_OPS_PER_TRANSACTION
from adapters.sqlite.flow_control import SqliteFlowControlStore
from adapters.sqlite.queue import (
    POLL_INTERVAL_SECONDS,
    SqliteTaskQueue,
)
from adapters.sqlite.repository import PURGE_CHUNK, SqliteTaskRepository
from adapters.sqlite.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from adapters.sqlite.workers import SqliteWorkerRegistry
from adapters.sqlite.write_lock import DEFAULT_WRITE_LOCK_WAIT_SECONDS, WriteLockStats

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "DEFAULT_WRITE_LOCK_WAIT_SECONDS",
    "MAX_OPS_PER_TRANSACTION",
    "MIGRATIONS",
    "POLL_INTERVAL_SECONDS",
    "PURGE_CHUNK",
    "SCHEMA_VERSION",
    "SqliteDatabase",
    "SqliteFlowControlStore",
    "SqliteTaskQueue",
    "SqliteTaskRepository",
    "SqliteWorkerRegistry",
    "WriteLockStats",
    "migrate",
]
