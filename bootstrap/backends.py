"""One sub-container per backend: its adapters, and the resources only it starts.

Each provides ``repository``, ``queue`` and ``workers`` (what the application container
wraps and hands to the use cases) from two dependencies, ``settings`` and ``clock``.
``build_container`` plugs in the selected one alone, so ``init_resources`` and
``shutdown_resources`` reach its resources and no other backend's: the memory backend
opens no SQLite file, the sqlite backend builds no AWS client.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from dependency_injector import containers, providers

from adapters.aws_provision import ProvisionResult, dlq_name, priority_queue_name, provision
from adapters.batching import BatchingTaskQueue
from adapters.blobs.bucket import provision_bucket
from adapters.claim_check import PurgedBlobs
from adapters.dynamodb import DynamoDbTaskRepository, DynamoDbWorkerRegistry
from adapters.dynamodb.change_stream import DynamoDbChangeStream
from adapters.dynamodb.flow_control import DynamoDbFlowControlStore
from adapters.dynamodb.stream_counts import StreamCounts
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from adapters.memory_flow import InMemoryFlowControlStore
from adapters.schedules.dynamodb import DynamoDbScheduleStore
from adapters.schedules.memory import InMemoryScheduleStore
from adapters.schedules.sqlite import SqliteScheduleStore
from adapters.sqlite import (
    SqliteDatabase,
    SqliteTaskQueue,
    SqliteTaskRepository,
    SqliteWorkerRegistry,
    WriteLockStats,
)
from adapters.sqlite.flow_control import SqliteFlowControlStore
from adapters.sqs import SqsTaskQueue
from adapters.sqs.priority_queue import SqsPriorityTaskQueue
from bootstrap.settings import Settings
from domain.errors import InfrastructureError
from domain.limits import MAX_LONG_POLL_SECONDS
from domain.ports import BlobStore, Clock
from domain.priorities import Priority


class MemoryBackend(containers.DeclarativeContainer):
    """Everything in this process: nothing to open, nothing to close."""

    settings = providers.Dependency(instance_of=Settings)
    clock: providers.Dependency[Clock] = providers.Dependency()

    repository = providers.Singleton(InMemoryTaskRepository)
    queue = providers.Singleton(
        InMemoryTaskQueue,
        clock,
        max_receive_count=settings.provided.max_receive_count,
        priority_weights=settings.provided.weights,
    )
    workers = providers.Singleton(InMemoryWorkerRegistry)
    schedules = providers.Singleton(InMemoryScheduleStore)
    flow_store = providers.Singleton(InMemoryFlowControlStore)
    write_lock_stats: providers.Object[WriteLockStats | None] = providers.Object(None)  # no file


def open_sqlite(path: str, synchronous: str, clock: Clock) -> Iterator[SqliteDatabase]:
    """The SQLite file (its directory created if missing), closed on shutdown."""
    database = SqliteDatabase(path, synchronous=synchronous, clock=clock)
    try:
        yield database
    finally:
        database.close()


class SqliteBackend(containers.DeclarativeContainer):
    """One SQLite file holds the tasks, the queue and the worker registry."""

    settings = providers.Dependency(instance_of=Settings)
    clock: providers.Dependency[Clock] = providers.Dependency()

    blobs: providers.Dependency[BlobStore] = providers.Dependency()
    """The blob store (opened on first use): a retention purge deletes the blobs of the large
    payloads and results of the tasks it deletes (adapters/claim_check.py)."""

    database = providers.Resource(
        open_sqlite,
        settings.provided.sqlite_path,
        settings.provided.sqlite_synchronous,
        clock,
    )
    repository = providers.Singleton(
        SqliteTaskRepository,
        database,
        retention_seconds=settings.provided.retention_seconds,
        on_purge=providers.Factory(PurgedBlobs, blobs.provider),
    )
    queue = providers.Singleton(
        SqliteTaskQueue,
        database,
        clock,
        max_receive_count=settings.provided.max_receive_count,
        priority_weights=settings.provided.weights,
    )
    workers = providers.Singleton(SqliteWorkerRegistry, database)
    schedules = providers.Singleton(SqliteScheduleStore, database)
    flow_store = providers.Singleton(SqliteFlowControlStore, database)
    write_lock_stats = database.provided.lock_stats


def aws_client(
    service: Literal["sqs", "dynamodb", "ses", "s3"],
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
        # An endpoint of our own (moto, LocalStack) serves buckets by path, not by host;
        # presigned URLs are signed with SigV4, which every region accepts.
        s3={"addressing_style": "path"} if settings.aws_endpoint_url else None,
        signature_version="s3v4" if service == "s3" else None,
    )
    return boto3.session.Session().client(
        service, endpoint_url=settings.aws_endpoint_url, config=config
    )


def aws_sqs_poll_client(settings: Settings) -> Any:
    """The SQS client for long polls only: a long poll holds the connection up to
    MAX_LONG_POLL_SECONDS, so its read timeout covers that. Every other call uses a
    client with the plain timeout, so it fails fast when the endpoint hangs."""
    return aws_client("sqs", settings, read_timeout_extra=MAX_LONG_POLL_SECONDS)


ACK_LINGER_SECONDS = 0.5
"""How long an ack waits for company on aws: far below any visibility timeout (the
message stays leased meanwhile), long enough to gather several at a modest rate."""


class MadeQueues:
    """The batching queue once made (its start looks nothing up: it is made on first
    use), so that the shutdown sends the acks it still holds."""

    def __init__(self) -> None:
        self.queues: list[BatchingTaskQueue] = []

    def track(self, queue: BatchingTaskQueue) -> BatchingTaskQueue:
        self.queues.append(queue)
        return queue


async def flush_acks_on_shutdown(made: MadeQueues) -> AsyncIterator[MadeQueues]:
    """The acks still queued when the process stops are sent before it ends."""
    try:
        yield made
    finally:
        for queue in made.queues:
            await queue.aclose()


async def count_from_stream(counts: StreamCounts) -> AsyncIterator[StreamCounts]:
    """The status counts' aggregator, in the background of every aws process: one at a
    time holds its lease (``adapters/dynamodb/stream_counts.py``), the others stand by."""
    stop = asyncio.Event()
    running = asyncio.create_task(counts.run_until(stop))
    try:
        yield counts
    finally:
        stop.set()
        await running


def aggregator_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def provision_from_settings(
    settings: Settings, sqs: Any, dynamodb: Any, s3: Callable[[], Any]
) -> ProvisionResult:
    """Create (or confirm) the queues and the table, and the blob bucket when
    ``TASKQ_S3_BUCKET`` names one: what `taskq init` runs."""
    result = provision(
        sqs,
        dynamodb,
        queue_name=settings.sqs_queue_name,
        table_name=settings.dynamodb_table,
        max_receive_count=settings.max_receive_count,
        visibility_timeout=math.ceil(settings.visibility_timeout),
        priorities=settings.priorities,
    )
    if settings.s3_bucket:
        change = provision_bucket(
            s3(),
            settings.s3_bucket,
            region=settings.aws_region,
            retention_seconds=settings.retention_seconds,
        )
        getattr(result, change).append(f"bucket {settings.s3_bucket}")
    return result


def provision_on_start(
    enabled: bool, provision: Callable[[], ProvisionResult]
) -> ProvisionResult | None:
    """``TASKQ_AUTO_PROVISION=true``: provisioning is a step of the start, before any
    use case runs; otherwise the start creates nothing (`taskq init` does)."""
    return provision() if enabled else None


def find_queue_urls(settings: Settings, sqs: Any) -> tuple[str, str]:
    """The main and dead-letter queue URLs: from settings, else looked up by name.
    Only looked up: a missing queue is an error that says to run `taskq init`."""
    try:
        queue_url = settings.sqs_queue_url or str(
            sqs.get_queue_url(QueueName=settings.sqs_queue_name)["QueueUrl"]
        )
        dlq_url = settings.sqs_dlq_url or str(
            sqs.get_queue_url(QueueName=dlq_name(settings.sqs_queue_name))["QueueUrl"]
        )
    except (ClientError, BotoCoreError) as error:
        raise InfrastructureError(
            "sqs",
            f"cannot find queue {settings.sqs_queue_name!r} (run `taskq init`, "
            f"or set TASKQ_AUTO_PROVISION=true): {error}",
        ) from None
    return queue_url, dlq_url


def sqs_task_queue(
    settings: Settings, sqs: Any, sqs_poll: Any, urls: tuple[str, str]
) -> SqsTaskQueue | SqsPriorityTaskQueue:
    """The SQS queue: the one main queue, or with ``TASKQ_PRIORITIES`` one per priority
    (``SQS_QUEUE_URL_HIGH`` / ``_LOW``, else ``<queue>-high`` / ``<queue>-low``)."""
    queue_url, dlq_url = urls

    def one(url: str, priority: Priority) -> SqsTaskQueue:
        return SqsTaskQueue(
            sqs,
            url,
            dlq_url,
            max_message_bytes=settings.sqs_max_message_bytes,
            poll_client=sqs_poll,
            priority=priority,
        )

    if not settings.priorities:
        return one(queue_url, Priority.DEFAULT)
    given = {Priority.HIGH: settings.sqs_queue_url_high, Priority.LOW: settings.sqs_queue_url_low}
    queues = {Priority.DEFAULT: one(queue_url, Priority.DEFAULT)}
    for priority, url in given.items():
        name = priority_queue_name(settings.sqs_queue_name, priority)
        queues[priority] = one(url or _queue_url(sqs, name), priority)
    return SqsPriorityTaskQueue(queues, weights=settings.weights)


def _queue_url(sqs: Any, name: str) -> str:
    try:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except (ClientError, BotoCoreError) as error:
        raise InfrastructureError(
            "sqs",
            f"cannot find queue {name!r} (TASKQ_PRIORITIES=true needs it: run `taskq init`, "
            f"or set TASKQ_AUTO_PROVISION=true): {error}",
        ) from None


class AwsBackend(containers.DeclarativeContainer):
    """DynamoDB holds the tasks and the worker registry, SQS the queue.

    The clients are dependencies (the application container's ``aws_sqs`` and
    ``aws_dynamodb``), so a test hands in its own in one place."""

    settings = providers.Dependency(instance_of=Settings)
    clock: providers.Dependency[Clock] = providers.Dependency()
    sqs: providers.Dependency[Any] = providers.Dependency()
    sqs_poll: providers.Dependency[Any] = providers.Dependency()
    dynamodb: providers.Dependency[Any] = providers.Dependency()
    s3: providers.Dependency[Any] = providers.Dependency()
    """The S3 client's provider (called only when a bucket is provisioned)."""

    # `taskq init`: ``container.backend.provision()``, then print ``result.lines()``.
    provision = providers.Factory(provision_from_settings, settings, sqs, dynamodb, s3.provider)
    provisioned = providers.Resource(
        provision_on_start, settings.provided.auto_provision, provision.provider
    )

    queue_urls = providers.Singleton(find_queue_urls, settings, sqs)
    repository = providers.Singleton(
        DynamoDbTaskRepository,
        dynamodb,
        settings.provided.dynamodb_table,
        retention_seconds=settings.provided.retention_seconds,
        clock=clock,
    )
    sqs_queue = providers.Singleton(sqs_task_queue, settings, sqs, sqs_poll, queue_urls)
    # Concurrent sends and acks go out as SendMessageBatch / DeleteMessageBatch calls:
    # SQS bills per request (benchmarks/aws_engine.py and aws_outside.py measure requests
    # per task). A send waits at most 2 ms for company. An ack (its task already
    # recorded) is queued and sent in the background, lingering up to ACK_LINGER_SECONDS;
    # ``acks_flushed`` sends what is still queued on shutdown.
    made_queues = providers.Singleton(MadeQueues)
    queue = providers.Singleton(
        made_queues.provided.track.call(
            providers.Factory(
                BatchingTaskQueue,
                sqs_queue,
                send_linger_seconds=0.002,
                ack_linger_seconds=ACK_LINGER_SECONDS,
            )
        )
    )
    acks_flushed = providers.Resource(flush_acks_on_shutdown, made_queues)
    workers = providers.Singleton(
        DynamoDbWorkerRegistry, dynamodb, settings.provided.dynamodb_table
    )
    schedules = providers.Singleton(
        DynamoDbScheduleStore, dynamodb, settings.provided.dynamodb_table
    )
    flow_store = providers.Singleton(
        DynamoDbFlowControlStore, dynamodb, settings.provided.dynamodb_table
    )
    write_lock_stats: providers.Object[WriteLockStats | None] = providers.Object(None)  # no file
    stream_counts = providers.Singleton(
        StreamCounts,
        dynamodb,
        settings.provided.dynamodb_table,
        providers.Singleton(
            DynamoDbChangeStream.beside, dynamodb, settings.provided.dynamodb_table
        ),
        holder=providers.Callable(aggregator_id),
        clock=clock,
    )
    counting = providers.Resource(count_from_stream, stream_counts)
