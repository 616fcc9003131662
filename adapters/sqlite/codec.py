"""A Task as a row of the ``tasks`` table, and back; times as text that sorts.

Datetimes are stored twice where they are searched: as ISO 8601 with microseconds and
offset (``iso``: round-trips exactly) and as a key in UTC (``time_key``: sorts in time
order, for indexes). Rows are read by column name.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from operator import attrgetter
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


def _iso_of(name: str) -> Callable[[Task], str | None]:
    value = attrgetter(name)
    return lambda task: iso(value(task))


_COLUMN_VALUES: Final[dict[str, Callable[[Task], Any]]] = {
    "id": attrgetter("id"),
    "type": attrgetter("type"),
    "payload": lambda task: _json(task.payload),
    "status": lambda task: task.status.value,
    "created_at": _iso_of("created_at"),
    "updated_at": _iso_of("updated_at"),
    "max_attempts": attrgetter("max_attempts"),
    "attempts": attrgetter("attempts"),
    "retry_count": attrgetter("retry_count"),
    "timeout_seconds": attrgetter("timeout_seconds"),
    "started_at": _iso_of("started_at"),
    "finished_at": _iso_of("finished_at"),
    "error": attrgetter("error"),
    "result": lambda task: _json(task.result),
    "lease_token": attrgetter("lease_token"),
    "lease_expires_at": _iso_of("lease_expires_at"),
    "run_at": _iso_of("run_at"),
    "version": attrgetter("version"),
    "progress": lambda task: None if task.progress is None else _json(task.progress.to_json()),
    "extra": _encode_extra,
    "created_key": lambda task: time_key(task.created_at),
    "finished_key": finished_key,
    "held_key": held_key,
    "due_key": due_key,
}
"""How the value of each column in ``ROW_COLUMNS`` is computed from a Task."""
if tuple(_COLUMN_VALUES) != ROW_COLUMNS:
    raise AssertionError("_COLUMN_VALUES must list ROW_COLUMNS, in order")


def task_row(task: Task) -> dict[str, Any]:
    """The value of every column in ``ROW_COLUMNS``, by name."""
    return {column: value(task) for column, value in _COLUMN_VALUES.items()}


def column_values(task: Task, columns: tuple[str, ...]) -> list[Any]:
    """The values of ``columns`` for ``task``, in that order."""
    return [_COLUMN_VALUES[column](task) for column in columns]


_FIELDS: Final = tuple(f.name for f in fields(Task) if f.name != "id")
"""The fields an update may change (never the id)."""
_field_values: Final = attrgetter(*_FIELDS)


def _columns_of(name: str) -> tuple[str, ...]:
    """The columns a field is written to (the creation also feeds ``created_key``)."""
    if name not in TASK_COLUMNS:
        return ("extra",)
    return (name, "created_key") if name == "created_at" else (name,)


_FIELD_COLUMNS: Final = {name: _columns_of(name) for name in _FIELDS}
_ALWAYS_UPDATED: Final = frozenset({"status", "updated_at", "version", *KEY_COLUMNS}) - {
    "created_key"
}
"""Written by every update: the derived keys read several fields each (the status,
times, ``held``), so they are recomputed rather than followed field by field."""


def changed_columns(new: Task, old: Task) -> tuple[str, ...]:
    """The columns (in ``ROW_COLUMNS`` order) an update from ``old`` to ``new`` writes:
    those of each field whose value is not the very same object in both, and the
    derived keys. A copy of a Task shares its unchanged values, so this leaves out what
    did not change, and never a value that did (a changed value is another object)."""
    columns = set(_ALWAYS_UPDATED)
    for name, value, before in zip(_FIELDS, _field_values(new), _field_values(old), strict=True):
        if value is not before:
            columns.update(_FIELD_COLUMNS[name])
    return tuple(column for column in ROW_COLUMNS if column in columns)


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
