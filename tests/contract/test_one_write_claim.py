"""The one-write claim (``ClaimsInOneWrite``, domain/claiming.py), on every backend that
offers it: it stores exactly what ``Task.claim`` gives, and declines, changing
nothing, every task ``delivery_rules.decide`` would not simply claim."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain.models import Task
from domain.ports import ClaimsInOneWrite
from tests.support.backends import RepoHarness

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
LARGE = {"blob": "x" * 4000, "n": list(range(50))}


def claimer(harness: RepoHarness) -> ClaimsInOneWrite:
    repo = harness.repository
    if not isinstance(repo, ClaimsInOneWrite):
        pytest.skip(f"{type(repo).__name__} reads before it claims")
    return repo


@pytest.mark.parametrize("payload", ["a@b.io", LARGE], ids=["inline", "large"])
async def test_claims_a_pending_task_as_the_model_does(
    repo_harness: RepoHarness, payload: object
) -> None:
    repo = claimer(repo_harness)
    task = Task.create("email", payload, T0, max_attempts=3)
    await repo_harness.repository.add(task)
    now = T0 + timedelta(seconds=2)
    claimed = await repo.claim_pending(task.id, lease_token="lease-1", now=now, lease_seconds=30)
    assert claimed == task.claim("lease-1", now, 30)
    assert await repo_harness.repository.get(task.id) == claimed


async def test_claims_a_task_retried_after_a_failed_attempt(repo_harness: RepoHarness) -> None:
    repo = claimer(repo_harness)
    store = repo_harness.repository
    task = Task.create("email", "a@b.io", T0)
    await store.add(task)
    first = task.claim("lease-1", T0, 30)
    await store.transition(first, expected=task)
    retried = first.retry_later("smtp down", T0 + timedelta(seconds=1), traceback="tb")
    await store.transition(retried, expected=first)
    now = T0 + timedelta(seconds=5)
    claimed = await repo.claim_pending(task.id, lease_token="lease-2", now=now, lease_seconds=30)
    assert claimed == retried.claim("lease-2", now, 30)
    assert claimed is not None and claimed.attempts == 2 and claimed.error == "smtp down"
    assert await store.get(task.id) == claimed


async def test_declines_every_other_task_and_changes_nothing(repo_harness: RepoHarness) -> None:
    repo = claimer(repo_harness)
    store = repo_harness.repository
    scheduled = Task.create("email", "a@b.io", T0, run_at=T0 + timedelta(seconds=60))
    leased = Task.create("email", "b@b.io", T0)
    done = Task.create("email", "c@b.io", T0)
    for task in (scheduled, leased, done):
        await store.add(task)
    leased_now = leased.claim("theirs", T0, 30)
    await store.transition(leased_now, expected=leased)
    done_claimed = done.claim("theirs", T0, 30)
    await store.transition(done_claimed, expected=done)
    done_now = done_claimed.complete("ok", T0 + timedelta(seconds=1))
    await store.transition(done_now, expected=done_claimed)
    now = T0 + timedelta(seconds=120)  # even past the schedule: decide() reads it first
    for before in (scheduled, leased_now, done_now):
        answer = await repo.claim_pending(before.id, lease_token="mine", now=now, lease_seconds=30)
        assert answer is None
        assert await store.get(before.id) == before
    absent = await repo.claim_pending("no-such-task", lease_token="mine", now=now, lease_seconds=30)
    assert absent is None


async def test_of_concurrent_claims_exactly_one_wins(repo_harness: RepoHarness) -> None:
    repo = claimer(repo_harness)
    task = Task.create("email", "a@b.io", T0)
    await repo_harness.repository.add(task)
    answers = await asyncio.gather(
        *(
            repo.claim_pending(task.id, lease_token=f"lease-{i}", now=T0, lease_seconds=30)
            for i in range(4)
        )
    )
    winners = [a for a in answers if a is not None]
    assert len(winners) == 1
    assert await repo_harness.repository.get(task.id) == winners[0]
