"""The dependency-injector container: the only place that names concrete adapters.

Production defaults come from ``Settings``; tests build a fresh container per test and
override ``settings`` (``Container(settings=providers.Object(Settings(backend="memory")))``).
"""

from __future__ import annotations

import importlib
import math
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from dependency_injector import containers, providers

from adapters.aws_provision import ProvisionResult, dlq_name, provision
from adapters.batching import BatchingTaskQueue
from adapters.clock import SystemClock
from adapters.dynamodb import DynamoDbTaskRepository, DynamoDbWorkerRegistry
from adapters.handlers.builtin import register_builtins
from adapters.isolation import ProcessHandlerSandbox
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from adapters.sqlite import (
    SqliteDatabase,
    SqliteTaskQueue,
    SqliteTaskRepository,
    SqliteWorkerRegistry,
)
from adapters.sqs import SqsTaskQueue
from adapters.write_health import QUEUE_WRITES, REPOSITORY_WRITES, WriteTracking
from bootstrap.settings import Settings
from domain.errors import InfrastructureError
from domain.health import WriteHealth, store_probe
from domain.limits import MAX_LONG_POLL_SECONDS
from domain.ports import Clock
from domain.processing import ProcessorSettings, TaskProcessor
from domain.reconcile import Reconciler
from domain.registry import HandlerRegistry, default_registry
from domain.retry import RetryPolicy
from domain.services import Limits, TaskService


def load_registry(handler_modules: list[str]) -> HandlerRegistry:
    """The built-in types plus every type the ``TASKQ_HANDLERS`` modules register.

    Modules are found among the installed packages and, as ``python -m`` and uvicorn
    do, in the current directory: the installed ``taskq`` script's own path is its bin
    directory, where a team's ``mypkg/tasks.py`` is not.
    """
    if handler_modules and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in handler_modules:
        try:
            importlib.import_module(module)  # registers into default_registry on import
        except ImportError as exc:
            raise ImportError(
                f"TASKQ_HANDLERS names {module!r}, which cannot be imported: {exc}"
            ) from exc
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


# -- aws --
def aws_client(
    service: Literal["sqs", "dynamodb"],
    settings: Settings,
    *,
    read_timeout_extra: float = 0.0,
) -> Any:
    """A boto3 client from settings. botocore retries throttling and 5xx answers in
    ``aws_retry_mode`` for ``aws_max_attempts`` attempts in all."""
    config = Config(
        region_name=settings.aws_region,
        retries={"mode": settings.aws_retry_mode, "total_max_attempts": settings.aws_max_attempts},
        connect_timeout=settings.aws_timeout_seconds,
        read_timeout=settings.aws_timeout_seconds + read_timeout_extra,
        max_pool_connections=max(10, 2 * settings.worker_count),
    )
    return boto3.session.Session().client(
        service, endpoint_url=settings.aws_endpoint_url, config=config
    )


def aws_sqs_client(settings: Settings) -> Any:
    # A long poll holds the connection up to MAX_LONG_POLL_SECONDS: the read timeout covers it.
    return aws_client("sqs", settings, read_timeout_extra=MAX_LONG_POLL_SECONDS)


def aws_init(settings: Settings, sqs: Any, dynamodb: Any) -> ProvisionResult:
    """Create (or confirm) the queues and the table: what `taskq init` runs."""
    return provision(
        sqs,
        dynamodb,
        queue_name=settings.sqs_queue_name,
        table_name=settings.dynamodb_table,
        max_receive_count=settings.max_receive_count,
        visibility_timeout=math.ceil(settings.visibility_timeout),
    )


def aws_queue_urls(settings: Settings, sqs: Any, dynamodb: Any) -> tuple[str, str]:
    """The main queue and dead-letter queue URLs: provisioned first when
    ``auto_provision`` is on, else from settings, else looked up by name."""
    if settings.auto_provision:
        result = aws_init(settings, sqs, dynamodb)
        return result.queue_url, result.dlq_url
    try:
        queue_url = settings.sqs_queue_url or str(
            sqs.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"]
        )
        dlq_url = settings.sqs_dlq_url or str(
            sqs.get_queue_url(QueueName=dlq_name(settings.sqs_queue_name))["QueueUrl"]
        )
    except (ClientError, BotoCoreError) as error:
        raise InfrastructureError(
            "sqs", f"cannot find queue {settings.sqs_queue_name!r} (run `taskq init`?): {error}"
        ) from None
    return queue_url, dlq_url


def aws_table_name(settings: Settings, queue_urls: tuple[str, str]) -> str:
    """The table name, once ``aws_queue_urls`` ran (it provisions the table too)."""
    return settings.dynamodb_table


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(Settings)

    clock = providers.Singleton(SystemClock)
    registry = providers.Singleton(load_registry, settings.provided.handler_modules)
    executor = providers.Resource(thread_pool, settings.provided.worker_count)
    # Where a task runs once an attempt of it was lost: a child process of its own.
    sandbox = providers.Singleton(ProcessHandlerSandbox, preload=settings.provided.handler_modules)
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
        max_queue_delay_seconds=settings.provided.max_queue_delay_seconds,
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

    # -- aws -------------------------------------------------------------------------
    aws_sqs = providers.Singleton(aws_sqs_client, settings)
    aws_dynamodb = providers.Singleton(aws_client, "dynamodb", settings)
    aws_queues = providers.Singleton(aws_queue_urls, settings, aws_sqs, aws_dynamodb)
    aws_table = providers.Singleton(aws_table_name, settings, aws_queues)
    aws_repository = providers.Singleton(
        DynamoDbTaskRepository,
        aws_dynamodb,
        aws_table,
        retention_seconds=settings.provided.retention_seconds,
        clock=clock,
    )
    aws_sqs_queue = providers.Singleton(
        SqsTaskQueue,
        aws_sqs,
        aws_queues.provided[0],
        aws_queues.provided[1],
        max_message_bytes=settings.provided.sqs_max_message_bytes,
    )
    # Concurrent sends and acks go out as SendMessageBatch / DeleteMessageBatch calls:
    # SQS bills per request (benchmarks/aws_engine.py measures requests per task). A
    # send waits at most 2 ms for company; an ack (its task already recorded) 20 ms.
    aws_queue = providers.Singleton(
        BatchingTaskQueue, aws_sqs_queue, send_linger_seconds=0.002, ack_linger_seconds=0.02
    )
    aws_workers = providers.Singleton(DynamoDbWorkerRegistry, aws_dynamodb, aws_table)
    # `taskq init`: ``container.aws_provision()``, then print ``result.lines()``.
    aws_provision = providers.Factory(aws_init, settings, aws_sqs, aws_dynamodb)

    # -- selection -------------------------------------------------------------------
    backend_repository = providers.Selector(
        settings.provided.backend,
        memory=memory_repository,
        sqlite=sqlite_repository,
        aws=aws_repository,
    )
    backend_queue = providers.Selector(
        settings.provided.backend,
        memory=memory_queue,
        sqlite=sqlite_queue,
        aws=aws_queue,
    )
    workers = providers.Selector(
        settings.provided.backend,
        memory=memory_workers,
        sqlite=sqlite_workers,
        aws=aws_workers,
    )

    # -- readiness: the outcome of the writes the use cases make (domain/health.py) ---
    # While a dependency is failing, /ready probes it: the task store with a write
    # (a registry heartbeat, removed at once), the queue with its ping.
    write_health = providers.Singleton(
        WriteHealth,
        clock,
        providers.Dict(
            repository=providers.Factory(store_probe, workers, clock),
            queue=backend_queue.provided.ping,
        ),
    )
    repository = providers.Singleton(
        WriteTracking, backend_repository, write_health, "repository", REPOSITORY_WRITES
    )
    queue = providers.Singleton(WriteTracking, backend_queue, write_health, "queue", QUEUE_WRITES)

    # -- use cases -------------------------------------------------------------------
    task_service = providers.Singleton(
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
        orphan_grace_seconds=settings.provided.orphan_grace_seconds,
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
        sandbox=sandbox,
    )
    reconciler = providers.Factory(
        Reconciler,
        repository=repository,
        queue=queue,
        clock=clock,
        stale_after_seconds=settings.provided.reconcile_stale_after_seconds,
        horizon_seconds=settings.provided.max_queue_delay_seconds,
    )


def build_container(settings: Settings | None = None) -> Container:
    container = Container()
    if settings is not None:
        container.settings.override(providers.Object(settings))
    return container
