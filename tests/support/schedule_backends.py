"""Each backend's ScheduleStore for the contract suite (tests/contract/)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from adapters.clock import ManualClock
from adapters.schedules.memory import InMemoryScheduleStore
from adapters.schedules.sqlite import SqliteScheduleStore
from adapters.sqlite import SqliteDatabase
from domain.coordination_ports import ScheduleStore


@asynccontextmanager
async def memory_schedules() -> AsyncIterator[ScheduleStore]:
    yield InMemoryScheduleStore()


@asynccontextmanager
async def sqlite_schedules() -> AsyncIterator[ScheduleStore]:
    with tempfile.TemporaryDirectory(prefix="taskq-contract-") as directory:
        db = SqliteDatabase(f"{directory}/schedules.db", clock=ManualClock())
        try:
            yield SqliteScheduleStore(db)
        finally:
            db.close()


@asynccontextmanager
async def aws_schedules() -> AsyncIterator[ScheduleStore]:
    from adapters.schedules.dynamodb import DynamoDbScheduleStore
    from tests.support.aws import aws_resources

    async with aws_resources(max_receive_count=3) as aws:
        yield DynamoDbScheduleStore(aws.dynamodb, aws.table_name)


SCHEDULE_BACKENDS: dict[str, Callable[[], AbstractAsyncContextManager[ScheduleStore]]] = {
    "memory": memory_schedules,
    "sqlite": sqlite_schedules,
    "aws": aws_schedules,
}
