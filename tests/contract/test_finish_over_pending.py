"""Claim at finish (domain/claim_at_finish.py) on every backend: an attempt's outcome
stored over the PENDING version it started from, in one compare-and-set, PENDING ->
its outcome, with no PROCESSING in between; counts and listing follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import ConcurrencyConflict
from domain.models import Task, TaskStatus
from tests.support.backends import RepoHarness

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
LARGE = {"blob": "x" * 4000, "n": list(range(50))}


def finished(task: Task, token: str, outcome: str) -> Task:
    """The attempt claimed in memory only, then ended as ``outcome``."""
    claimed = task.claim(token, T0 + timedelta(seconds=1), 30)
    now = T0 + timedelta(seconds=2)
    if outcome == "completed":
        return claimed.complete({"by": token, "big": LARGE}, now)
    if outcome == "failed":
        return claimed.fail("no such recipient", now)
    return claimed.retry_later("smtp down", now)


@pytest.mark.parametrize("outcome", ["completed", "failed", "retry"])
async def test_an_outcome_is_stored_over_the_pending_version_once(
    repo_harness: RepoHarness, outcome: str
) -> None:
    repo = repo_harness.repository
    task = Task.create("email", LARGE, T0)
    await repo.add(task)
    first = finished(task, "lease-1", outcome)
    await repo.transition(first, expected=task)
    assert await repo.get(task.id) == first
    with pytest.raises(ConcurrencyConflict):  # a second writer, from the same PENDING
        await repo.transition(finished(task, "lease-2", outcome), expected=task)
    assert await repo.get(task.id) == first
    counts = await repo.count_by_status()
    assert counts[TaskStatus.PROCESSING] == 0
    assert sum(counts.values()) == 1 and counts[first.status] == 1
    listed = await repo.list_by_status(first.status, limit=5)
    assert [t.id for t in listed.items] == [task.id]
    if first.status is not TaskStatus.PENDING:
        assert (await repo.list_by_status(TaskStatus.PENDING, limit=5)).items == []


async def test_a_cancel_first_makes_the_outcome_a_conflict(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    task = Task.create("email", "a@b.io", T0)
    other = Task.create("email", "c@d.io", T0 + timedelta(seconds=1))
    for each in (task, other):
        await repo.add(each)
    cancelled = task.cancel(T0 + timedelta(seconds=1))
    await repo.transition(cancelled, expected=task)
    with pytest.raises(ConcurrencyConflict):
        await repo.transition(finished(task, "lease-1", "completed"), expected=task)
    assert await repo.get(task.id) == cancelled
    await repo.transition(finished(other, "lease-2", "completed"), expected=other)
    counts = await repo.count_by_status()
    assert (counts[TaskStatus.CANCELLED], counts[TaskStatus.COMPLETED]) == (1, 1)
    assert (counts[TaskStatus.PENDING], counts[TaskStatus.PROCESSING]) == (0, 0)
    done = await repo.list_by_status(TaskStatus.COMPLETED, limit=5)
    assert [t.id for t in done.items] == [other.id]
