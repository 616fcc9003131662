"""SQLite files as an older engine left them, to test what a migration does to them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adapters.sqlite import MIGRATIONS
from adapters.sqlite.codec import task_row
from domain.models import Task


def old_schema_file(path: Path, version: int, tasks: list[Task], newer_columns: list[str]) -> None:
    """A database file at schema ``version`` holding ``tasks``, written without the
    ``newer_columns`` (those later migrations add)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:version]:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    for task in tasks:
        row = task_row(task)
        for column in newer_columns:
            del row[column]
        marks = ", ".join("?" for _ in row)
        conn.execute(f"INSERT INTO tasks ({', '.join(row)}) VALUES ({marks})", list(row.values()))
    conn.close()
