"""The container wires the SQLite adapters to one database file and closes it."""

from __future__ import annotations

import inspect
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.sqlite import SqliteTaskQueue, SqliteTaskRepository, SqliteWorkerRegistry
from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.errors import InfrastructureError
from domain.models import TaskStatus, WorkerInfo
from domain.services import SubmitRequest


async def _call(result: object) -> None:
    if inspect.isawaitable(result):
        await result


async def test_sqlite_backend_runs_a_task_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "data" / "taskq.db"
    container: Container = build_container(
        Settings(backend="sqlite", sqlite_path=str(path), sqlite_synchronous="FULL")
    )
    await _call(container.init_resources())
    service = container.task_service()
    assert isinstance(container.backend_repository(), SqliteTaskRepository)
    assert isinstance(container.backend_queue(), SqliteTaskQueue)
    assert isinstance(container.workers(), SqliteWorkerRegistry)
    assert container.processor().repository is service.repository
    assert path.exists()

    task = await service.submit(SubmitRequest(type="email", payload="a@example.com"))
    assert (await service.get(task.id)).status is TaskStatus.PENDING
    [delivery] = await service.queue.receive(max_messages=1, visibility_timeout=30, wait_seconds=2)
    assert delivery.task_id == task.id
    await container.processor().process(delivery)
    assert (await service.get(task.id)).status is TaskStatus.COMPLETED
    assert (await service.queue.depth()).total == 0

    now = datetime.now(UTC)
    await container.workers().beat(WorkerInfo("w", "h", 1, 5, 0, now, now), ttl_seconds=30)
    assert [w.worker_id for w in await container.workers().live(now)] == ["w"]

    await _call(container.shutdown_resources())
    with pytest.raises(InfrastructureError):
        await service.get(task.id)

    # A second container on the same file finds everything the first one wrote.
    again = build_container(Settings(backend="sqlite", sqlite_path=str(path)))
    await _call(again.init_resources())
    assert (await again.task_service().get(task.id)).status is TaskStatus.COMPLETED
    await _call(again.shutdown_resources())


async def test_other_backends_do_not_open_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "unused" / "taskq.db"
    container = build_container(Settings(backend="memory", sqlite_path=str(path)))
    await _call(container.init_resources())
    await container.task_service().submit(SubmitRequest(type="email", payload="a@example.com"))
    await _call(container.shutdown_resources())
    assert not path.parent.exists()


async def test_the_sqlite_backend_does_not_touch_aws(tmp_path: Path) -> None:
    # An "AWS endpoint" that only listens: any client call, provisioning included
    # (asked for here, and an aws-only step), would connect to it.
    endpoint = socket.socket()
    endpoint.bind(("127.0.0.1", 0))
    endpoint.listen(8)
    host, port = endpoint.getsockname()
    settings = Settings(
        backend="sqlite",
        sqlite_path=str(tmp_path / "taskq.db"),
        aws_endpoint_url=f"http://{host}:{port}",
        auto_provision=True,
    )
    try:
        container = build_container(settings)
        await _call(container.init_resources())
        service = container.task_service()
        task = await service.submit(SubmitRequest(type="email", payload="a@example.com"))
        [delivery] = await service.queue.receive(
            max_messages=1, visibility_timeout=30, wait_seconds=0
        )
        await container.processor().process(delivery)
        assert (await service.get(task.id)).status is TaskStatus.COMPLETED
        await _call(container.shutdown_resources())

        endpoint.setblocking(False)
        with pytest.raises(BlockingIOError):
            endpoint.accept()  # nobody connected
    finally:
        endpoint.close()
