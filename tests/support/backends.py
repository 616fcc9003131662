"""How each backend is built for the contract suite.

Each backend is a function yielding a ``QueueHarness`` or a ``RepoHarness``; the
fixtures in tests/contract/conftest.py parametrise over the names in ``QUEUE_BACKENDS``
and ``REPO_BACKENDS``. A backend that needs a server this machine does not have skips
locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from adapters.clock import ManualClock
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from adapters.sqlite import (
    SqliteDatabase,
    SqliteTaskQueue,
    SqliteTaskRepository,
    SqliteWorkerRegistry,
)
from domain.coordination_ports import FlowControlStore
from domain.models import RECEIVE_LIMIT_REASON, TaskStatus
from domain.ports import TaskQueue, TaskRepository, WorkerRegistry

MAX_RECEIVE_COUNT = 3
"""Queues in the contract suite dead-letter a message on its fourth receive."""


@dataclass
class QueueHarness:
    queue: TaskQueue
    advance: Callable[[float], Awaitable[None]]
    """Let ``seconds`` pass for the queue (a manual clock, or real time)."""
    send_raw: Callable[[str], Awaitable[None]]
    """Put a body on the main queue as it is, bypassing the envelope."""
    receive_limit_reason: str | None = RECEIVE_LIMIT_REASON
    """The reason a dead letter the queue moved itself is listed with (SQS keeps none)."""


@dataclass
class RepoHarness:
    repository: TaskRepository
    workers: WorkerRegistry


@asynccontextmanager
async def memory_queue() -> AsyncIterator[QueueHarness]:
    clock = ManualClock()
    queue = InMemoryTaskQueue(clock, max_receive_count=MAX_RECEIVE_COUNT)
    yield QueueHarness(queue=queue, advance=clock.advance, send_raw=queue.send_raw)


@asynccontextmanager
async def memory_repo() -> AsyncIterator[RepoHarness]:
    yield RepoHarness(repository=InMemoryTaskRepository(), workers=InMemoryWorkerRegistry())


@asynccontextmanager
async def sqlite_queue() -> AsyncIterator[QueueHarness]:
    clock = ManualClock()
    with tempfile.TemporaryDirectory(prefix="taskq-contract-") as directory:
        db = SqliteDatabase(f"{directory}/queue.db", clock=clock)
        try:
            queue = SqliteTaskQueue(db, clock, max_receive_count=MAX_RECEIVE_COUNT)
            yield QueueHarness(queue=queue, advance=clock.advance, send_raw=queue.send_raw)
        finally:
            db.close()


@asynccontextmanager
async def sqlite_repo() -> AsyncIterator[RepoHarness]:
    with tempfile.TemporaryDirectory(prefix="taskq-contract-") as directory:
        db = SqliteDatabase(f"{directory}/repo.db", clock=ManualClock())
        try:
            yield RepoHarness(repository=SqliteTaskRepository(db), workers=SqliteWorkerRegistry(db))
        finally:
            db.close()


# -- aws (SQS + DynamoDB on a local endpoint: tests/support/aws.py) ------------------


@asynccontextmanager
async def aws_queue() -> AsyncIterator[QueueHarness]:
    from adapters.sqs import SqsTaskQueue
    from tests.support.aws import aws_resources

    async with aws_resources(max_receive_count=MAX_RECEIVE_COUNT) as aws:
        queue = SqsTaskQueue(aws.sqs, aws.provisioned.queue_url, aws.provisioned.dlq_url)
        yield QueueHarness(
            queue=queue, advance=asyncio.sleep, send_raw=queue.send_raw, receive_limit_reason=None
        )


@asynccontextmanager
async def aws_priority_queue() -> AsyncIterator[QueueHarness]:
    """One SQS queue per priority (``TASKQ_PRIORITIES=true``)."""
    from adapters.sqs import SqsTaskQueue
    from adapters.sqs.priority_queue import SqsPriorityTaskQueue
    from tests.support.aws import aws_resources

    async with aws_resources(max_receive_count=MAX_RECEIVE_COUNT, priorities=True) as aws:
        dlq_url = aws.provisioned.dlq_url
        queues = {
            p: SqsTaskQueue(aws.sqs, url, dlq_url, priority=p)
            for p, url in aws.provisioned.priority_queue_urls.items()
        }
        queue = SqsPriorityTaskQueue(queues)
        yield QueueHarness(
            queue=queue, advance=asyncio.sleep, send_raw=queue.send_raw, receive_limit_reason=None
        )


@asynccontextmanager
async def aws_repo() -> AsyncIterator[RepoHarness]:
    from adapters.dynamodb import DynamoDbTaskRepository, DynamoDbWorkerRegistry
    from tests.support.aws import aws_resources

    async with aws_resources(max_receive_count=MAX_RECEIVE_COUNT) as aws:
        yield RepoHarness(
            repository=settled_counts(DynamoDbTaskRepository(aws.dynamodb, aws.table_name)),
            workers=DynamoDbWorkerRegistry(aws.dynamodb, aws.table_name),
        )


def settled_counts(repository: TaskRepository) -> TaskRepository:
    """On DynamoDB the counts come from the table's stream, trailing the writes by an
    aggregator's pass: read them after one pass, as a reader a second later would."""
    from adapters.dynamodb.stream_counts import StreamCounts
    from tests.support.aws import stream_counts

    counts: StreamCounts = stream_counts(repository)
    plain = repository.count_by_status

    async def count_by_status() -> dict[TaskStatus, int]:
        assert await counts.run_once()
        return await plain()

    repository.count_by_status = count_by_status  # type: ignore[method-assign]
    return repository


@asynccontextmanager
async def batching_queue() -> AsyncIterator[QueueHarness]:
    """The batching decorator over the memory queue: it must honour the same contract."""
    from adapters.batching import BatchingTaskQueue

    clock = ManualClock()
    inner = InMemoryTaskQueue(clock, max_receive_count=MAX_RECEIVE_COUNT)
    queue = BatchingTaskQueue(inner)
    yield QueueHarness(queue=queue, advance=clock.advance, send_raw=inner.send_raw)


QUEUE_BACKENDS: dict[str, Callable[[], AbstractAsyncContextManager[QueueHarness]]] = {
    "memory": memory_queue,
    "memory-batching": batching_queue,
    "sqlite": sqlite_queue,
    "aws": aws_queue,
    "aws-priorities": aws_priority_queue,
}
REPO_BACKENDS: dict[str, Callable[[], AbstractAsyncContextManager[RepoHarness]]] = {
    "memory": memory_repo,
    "sqlite": sqlite_repo,
    "aws": aws_repo,
}


# -- the flow-control store (tests/contract/test_flow_control_store.py) ---------------


@asynccontextmanager
async def memory_flow() -> AsyncIterator[FlowControlStore]:
    from adapters.memory_flow import InMemoryFlowControlStore

    yield InMemoryFlowControlStore()


@asynccontextmanager
async def sqlite_flow() -> AsyncIterator[FlowControlStore]:
    from adapters.sqlite import SqliteFlowControlStore

    with tempfile.TemporaryDirectory(prefix="taskq-contract-") as directory:
        db = SqliteDatabase(f"{directory}/flow.db", clock=ManualClock())
        try:
            yield SqliteFlowControlStore(db)
        finally:
            db.close()


@asynccontextmanager
async def aws_flow() -> AsyncIterator[FlowControlStore]:
    from adapters.dynamodb.flow_control import DynamoDbFlowControlStore
    from tests.support.aws import aws_resources

    async with aws_resources(max_receive_count=MAX_RECEIVE_COUNT) as aws:
        yield DynamoDbFlowControlStore(aws.dynamodb, aws.table_name)


FLOW_BACKENDS: dict[str, Callable[[], AbstractAsyncContextManager[FlowControlStore]]] = {
    "memory": memory_flow,
    "sqlite": sqlite_flow,
    "aws": aws_flow,
}
