"""The container: adapter selection, fresh state per container, handler modules."""

from __future__ import annotations

from pathlib import Path

from dependency_injector import providers

from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository
from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.services import SubmitRequest
from domain.task_types import HandlerRegistry, TaskType
from entrypoints.http.app import create_app


def test_memory_backend_selects_the_memory_adapters() -> None:
    container = build_container(Settings(backend="memory"))
    service = container.task_service()
    # The use cases get them behind the readiness write tracking (adapters/write_health.py).
    assert isinstance(container.backend_repository(), InMemoryTaskRepository)
    assert isinstance(container.backend_queue(), InMemoryTaskQueue)
    # One repository per container: the API and the worker share it.
    assert container.processor().repository is service.repository
    assert container.reconciler().queue is service.queue


def test_each_container_has_its_own_state() -> None:
    one = build_container(Settings(backend="memory"))
    two = build_container(Settings(backend="memory"))
    assert one.repository() is not two.repository()


def test_handler_modules_register_their_types() -> None:
    settings = Settings(backend="memory", handlers=" tests.unit.sample_handlers , ")
    assert settings.handler_modules == ["tests.unit.sample_handlers"]
    task_types = build_container(settings).task_types()
    assert {"reverse", "email", "image-resize", "data-export"} <= set(task_types.names())
    assert task_types.get("reverse").handler("abc") == "cba"


def test_an_override_of_task_types_reaches_every_use_case() -> None:
    container = build_container(Settings(backend="memory"))
    only_echo = HandlerRegistry()
    only_echo.add(TaskType("echo", lambda payload: payload))
    with container.task_types.override(providers.Object(only_echo)):
        assert container.task_service().task_types is only_echo
        assert container.processor().task_types is only_echo
        assert container.task_service().submission_rules.task_types is only_echo


def test_original_environment_names_are_read(monkeypatch: object) -> None:
    import os

    env = {"PORT": "9123", "WORKER_COUNT": "7", "DYNAMODB_TABLE": "t", "TASKQ_BACKEND": "memory"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        settings = Settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert (settings.port, settings.worker_count, settings.dynamodb_table) == (9123, 7, "t")
    assert settings.backend == "memory"


def test_a_handler_module_that_cannot_be_imported_is_named_in_the_error() -> None:
    import pytest

    container = build_container(Settings(backend="memory", handlers="no_such_team.tasks"))
    with pytest.raises(ImportError, match="TASKQ_HANDLERS names 'no_such_team.tasks'"):
        container.task_types()


def started_resources(container: Container) -> list[object]:
    return [r for r in container.traverse(types=[providers.Resource]) if r.initialized]


async def test_the_memory_backend_starts_no_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "data" / "taskq.db"
    container = build_container(Settings(backend="memory", sqlite_path=str(path)))
    app = create_app(container)
    async with app.router.lifespan_context(app):  # the app's own start and stop
        # Only what every backend shares: no SQLite resource, opened or not.
        shared = {
            container.executor,
            container.tracer,
            container.mail,
            container.stoppable_pool,
            container.cpu_pool,
            container.blobs,
        }
        assert set(started_resources(container)) == shared
        await container.task_service().submit(SubmitRequest(type="email", payload="a@b.io"))
    assert started_resources(container) == []
    assert not path.parent.exists()


def test_each_backend_reaches_only_its_own_resources() -> None:
    def resources(backend: str) -> int:
        container = build_container(Settings(backend=backend))
        return len(list(container.traverse(types=[providers.Resource])))

    # The handler threads, the tracer, the email sender, the two process pools and the
    # blob store, plus the SQLite file, or the provisioning step, the status counts'
    # aggregator and the flush of the acks still queued on shutdown.
    assert (resources("memory"), resources("sqlite"), resources("aws")) == (6, 7, 9)
