"""``TaskRepository.oldest_due_pending``: the due time of the oldest PENDING task that is
due, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.models import Task
from tests.support.backends import RepoHarness

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_nothing_is_due_in_an_empty_store(repo_harness: RepoHarness) -> None:
    assert await repo_harness.repository.oldest_due_pending(at(0)) is None


async def test_the_earliest_due_time_among_due_pending_tasks(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    scheduled_earlier = Task.create("email", 1, at(0), run_at=at(600))  # created first
    submitted = Task.create("email", 2, at(10))
    later = Task.create("email", 3, at(20))
    for task in (scheduled_earlier, submitted, later):
        await repo.add(task)

    assert await repo.oldest_due_pending(at(5)) is None, "nothing due yet"
    assert await repo.oldest_due_pending(at(15)) == at(10)
    assert await repo.oldest_due_pending(at(700)) == at(10)
    await repo.transition(submitted.cancel(at(30)), expected=submitted)
    assert await repo.oldest_due_pending(at(700)) == at(20), "a cancelled task leaves"


async def test_a_scheduled_task_is_due_at_its_run_at(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    await repo.add(Task.create("email", 1, at(0), run_at=at(600)))
    await repo.add(Task.create("email", 2, at(1), run_at=at(300)))

    assert await repo.oldest_due_pending(at(299)) is None
    assert await repo.oldest_due_pending(at(300)) == at(300), "due at run_at, inclusive"


async def test_a_claimed_task_leaves_and_a_retried_one_counts_from_its_failure(
    repo_harness: RepoHarness,
) -> None:
    repo = repo_harness.repository
    task = Task.create("email", 1, at(0))
    await repo.add(task)
    claimed = task.claim("lease", at(5), 30)
    await repo.transition(claimed, expected=task)
    assert await repo.oldest_due_pending(at(10)) is None, "PROCESSING is not waiting"

    retried = claimed.fail_attempt("boom", at(12))
    await repo.transition(retried, expected=claimed)
    assert await repo.oldest_due_pending(at(20)) == at(12), "updated_at: the retry's due"


async def test_oldest_due_does_not_depend_on_newer_tasks(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    oldest = Task.create("email", 0, at(0))
    await repo.add(oldest)
    for n in range(30):
        await repo.add(Task.create("email", n, at(1 + n)))
    assert await repo.oldest_due_pending(at(100)) == at(0)
