"""``SqliteFlowControlStore``: the task types' flow records in the ``flow_control``
table, changed by compare-and-set on ``version`` (atomic across the processes sharing
the file: every write runs under ``BEGIN IMMEDIATE``)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Final

from adapters.sqlite.database import SqliteDatabase
from domain.errors import FlowRecordConflict
from domain.flow_control import FlowRecord

_GET: Final = "SELECT type, state, version FROM flow_control WHERE type = ?"
_ALL: Final = "SELECT type, state, version FROM flow_control"
_INSERT: Final = (
    "INSERT INTO flow_control (type, state, version) VALUES (?, ?, 1) ON CONFLICT DO NOTHING"
)
_UPDATE: Final = (
    "UPDATE flow_control SET state = ?, version = version + 1 WHERE type = ? AND version = ?"
)


def _record(row: sqlite3.Row) -> FlowRecord:
    return FlowRecord.from_state(row["type"], int(row["version"]), row["state"])


class SqliteFlowControlStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def get(self, task_type: str) -> FlowRecord | None:
        row = await self._db.read(lambda conn: conn.execute(_GET, (task_type,)).fetchone())
        return None if row is None else _record(row)

    async def all(self) -> list[FlowRecord]:
        rows = await self._db.read(lambda conn: conn.execute(_ALL).fetchall())
        return [_record(row) for row in rows]

    async def put(self, record: FlowRecord) -> FlowRecord:
        state = record.state_json()

        def run(conn: sqlite3.Connection) -> None:
            if record.version == 0:
                cursor = conn.execute(_INSERT, (record.task_type, state))
            else:
                cursor = conn.execute(_UPDATE, (state, record.task_type, record.version))
            changed = cursor.rowcount
            cursor.close()
            if changed != 1:
                raise FlowRecordConflict(record.task_type)

        await self._db.write(run)
        return replace(record, version=record.version + 1)
