"""The API and a worker in one process on a given backend, with the typed task types of
``tests/support/typed_handlers.py`` loaded through ``TASKQ_HANDLERS``: real HTTP through
the app, a real ``Worker`` on the container's adapters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.runtime import build_worker
from tests.support.http_app import serve_app

HANDLERS = "tests.support.typed_handlers"
HEARTBEAT_SECONDS = 0.05
"""Short, so a cancel request reaches a running handler in a test's time."""


def typed_settings(backend: str, tmp_path: Path) -> Settings:
    return Settings(
        backend=backend,
        sqlite_path=str(tmp_path / "taskq.db"),
        handlers=HANDLERS,
        heartbeat_interval=HEARTBEAT_SECONDS,
        poll_wait_seconds=0.05,
        worker_count=4,
    )


@asynccontextmanager
async def typed_service(
    backend: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    """A client of the app, with a worker running beside it on the same container."""
    container = build_container(typed_settings(backend, tmp_path))
    async with serve_app(create_app(container)) as client:
        stop = asyncio.Event()
        worker = asyncio.create_task(build_worker(container).run(stop))
        try:
            yield client, container
        finally:
            stop.set()
            await asyncio.wait_for(worker, timeout=10)


async def submitted(client: httpx.AsyncClient, task_type: str, payload: Any) -> dict[str, Any]:
    response = await client.post("/tasks", json={"type": task_type, "payload": payload})
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


async def task_when(
    client: httpx.AsyncClient, task_id: str, *statuses: str, progress: bool = False
) -> dict[str, Any]:
    """The task once its status is one of ``statuses`` (and, with ``progress``, once it
    shows progress); fails after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        response = await client.get(f"/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        if task["status"] in statuses and (not progress or task["progress"] is not None):
            return task
        assert time.monotonic() < deadline, f"task still {task['status']}: {task}"
        await asyncio.sleep(0.02)
