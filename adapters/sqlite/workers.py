"""The worker registry on the ``workers`` table of the SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Final

from adapters.sqlite.codec import iso, time_key
from adapters.sqlite.database import SqliteDatabase, statement
from domain.models import WorkerInfo

_BEAT: Final = (
    "INSERT OR REPLACE INTO workers (worker_id, host, pid, concurrency, in_flight,"
    " started_at, last_seen, expires_key, heartbeat_seconds) VALUES (:worker_id, :host,"
    " :pid, :concurrency, :in_flight, :started_at, :last_seen, :expires_key,"
    " :heartbeat_seconds)"
)
_FORGET_DEAD: Final = "DELETE FROM workers WHERE expires_key < ?"
_REMOVE: Final = "DELETE FROM workers WHERE worker_id = ?"
_LIVE: Final = (
    "SELECT worker_id, host, pid, concurrency, in_flight, started_at, last_seen, "
    "heartbeat_seconds FROM workers WHERE expires_key > ? "
    "ORDER BY started_at, worker_id"
)


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
            "started_at": iso(info.started_at),
            "last_seen": iso(info.last_seen),
            "expires_key": time_key(info.live_until),
            "heartbeat_seconds": info.heartbeat_seconds,
        }
        forgotten = time_key(info.last_seen - timedelta(seconds=ttl_seconds))

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_BEAT, row)
            conn.execute(_FORGET_DEAD, (forgotten,))

        await self._db.write(run)

    async def remove(self, worker_id: str) -> None:
        await self._db.write(statement(_REMOVE, (worker_id,)))

    async def live(self, now: datetime) -> list[WorkerInfo]:
        params = (time_key(now),)
        rows = await self._db.read(lambda conn: conn.execute(_LIVE, params).fetchall())
        return [
            WorkerInfo(
                worker_id=row["worker_id"],
                host=row["host"],
                pid=row["pid"],
                concurrency=row["concurrency"],
                in_flight=row["in_flight"],
                started_at=datetime.fromisoformat(row["started_at"]),
                last_seen=datetime.fromisoformat(row["last_seen"]),
                heartbeat_seconds=row["heartbeat_seconds"],
            )
            for row in rows
        ]
