"""The ``data-export`` built-in type: tasks from the task store, streamed page by page
into a blob as CSV, JSON Lines or JSON.

Payload: ``{"dataset": "tasks", "format"?: "csv" | "ndjson" | "json" ("jsonl" is
"ndjson"), "status"?: a status or a list of them, "type"?: a task type, "created_from"?,
"created_to"?: ISO 8601 times (``created_from`` included, ``created_to`` not; without a
zone, UTC), "name"?: the export's name}``. A string payload names a preset (existing
clients): ``"tasks"`` exports every task, a status (``"failed"``) the tasks in it, any
other name every task, named so. Each lands at ``exports/<name>.<format>`` (an object
payload without a name: ``tasks-<time>``), CSV unless the object says otherwise.

Memory stays flat whatever the number of tasks: one page (``EXPORT_PAGE_SIZE`` tasks) is
held at a time, and the blob store writes as the pages come. The listing follows the
repository's cursors status by status, newest first, so a task that changes status while
the export runs may be seen in both or in neither. Result: ``{key, rows, bytes, format,
download}``; ``download`` is an S3 presigned URL or ``<public URL>/blobs/<key>``.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import quote

from domain.blobs import validate_blob_key
from domain.errors import InvalidInput, PermanentTaskError
from domain.limits import DEFAULT_LINK_SECONDS, EXPORT_PAGE_SIZE, MAX_EXPORT_BYTES
from domain.models import JSON, Page, Task, TaskStatus
from domain.ports import BlobStore
from domain.task_types import parsed_by


class TaskListing(Protocol):
    """What an export reads of a ``TaskRepository``: its pages by status."""

    async def list_by_status(
        self, status: TaskStatus, *, limit: int, cursor: str | None = None
    ) -> Page: ...


DATASET: Final = "tasks"
FORMATS: Final = {"csv": "csv", "ndjson": "ndjson", "jsonl": "ndjson", "json": "json"}
CONTENT_TYPES: Final = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "json": "application/json",
}
COLUMNS: Final = (
    "id",
    "type",
    "status",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "attempts",
    "max_attempts",
    "error",
    "payload",
    "result",
)
"""The fields of each exported task, in CSV's column order (payload and result as JSON
text in CSV, as JSON values in the other formats)."""
_FIELDS: Final = frozenset(
    {"dataset", "format", "status", "type", "created_from", "created_to", "name"}
)


@dataclass(frozen=True)
class ExportRequest:
    name: str
    format: str = "csv"
    statuses: tuple[TaskStatus, ...] = tuple(TaskStatus)
    type: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    @property
    def key(self) -> str:
        return f"exports/{self.name}.{self.format}"

    @classmethod
    def parse(cls, payload: JSON) -> ExportRequest:
        if isinstance(payload, str):
            return _preset(payload)
        if not isinstance(payload, dict):
            raise ValueError("expected an export name, or an object with 'dataset'")
        unknown = sorted(set(payload) - _FIELDS)
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")
        if "dataset" not in payload:
            raise ValueError("missing field 'dataset'")
        if payload["dataset"] != DATASET:
            raise ValueError(f"field 'dataset' must be {DATASET!r}: the one data set exported")
        fmt = payload.get("format", "csv")
        if not isinstance(fmt, str) or fmt not in FORMATS:
            raise ValueError(f"field 'format' must be one of {', '.join(FORMATS)}")
        name = payload.get("name")
        if name is None:
            name = f"tasks-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        elif not isinstance(name, str) or not name.strip():
            raise ValueError("field 'name' must be a non-empty string")
        request = cls(
            name=name,
            format=FORMATS[fmt],
            statuses=_statuses(payload.get("status")),
            type=_optional_str(payload, "type"),
            created_from=_time(payload, "created_from"),
            created_to=_time(payload, "created_to"),
        )
        validate_blob_key(request.key, field="payload.name")
        return request

    def wants(self, task: Task) -> bool:
        if self.type is not None and task.type != self.type:
            return False
        if self.created_to is not None and task.created_at >= self.created_to:
            return False
        return self.created_from is None or task.created_at >= self.created_from


def _preset(name: str) -> ExportRequest:
    if not name.strip():
        raise ValueError("expected an export name")
    status = name.strip().upper()
    statuses = (TaskStatus(status),) if status in TaskStatus.__members__ else tuple(TaskStatus)
    request = ExportRequest(name=name, statuses=statuses)
    validate_blob_key(request.key, field="payload")
    return request


def _statuses(value: JSON) -> tuple[TaskStatus, ...]:
    if value is None:
        return tuple(TaskStatus)
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError("field 'status' must be a status or a non-empty list of them")
    try:
        return tuple(dict.fromkeys(TaskStatus(str(n).upper()) for n in names))
    except ValueError:
        known = ", ".join(s.value for s in TaskStatus)
        raise ValueError(f"field 'status' must name statuses among {known}") from None


def _optional_str(payload: dict[str, JSON], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {name!r} must be a string")
    return value


def _time(payload: dict[str, JSON], name: str) -> datetime | None:
    value = _optional_str(payload, name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"field {name!r} must be an ISO 8601 time, got {value[:40]!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


validate_data_export = parsed_by(ExportRequest.parse)
"""Refuses at submission what the handler would refuse."""


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def task_row(task: Task) -> dict[str, JSON]:
    """One exported task: ``COLUMNS`` in order."""
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status.value,
        "created_at": _iso(task.created_at),
        "updated_at": _iso(task.updated_at),
        "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at),
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "error": task.error,
        "payload": task.payload,
        "result": task.result,
    }


def _csv_lines(rows: list[dict[str, JSON]], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        cells: list[Any] = [row[c] for c in COLUMNS[:-2]]
        cells = ["" if v is None else v for v in cells]
        cells += [
            json.dumps(row["payload"], ensure_ascii=False),
            json.dumps(row["result"], ensure_ascii=False),
        ]
        writer.writerow(cells)
    return out.getvalue()


Encoder = Callable[[list[dict[str, JSON]], bool], str]


def _ndjson(rows: list[dict[str, JSON]], first: bool) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _json(rows: list[dict[str, JSON]], first: bool) -> str:
    body = ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
    return ("" if first or not body else ",\n") + body


ENCODERS: Final[dict[str, Encoder]] = {"csv": _csv_lines, "ndjson": _ndjson, "json": _json}


class _Count:
    rows = 0


async def _pages(tasks: TaskListing, request: ExportRequest) -> AsyncIterator[list[Task]]:
    for status in request.statuses:
        cursor: str | None = None
        while True:
            page = await tasks.list_by_status(status, limit=EXPORT_PAGE_SIZE, cursor=cursor)
            wanted = [t for t in page.items if request.wants(t)]
            if wanted:
                yield wanted
            older = request.created_from is not None and any(
                t.created_at < request.created_from for t in page.items
            )  # newest first: the rest of this status is older still
            cursor = page.next_cursor
            if cursor is None or older:
                break


async def _encoded(
    tasks: TaskListing, request: ExportRequest, count: _Count
) -> AsyncIterator[bytes]:
    encode = ENCODERS[request.format]
    if request.format == "json":
        yield b"[\n"
    first = True
    async for page in _pages(tasks, request):
        rows = [task_row(t) for t in page]
        yield encode(rows, first).encode()
        count.rows += len(rows)
        first = False
    if request.format == "csv" and first:
        yield _csv_lines([], True).encode()
    if request.format == "json":
        yield b"\n]\n"


class TaskExporter:
    """The handler, with the task store it reads and the blob store it writes."""

    def __init__(self, tasks: TaskListing, blobs: BlobStore, *, public_url: str) -> None:
        self._tasks = tasks
        self._blobs = blobs
        self._public_url = public_url.rstrip("/")

    async def run(self, payload: JSON) -> JSON:
        try:
            request = ExportRequest.parse(payload)
        except (ValueError, InvalidInput) as exc:
            raise PermanentTaskError(f"invalid payload: {exc}") from None
        count = _Count()
        stored = await self._blobs.put(
            request.key,
            _encoded(self._tasks, request, count),
            content_type=CONTENT_TYPES[request.format],
            max_bytes=MAX_EXPORT_BYTES,
        )
        link = await self._blobs.url_for(request.key, expires_seconds=DEFAULT_LINK_SECONDS)
        return {
            "key": request.key,
            "rows": count.rows,
            "bytes": stored.size,
            "format": request.format,
            "download": link or f"{self._public_url}/blobs/{quote(request.key)}",
        }
