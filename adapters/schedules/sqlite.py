"""``SqliteScheduleStore``: the ScheduleStore port on the ``schedules`` table."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Final

from adapters.schedules.record import dumps, loads
from adapters.sqlite.codec import time_key
from adapters.sqlite.database import SqliteDatabase, statement
from domain.errors import InvalidInput, ScheduleNotFound
from domain.limits import MAX_SCHEDULES
from domain.schedules import Schedule

_EXISTS: Final = "SELECT 1 FROM schedules WHERE name = ?"
_COUNT: Final = "SELECT count(*) AS n FROM schedules"
_PUT: Final = "INSERT OR REPLACE INTO schedules (name, body, fired_through_key) VALUES (?, ?, ?)"
_GET: Final = "SELECT body, fired_through_key FROM schedules WHERE name = ?"
_LIST: Final = "SELECT body, fired_through_key FROM schedules ORDER BY name"
_DELETE: Final = "DELETE FROM schedules WHERE name = ?"
_MARK_FIRED: Final = (
    "UPDATE schedules SET fired_through_key = ? WHERE name = ?"
    " AND (fired_through_key IS NULL OR fired_through_key < ?)"
)


def _schedule(row: sqlite3.Row) -> Schedule:
    key = row["fired_through_key"]
    return loads(row["body"], None if key is None else datetime.fromisoformat(key))


class SqliteScheduleStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def put(self, schedule: Schedule) -> bool:
        through = None if schedule.fired_through is None else time_key(schedule.fired_through)
        values = (schedule.name, dumps(schedule), through)

        def run(conn: sqlite3.Connection) -> bool:
            new = conn.execute(_EXISTS, (schedule.name,)).fetchone() is None
            if new and conn.execute(_COUNT).fetchone()["n"] >= MAX_SCHEDULES:
                raise InvalidInput("name", f"at most {MAX_SCHEDULES} schedules can be stored")
            conn.execute(_PUT, values)
            return new

        return await self._db.write(run)

    async def get(self, name: str) -> Schedule | None:
        row = await self._db.read(lambda conn: conn.execute(_GET, (name,)).fetchone())
        return None if row is None else _schedule(row)

    async def list(self) -> list[Schedule]:
        rows = await self._db.read(lambda conn: conn.execute(_LIST).fetchall())
        return [_schedule(row) for row in rows]

    async def delete(self, name: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            if conn.execute(_DELETE, (name,)).rowcount == 0:
                raise ScheduleNotFound(name)

        await self._db.write(run)

    async def mark_fired(self, name: str, through: datetime) -> None:
        key = time_key(through)
        await self._db.write(statement(_MARK_FIRED, (key, name, key)))
