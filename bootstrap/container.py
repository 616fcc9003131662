"""The dependency-injector container: the only place that names concrete adapters.

Production defaults come from ``Settings``; tests build a fresh container per test and
override ``settings`` (``Container(settings=providers.Object(Settings(backend="memory")))``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.handlers.builtin import register_builtins
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from adapters.sqlite import (
    SqliteDatabase,
    SqliteTaskQueue,
    SqliteTaskRepository,
    SqliteWorkerRegistry,
)
from bootstrap.settings import Settings
from domain.ports import Clock
from domain.processing import ProcessorSettings, TaskProcessor
from domain.reconcile import Reconciler
from domain.registry import HandlerRegistry, default_registry
from domain.retry import RetryPolicy
from domain.services import Limits, TaskService


def load_registry(handler_modules: list[str]) -> HandlerRegistry:
    """The built-in types plus every type the ``TASKQ_HANDLERS`` modules register."""
    for module in handler_modules:
        importlib.import_module(module)  # registers into default_registry on import
    return register_builtins(default_registry.copy())


def thread_pool(max_workers: int) -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="taskq-handler")
    yield executor
    executor.shutdown(wait=False, cancel_futures=True)


# -- sqlite --
def open_sqlite(
    backend: str, path: str, synchronous: str, clock: Clock
) -> Iterator[SqliteDatabase | None]:
    """The SQLite file, opened only on the sqlite backend (``init_resources`` starts
    every Resource, whichever backend is selected), closed on ``shutdown_resources``."""
    if backend != "sqlite":
        yield None
        return
    db = SqliteDatabase(path, synchronous=synchronous, clock=clock)
    try:
        yield db
    finally:
        db.close()


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    clock = providers.Singleton(SystemClock)
    registry = providers.Singleton(load_registry, settings.provided.handler_modules)
    executor = providers.Resource(thread_pool, settings.provided.worker_count)
    retry_policy = providers.Singleton(
        RetryPolicy,
        base_seconds=settings.provided.retry_base_seconds,
        cap_seconds=settings.provided.retry_cap_seconds,
    )
    limits = providers.Singleton(
        Limits,
        default_max_attempts=settings.provided.default_max_attempts,
        max_attempts_limit=settings.provided.max_attempts_limit,
        idempotency_window_seconds=settings.provided.idempotency_window_seconds,
    )

    # -- memory ----------------------------------------------------------------------
    memory_repository = providers.Singleton(InMemoryTaskRepository)
    memory_queue = providers.Singleton(
        InMemoryTaskQueue, clock, max_receive_count=settings.provided.max_receive_count
    )
    memory_workers = providers.Singleton(InMemoryWorkerRegistry)

    # -- sqlite ----------------------------------------------------------------------
    sqlite_database = providers.Resource(
        open_sqlite,
        settings.provided.backend,
        settings.provided.sqlite_path,
        settings.provided.sqlite_synchronous,
        clock,
    )
    sqlite_repository = providers.Singleton(
        SqliteTaskRepository,
        sqlite_database,
        retention_seconds=settings.provided.retention_seconds,
    )
    sqlite_queue = providers.Singleton(
        SqliteTaskQueue,
        sqlite_database,
        clock,
        max_receive_count=settings.provided.max_receive_count,
    )
    sqlite_workers = providers.Singleton(SqliteWorkerRegistry, sqlite_database)

    # -- selection -------------------------------------------------------------------
    repository = providers.Selector(
        settings.provided.backend,
        memory=memory_repository,
        sqlite=sqlite_repository,
    )
    queue = providers.Selector(
        settings.provided.backend,
        memory=memory_queue,
        sqlite=sqlite_queue,
    )
    workers = providers.Selector(
        settings.provided.backend,
        memory=memory_workers,
        sqlite=sqlite_workers,
    )

    # -- use cases -------------------------------------------------------------------
    task_service = providers.Factory(
        TaskService,
        repository=repository,
        queue=queue,
        clock=clock,
        registry=registry,
        workers=workers,
        limits=limits,
    )
    processor_settings = providers.Singleton(
        ProcessorSettings,
        visibility_timeout=settings.provided.visibility_timeout,
        heartbeat_interval=settings.provided.heartbeat_interval,
    )
    processor = providers.Factory(
        TaskProcessor,
        repository=repository,
        queue=queue,
        clock=clock,
        registry=registry,
        retry_policy=retry_policy,
        settings=processor_settings,
        executor=executor,
    )
    reconciler = providers.Factory(
        Reconciler,
        repository=repository,
        queue=queue,
        clock=clock,
        stale_after_seconds=settings.provided.reconcile_stale_after_seconds,
    )


def build_container(settings: Settings | None = None) -> Container:
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    return container
