"""A Task as a row of the ``tasks`` table, and back; times as text that sorts.

Datetimes are stored twice where they are searched: as ISO 8601 with microseconds and
offset (``iso``: round-trips exactly) and as a key in UTC (``time_key``: sorts in time
order, for indexes). Rows are read by column name.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Final

from domain.models import Task, TaskStatus
from domain.priorities import Priority
from domain.progress import Progress

TASK_COLUMNS: Final = (
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
    "progress",
    "extra",
)
"""The columns that hold a Task's fields (``extra`` holds the fields without a column)."""
KEY_COLUMNS: Final = ("created_key", "finished_key", "held_key", "due_key")
"""The columns derived from a Task for the indexes."""
ROW_COLUMNS: Final = TASK_COLUMNS + KEY_COLUMNS
"""Every column ``task_row`` gives a value for."""

_EXTRA_FIELDS: Final = tuple(f.name for f in fields(Task) if f.name not in TASK_COLUMNS)
"""Task fields stored in the ``extra`` JSON column, so a field added to the model is
kept without a schema change (datetimes tagged so they come back as datetimes)."""


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds")


def from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def time_key(value: datetime) -> str:
    """A string that sorts in time order: UTC, always with microseconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _encode_extra(task: Task) -> str:
    extra: dict[str, Any] = {}
    for name in _EXTRA_FIELDS:
        value = getattr(task, name)
        extra[name] = {"$dt": iso(value)} if isinstance(value, datetime) else value
    return _json(extra)


def _decode_extra(text: str) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for name, value in json.loads(text).items():
        if name not in _EXTRA_FIELDS:
            continue  # written by a newer model; this one has no such field
        if isinstance(value, dict) and set(value) == {"$dt"}:
            value = from_iso(value["$dt"])
        elif name == "priority":
            value = Priority(value)
        extra[name] = value
    return extra


def _progress(text: str | None) -> Progress | None:
    return None if text is None else Progress.from_json(json.loads(text))


def held_key(task: Task) -> str | None:
    """The due-time key of a held task (indexed); None for every other task."""
    if not task.held or task.run_at is None or task.status is not TaskStatus.PENDING:
        return None
    return time_key(task.run_at)


def due_key(task: Task) -> str | None:
    """The key of a PENDING task's ``due_at`` (indexed); None for every other task."""
    if task.status is not TaskStatus.PENDING:
        return None
    return time_key(task.due_at)


def finished_key(task: Task) -> str | None:
    """The key retention looks at: set while the status is final, else None."""
    if not task.status.is_final:
        return None
    return time_key(task.finished_at or task.updated_at)


def task_row(task: Task) -> dict[str, Any]:
    """The value of every column in ``ROW_COLUMNS``, by name."""
    return {
        "id": task.id,
        "type": task.type,
        "payload": _json(task.payload),
        "status": task.status.value,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "max_attempts": task.max_attempts,
        "attempts": task.attempts,
        "retry_count": task.retry_count,
        "timeout_seconds": task.timeout_seconds,
        "started_at": iso(task.started_at),
        "finished_at": iso(task.finished_at),
        "error": task.error,
        "result": _json(task.result),
        "lease_token": task.lease_token,
        "lease_expires_at": iso(task.lease_expires_at),
        "run_at": iso(task.run_at),
        "version": task.version,
        "progress": None if task.progress is None else _json(task.progress.to_json()),
        "extra": _encode_extra(task),
        "created_key": time_key(task.created_at),
        "finished_key": finished_key(task),
        "held_key": held_key(task),
        "due_key": due_key(task),
    }


def task_from_row(row: sqlite3.Row) -> Task:
    """The Task in a row that has (at least) the ``TASK_COLUMNS``."""
    return Task(
        id=row["id"],
        type=row["type"],
        payload=json.loads(row["payload"]),
        status=TaskStatus(row["status"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        max_attempts=row["max_attempts"],
        attempts=row["attempts"],
        retry_count=row["retry_count"],
        timeout_seconds=row["timeout_seconds"],
        started_at=from_iso(row["started_at"]),
        finished_at=from_iso(row["finished_at"]),
        error=row["error"],
        result=json.loads(row["result"]),
        lease_token=row["lease_token"],
        lease_expires_at=from_iso(row["lease_expires_at"]),
        run_at=from_iso(row["run_at"]),
        version=row["version"],
        progress=_progress(row["progress"]),
        **_decode_extra(row["extra"]),
    )
