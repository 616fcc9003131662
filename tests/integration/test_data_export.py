"""``data-export``: tasks from a real task store streamed into real blob stores (a
directory, S3 on moto) as CSV, JSON Lines and JSON, with every filter."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.blobs import DirectoryBlobStore
from adapters.handlers.exports import COLUMNS, TaskExporter, validate_data_export
from adapters.memory import InMemoryTaskRepository
from domain.models import JSON, Task
from domain.ports import BlobStore
from tests.support.blobs import BLOB_STORES, read_all

T0 = datetime(2026, 5, 1, tzinfo=UTC)
PUBLIC = "https://tasks.example.com"


@pytest.fixture(params=sorted(BLOB_STORES))
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    async with BLOB_STORES[request.param](tmp_path) as store:
        yield store


async def stored_tasks() -> InMemoryTaskRepository:
    """1,203 tasks over three pages of each status: emails (PENDING), resizes
    (COMPLETED) and exports (FAILED), one a minute from T0."""
    repository = InMemoryTaskRepository()
    for n in range(1203):
        created = T0 + timedelta(minutes=n)
        kind = ("email", "image-resize", "data-export")[n % 3]
        task = Task.create(kind, {"n": n, "note": 'comma, "quote"\nline'}, created)
        await repository.add(task)
        if kind == "email":
            continue
        claimed = task.claim("lease", created, 30)
        await repository.transition(claimed, expected=task)
        done = (
            claimed.complete({"n": n}, created)
            if kind == "image-resize"
            else claimed.fail("boom", created)
        )
        await repository.transition(done, expected=claimed)
    return repository


async def export(
    blobs: BlobStore, payload: JSON, repository: InMemoryTaskRepository | None = None
) -> tuple[dict[str, Any], bytes]:
    validate_data_export(payload)
    exporter = TaskExporter(repository or await stored_tasks(), blobs, public_url=PUBLIC)
    result = await exporter.run(payload)
    assert isinstance(result, dict)
    return result, await read_all(blobs, str(result["key"]))


async def test_a_name_exports_every_task_as_csv(blobs: BlobStore) -> None:
    result, data = await export(blobs, "report-2024")

    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert result["key"] == "exports/report-2024.csv"
    assert (result["rows"], len(rows), result["bytes"]) == (1203, 1203, len(data))
    assert result["format"] == "csv"
    assert list(rows[0]) == list(COLUMNS)
    assert sorted(int(json.loads(r["payload"])["n"]) for r in rows) == list(range(1203))
    first = next(r for r in rows if json.loads(r["payload"])["n"] == 0)
    assert json.loads(first["payload"])["note"] == 'comma, "quote"\nline'
    assert (first["type"], first["status"], first["error"]) == ("email", "PENDING", "")
    assert (await blobs.head(str(result["key"]))).content_type.startswith("text/csv")
    if isinstance(blobs, DirectoryBlobStore):
        assert result["download"] == f"{PUBLIC}/blobs/exports/report-2024.csv"
    else:
        assert str(result["download"]).startswith("http") and "Signature" in result["download"]


async def test_a_status_name_exports_the_tasks_in_that_status(blobs: BlobStore) -> None:
    result, data = await export(blobs, "failed")

    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert result["key"] == "exports/failed.csv"
    assert result["rows"] == len(rows) == 401
    assert {(r["status"], r["type"], r["error"]) for r in rows} == {
        ("FAILED", "data-export", "boom")
    }


async def test_ndjson_with_status_and_type_filters(blobs: BlobStore) -> None:
    payload = {
        "dataset": "tasks",
        "format": "jsonl",
        "status": ["completed", "FAILED"],
        "type": "image-resize",
        "name": "resizes",
    }
    result, data = await export(blobs, payload)

    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert (result["key"], result["format"]) == ("exports/resizes.ndjson", "ndjson")
    assert result["rows"] == len(lines) == 401
    assert {(t["status"], t["type"]) for t in lines} == {("COMPLETED", "image-resize")}
    assert all(t["result"] == {"n": t["payload"]["n"]} for t in lines)


async def test_json_with_a_creation_window(blobs: BlobStore) -> None:
    payload = {
        "dataset": "tasks",
        "format": "json",
        "created_from": "2026-05-01T01:00:00Z",  # minute 60, included
        "created_to": "2026-05-01T02:00:00",  # minute 120, excluded (no zone: UTC)
        "name": "window",
    }
    result, data = await export(blobs, payload)

    tasks = json.loads(data)
    assert result["rows"] == len(tasks) == 60
    assert sorted(t["payload"]["n"] for t in tasks) == list(range(60, 120))
    assert set(tasks[0]) == set(COLUMNS)


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
async def test_an_export_of_nothing_is_a_valid_empty_file(blobs: BlobStore, fmt: str) -> None:
    payload = {"dataset": "tasks", "format": fmt, "name": "empty"}
    result, data = await export(blobs, payload, InMemoryTaskRepository())

    assert result["rows"] == 0
    if fmt == "csv":
        assert data.decode().strip() == ",".join(COLUMNS)
    elif fmt == "json":
        assert json.loads(data) == []
    else:
        assert data == b""


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"dataset": "users"}, "must be 'tasks'"),
        ({"dataset": "tasks", "format": "xml"}, "'format' must be one of"),
        ({"dataset": "tasks", "status": "DONE"}, "'status' must name statuses"),
        ({"dataset": "tasks", "created_from": "yesterday"}, "ISO 8601"),
        ({"dataset": "tasks", "colour": "red"}, "unknown field 'colour'"),
        ({"dataset": "tasks", "name": "../up"}, "'..'"),
        ("../up", "'..'"),
        ("", "expected an export name"),
    ],
)
def test_an_invalid_payload_is_refused_naming_the_field(payload: JSON, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        validate_data_export(payload)
