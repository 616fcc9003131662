"""Many adds and reads of single tasks at once, on every backend: on aws they are
coalesced into BatchWriteItem and BatchGetItem calls (adapters/dynamodb/batched.py),
and every caller must still get exactly its own outcome."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import TaskAlreadyExists, TaskNotFound
from domain.models import Task
from tests.support.backends import RepoHarness

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
LARGE = {"blob": "x" * 3000, "words": ["ünïcode"] * 50}
"""A payload stored beside the state item on aws (over 320 bytes of JSON)."""


def tasks_of(count: int) -> list[Task]:
    """Tasks with small and large payloads, alternately."""
    return [
        Task.create(
            "email", LARGE if n % 2 else {"n": n}, T0 + timedelta(seconds=n), max_attempts=3
        )
        for n in range(count)
    ]


async def test_many_adds_at_once_are_all_stored_as_given(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    tasks = tasks_of(60)  # more than one BatchWriteItem (25) of state items and of payloads
    await asyncio.gather(*(repo.add(task) for task in tasks))
    stored = await asyncio.gather(*(repo.get(task.id) for task in tasks))
    assert stored == tasks


async def test_many_reads_at_once_each_get_their_own_task(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    tasks = tasks_of(130)  # more keys than one BatchGetItem takes (100)
    for task in tasks:
        await repo.add(task)
    ids = [task.id for task in tasks] + [tasks[0].id, tasks[1].id]  # the same id twice
    stored = await asyncio.gather(*(repo.get(task_id) for task_id in ids))
    assert [task.id for task in stored] == ids
    assert stored[:130] == tasks
    assert stored[130:] == tasks[:2]


async def test_a_missing_task_fails_only_its_own_read(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    tasks = tasks_of(9)
    await asyncio.gather(*(repo.add(task) for task in tasks))
    missing = "00000000-0000-4000-8000-000000000000"
    ids = [task.id for task in tasks[:5]] + [missing] + [task.id for task in tasks[5:]]
    outcomes = await asyncio.gather(*(repo.get(i) for i in ids), return_exceptions=True)
    assert isinstance(outcomes[5], TaskNotFound) and outcomes[5].task_id == missing
    assert outcomes[:5] + outcomes[6:] == tasks


async def test_a_second_add_of_a_task_fails_among_concurrent_adds(
    repo_harness: RepoHarness,
) -> None:
    repo = repo_harness.repository
    tasks = tasks_of(6)
    await repo.add(tasks[0])
    outcomes = await asyncio.gather(*(repo.add(task) for task in tasks), return_exceptions=True)
    assert isinstance(outcomes[0], TaskAlreadyExists)
    assert outcomes[1:] == [None] * 5
    assert await asyncio.gather(*(repo.get(task.id) for task in tasks)) == tasks
    with pytest.raises(TaskAlreadyExists):
        await repo.add(tasks[3])
