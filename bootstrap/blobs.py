"""The blob store and the CPU pool the built-in task types work with.

Blobs live in S3 when ``TASKQ_S3_BUCKET`` is set (whatever the backend), else in a
directory: ``TASKQ_BLOB_DIR``, or ``blobs/`` beside the SQLite file (``./data/blobs``),
or a temporary directory on the memory backend (removed at shutdown, as the memory
backend's tasks are).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from adapters.blobs import DirectoryBlobStore, S3BlobStore
from bootstrap.settings import Settings
from domain.models import Page, TaskStatus
from domain.ports import BlobStore, TaskRepository


def open_blob_store(settings: Settings, s3: Callable[[], Any]) -> Iterator[BlobStore]:
    """The selected ``BlobStore``; ``s3`` gives the S3 client (built only when used)."""
    if settings.s3_bucket:
        yield S3BlobStore(s3(), settings.s3_bucket)
    elif settings.blob_dir:
        yield DirectoryBlobStore(settings.blob_dir)
    elif settings.backend == "memory":
        root = tempfile.mkdtemp(prefix="taskq-blobs-")
        try:
            yield DirectoryBlobStore(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    else:
        yield DirectoryBlobStore(Path(settings.sqlite_path).parent / "blobs")


class TasksWhenUsed:
    """The task store as ``data-export`` reads it, looked up on the first export: the
    task types are built before the container starts its resources (the CLI checks the
    handler modules first), and building them must not open the backend."""

    def __init__(self, repository: Callable[[], TaskRepository]) -> None:
        self._repository = repository

    async def list_by_status(
        self, status: TaskStatus, *, limit: int, cursor: str | None = None
    ) -> Page:
        return await self._repository().list_by_status(status, limit=limit, cursor=cursor)
