"""The claim check's rules (adapters/claim_check.py) on the memory and SQLite stores with
a directory of blobs: look-alike values, a late write of a lost lease, tasks handed over
from a list, the blob limit of a result, and blobs deleted with their tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.blobs import DirectoryBlobStore
from adapters.claim_check import ClaimCheckTaskRepository, PurgedBlobs, reference_key
from adapters.clock import ManualClock
from adapters.memory import InMemoryTaskRepository
from adapters.sqlite import SqliteDatabase, SqliteTaskRepository
from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.errors import BlobNotFound, ConcurrencyConflict
from domain.models import Task, TaskStatus
from domain.services import SubmitRequest
from tests.support.large_values import CountingBlobStore, large_text

LIMIT = 1000
BIG = {"text": large_text(5000)}
LOOK_ALIKE = {"$taskq_blob": {"key": "tasks/someone/payload-1", "bytes": 1}}


@pytest.fixture(params=["memory", "sqlite"])
async def repository(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ClaimCheckTaskRepository]:
    blobs = CountingBlobStore(DirectoryBlobStore(tmp_path / "blobs"))
    if request.param == "memory":
        inner: InMemoryTaskRepository | SqliteTaskRepository = InMemoryTaskRepository()
        yield ClaimCheckTaskRepository(
            inner, lambda: blobs, inline_limit=LIMIT, max_blob_bytes=10**6
        )
        return
    clock = ManualClock()
    db = SqliteDatabase(str(tmp_path / "tasks.db"), clock=clock)
    inner = SqliteTaskRepository(db, retention_seconds=60, on_purge=PurgedBlobs(lambda: blobs))
    try:
        yield ClaimCheckTaskRepository(
            inner, lambda: blobs, inline_limit=LIMIT, max_blob_bytes=10**6
        )
    finally:
        db.close()


def blobs_of(repository: ClaimCheckTaskRepository) -> CountingBlobStore:
    store = repository._blobs()
    assert isinstance(store, CountingBlobStore)
    return store


def new_task(payload: object) -> Task:
    return Task.create("mirror", payload, ManualClock().now())


async def test_a_look_alike_value_is_kept_as_it_is(repository: ClaimCheckTaskRepository) -> None:
    task = new_task(LOOK_ALIKE)
    await repository.add(task)
    claimed = task.claim("lease", task.created_at, 30)
    await repository.transition(claimed, expected=task)
    done = claimed.complete(LOOK_ALIKE, task.created_at)
    await repository.transition(done, expected=claimed)

    got = await repository.get(task.id)
    [listed] = (await repository.list_by_status(TaskStatus.COMPLETED, limit=5)).items

    assert got.payload == LOOK_ALIKE and got.result == LOOK_ALIKE
    assert listed.payload == LOOK_ALIKE and listed.result == LOOK_ALIKE
    assert sum(blobs_of(repository).calls.values()) == 0


async def test_a_late_result_of_a_lost_lease_never_replaces_the_winners(
    repository: ClaimCheckTaskRepository,
) -> None:
    task = new_task(BIG)
    await repository.add(task)
    now = task.created_at
    first = task.claim("first", now, 30)
    await repository.transition(first, expected=task)
    second = first.take_over("second", now + timedelta(seconds=60), 30)
    await repository.transition(second, expected=first)
    await repository.transition(second.complete({"by": "second", **BIG}, now), expected=second)

    with pytest.raises(ConcurrencyConflict):
        await repository.transition(first.complete({"by": "first", **BIG}, now), expected=first)

    got = await repository.get(task.id)
    assert got.result == {"by": "second", **BIG} and got.payload == BIG


async def test_a_task_from_a_list_keeps_its_reference_through_a_transition(
    repository: ClaimCheckTaskRepository,
) -> None:
    task = new_task(BIG)
    await repository.add(task)
    [listed] = (await repository.list_by_status(TaskStatus.PENDING, limit=5)).items
    assert reference_key(listed.payload) is not None, "a list fetches no blob"
    gets = blobs_of(repository).calls["get"]

    claimed = listed.claim("lease", task.created_at, 30)
    await repository.transition(claimed, expected=listed)

    assert blobs_of(repository).calls["get"] == gets
    got = await repository.get(task.id)
    assert got.status is TaskStatus.PROCESSING and got.payload == BIG


async def test_a_purge_deletes_the_blobs_of_the_tasks_it_deletes(tmp_path: Path) -> None:
    blobs = DirectoryBlobStore(tmp_path / "blobs")
    clock = ManualClock()
    db = SqliteDatabase(str(tmp_path / "tasks.db"), clock=clock)
    inner = SqliteTaskRepository(db, retention_seconds=60, on_purge=PurgedBlobs(lambda: blobs))
    repository = ClaimCheckTaskRepository(
        inner, lambda: blobs, inline_limit=LIMIT, max_blob_bytes=10**6
    )
    try:
        task = Task.create("mirror", BIG, clock.now())
        await repository.add(task)
        claimed = task.claim("lease", clock.now(), 30)
        await repository.transition(claimed, expected=task)
        await repository.transition(claimed.complete(BIG, clock.now()), expected=claimed)
        stored = await inner.get(task.id)
        keys = [reference_key(stored.payload), reference_key(stored.result)]
        assert all(keys)
        for key in keys:
            assert key is not None and (await blobs.head(key)).size > 5000

        await clock.advance(120)
        assert await inner.purge_expired(clock.now()) == 1

        for key in keys:
            assert key is not None
            with pytest.raises(BlobNotFound):
                await blobs.head(key)
    finally:
        db.close()


async def test_a_result_past_the_blob_limit_fails_its_task_naming_the_limit(
    tmp_path: Path,
) -> None:
    text = large_text(2000)
    settings = Settings(
        backend="memory",
        handlers="tests.support.large_values",
        inline_limit=0,
        max_blob_bytes=len(text) + 12,  # the payload {"text": ...}, not the result
        blob_dir=str(tmp_path / "blobs"),
    )
    container = build_container(settings)
    service = container.task_service()
    task = await service.submit(SubmitRequest(type="mirror", payload={"text": text}))
    deliveries = await container.queue().receive(
        max_messages=1, visibility_timeout=30, wait_seconds=0
    )
    await container.processor().process(deliveries[0])

    failed = await service.get(task.id)
    assert failed.status is TaskStatus.FAILED and failed.error is not None
    assert f"{len(text) + 12:,}" in failed.error and "TASKQ_MAX_BLOB_BYTES" in failed.error
