"""The TaskRepository and WorkerRegistry contracts, asserted on every backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import ConcurrencyConflict, InvalidCursor, TaskAlreadyExists, TaskNotFound
from domain.models import Task, TaskStatus, WorkerInfo
from domain.ports import TaskRepository
from domain.progress import Progress
from tests.support.backends import RepoHarness

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_task(n: int = 0, *, payload: object = "user@example.com") -> Task:
    return Task.create("email", payload, T0 + timedelta(seconds=n), max_attempts=3)


async def stored_and_claimed(repo: TaskRepository, lease_token: str) -> tuple[Task, Task]:
    """A task stored, then claimed at T0 with ``lease_token``: as added, and as claimed."""
    task = make_task()
    await repo.add(task)
    claimed = task.claim(lease_token, T0, 30)
    await repo.transition(claimed, expected=task)
    return task, claimed


async def test_add_then_get_round_trips_every_field(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    task = Task.create(
        "data-export",
        {"rows": [1, 2.5, None, True], "name": "ünïcode", "nested": {"a": []}},
        T0,
        max_attempts=5,
        timeout_seconds=12.5,
        run_at=T0 + timedelta(seconds=30),
    )
    await repo.add(task)
    assert await repo.get(task.id) == task

    claimed = task.claim("lease-1", T0 + timedelta(seconds=1), 30)
    await repo.transition(claimed, expected=task)
    assert await repo.get(task.id) == claimed
    flagged = claimed.request_cancel(T0 + timedelta(seconds=1.5))
    await repo.transition(flagged, expected=claimed)
    assert await repo.get(task.id) == flagged
    done = flagged.complete({"ok": True, "n": 3}, T0 + timedelta(seconds=2))
    await repo.transition(done, expected=flagged)
    assert await repo.get(task.id) == done


async def test_a_lost_attempt_and_the_isolated_flag_round_trip(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    task, claimed = await stored_and_claimed(repo, "lease-1")
    # Its worker died: a new worker takes over, and the task runs isolated from now on.
    taken = claimed.take_over("lease-2", T0 + timedelta(seconds=31), 30)
    await repo.transition(taken, expected=claimed)
    stored = await repo.get(task.id)
    assert stored == taken
    assert stored.isolated and stored.attempts == 1
    done = stored.complete("ok", T0 + timedelta(seconds=32))
    await repo.transition(done, expected=stored)
    assert await repo.get(task.id) == done


async def test_the_trace_context_is_kept_through_every_write(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    task = Task.create("email", "a@b.io", T0, traceparent=traceparent)
    plain = make_task(1)
    await repo.add(task)
    await repo.add(plain)
    claimed = task.claim("lease-1", T0, 30)
    await repo.transition(claimed, expected=task)
    retried = claimed.retry_later("smtp down", T0 + timedelta(seconds=1))
    await repo.transition(retried, expected=claimed)
    stored = await repo.get(task.id)
    assert stored == retried and stored.traceparent == traceparent
    assert (await repo.get(plain.id)).traceparent is None


async def test_the_last_traceback_round_trips(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    task = make_task()
    await repo.add(task)
    assert (await repo.get(task.id)).traceback is None
    claimed = task.claim("lease-1", T0, 30)
    await repo.transition(claimed, expected=task)
    trace = 'Traceback (most recent call last):\n  File "h.py", line 1\nValueError: ü'
    retried = claimed.fail_attempt("ValueError: ü", T0 + timedelta(seconds=1), traceback=trace)
    await repo.transition(retried, expected=claimed)
    assert (await repo.get(task.id)).traceback == trace
    again = retried.claim("lease-2", T0 + timedelta(seconds=2), 30)
    await repo.transition(again, expected=retried)
    done = again.complete("ok", T0 + timedelta(seconds=3))
    await repo.transition(done, expected=again)
    assert await repo.get(task.id) == done and done.traceback == trace  # the last one


async def test_progress_round_trips_and_is_kept_once_finished(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    _, claimed = await stored_and_claimed(repo, "lease-1")
    first = Progress.report(12.5, "ünïcode step 1 of 8", T0 + timedelta(seconds=1))
    reported = claimed.report_progress(first, T0 + timedelta(seconds=1))
    await repo.transition(reported, expected=claimed)
    assert (await repo.get(claimed.id)).progress == first

    bare = Progress.report(100, None, T0 + timedelta(seconds=2))
    again = reported.report_progress(bare, T0 + timedelta(seconds=2))
    await repo.transition(again, expected=reported)
    done = again.complete({"ok": True}, T0 + timedelta(seconds=3))
    await repo.transition(done, expected=again)
    stored = await repo.get(claimed.id)
    assert stored == done
    assert stored.progress == bare


async def test_add_rejects_an_existing_id(repo_harness: RepoHarness) -> None:
    task = make_task()
    await repo_harness.repository.add(task)
    with pytest.raises(TaskAlreadyExists):
        await repo_harness.repository.add(task)


async def test_get_unknown_id_raises_not_found(repo_harness: RepoHarness) -> None:
    with pytest.raises(TaskNotFound):
        await repo_harness.repository.get("00000000-0000-4000-8000-000000000000")


async def test_transition_from_a_stale_version_is_a_conflict(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    task, first = await stored_and_claimed(repo, "lease-a")
    with pytest.raises(ConcurrencyConflict):
        await repo.transition(task.claim("lease-b", T0, 30), expected=task)
    assert (await repo.get(task.id)).lease_token == "lease-a"


async def test_transition_of_a_missing_task_raises_not_found(repo_harness: RepoHarness) -> None:
    task = make_task()
    with pytest.raises(TaskNotFound):
        await repo_harness.repository.transition(task.claim("x", T0, 30), expected=task)


async def test_concurrent_claims_of_one_task_let_exactly_one_win(
    repo_harness: RepoHarness,
) -> None:
    repo = repo_harness.repository
    task = make_task()
    await repo.add(task)

    async def claim(n: int) -> bool:
        try:
            await repo.transition(task.claim(f"lease-{n}", T0, 30), expected=task)
            return True
        except ConcurrencyConflict:
            return False

    results = await asyncio.gather(*(claim(n) for n in range(8)))
    assert results.count(True) == 1
    stored = await repo.get(task.id)
    assert stored.attempts == 1
    assert stored.lease_token == f"lease-{results.index(True)}"


async def test_list_by_status_is_newest_first_and_paginates(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    tasks = [make_task(n) for n in range(7)]
    for task in tasks:
        await repo.add(task)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await repo.list_by_status(TaskStatus.PENDING, limit=3, cursor=cursor)
        assert len(page.items) <= 3
        seen.extend(t.id for t in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [t.id for t in reversed(tasks)]


async def test_cursor_stays_valid_while_tasks_change_status(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    tasks = [make_task(n) for n in range(6)]
    for task in tasks:
        await repo.add(task)
    first = await repo.list_by_status(TaskStatus.PENDING, limit=2)
    assert [t.id for t in first.items] == [tasks[5].id, tasks[4].id]
    # The newest task and one on the next page leave PENDING between the two reads.
    for moved in (tasks[5], tasks[2]):
        await repo.transition(moved.claim("l", T0, 30), expected=moved)
    second = await repo.list_by_status(TaskStatus.PENDING, limit=2, cursor=first.next_cursor)
    assert [t.id for t in second.items] == [tasks[3].id, tasks[1].id]
    processing = await repo.list_by_status(TaskStatus.PROCESSING, limit=10)
    assert {t.id for t in processing.items} == {tasks[5].id, tasks[2].id}
    assert processing.next_cursor is None


async def test_empty_status_lists_nothing(repo_harness: RepoHarness) -> None:
    page = await repo_harness.repository.list_by_status(TaskStatus.FAILED, limit=10)
    assert page.items == []
    assert page.next_cursor is None


async def test_a_foreign_cursor_is_rejected(repo_harness: RepoHarness) -> None:
    with pytest.raises(InvalidCursor):
        await repo_harness.repository.list_by_status(
            TaskStatus.PENDING, limit=10, cursor="not-a-cursor!!"
        )


async def test_counts_follow_every_transition(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    counts = await repo.count_by_status()
    assert counts == dict.fromkeys(TaskStatus, 0)
    tasks = [make_task(n) for n in range(5)]
    for task in tasks:
        await repo.add(task)
    a = tasks[0].claim("l", T0, 30)
    await repo.transition(a, expected=tasks[0])
    await repo.transition(a.complete(None, T0), expected=a)
    b = tasks[1].claim("l", T0, 30)
    await repo.transition(b, expected=tasks[1])
    await repo.transition(b.fail("boom", T0), expected=b)
    c = tasks[2].claim("l", T0, 30)
    await repo.transition(c, expected=tasks[2])
    await repo.transition(tasks[3].cancel(T0), expected=tasks[3])
    counts = await repo.count_by_status()
    assert counts == {
        TaskStatus.PENDING: 1,
        TaskStatus.PROCESSING: 1,
        TaskStatus.COMPLETED: 1,
        TaskStatus.FAILED: 1,
        TaskStatus.CANCELLED: 1,
    }


async def test_a_lost_race_does_not_change_counts(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    task = make_task()
    await repo.add(task)
    await repo.transition(task.claim("a", T0, 30), expected=task)
    with pytest.raises(ConcurrencyConflict):
        await repo.transition(task.cancel(T0), expected=task)
    counts = await repo.count_by_status()
    assert counts[TaskStatus.PROCESSING] == 1
    assert counts[TaskStatus.CANCELLED] == 0
    assert counts[TaskStatus.PENDING] == 0


async def test_ping_answers(repo_harness: RepoHarness) -> None:
    await repo_harness.repository.ping()


def worker(worker_id: str, seen: datetime, heartbeat_seconds: float = 4.0) -> WorkerInfo:
    return WorkerInfo(
        worker_id=worker_id,
        host="host-a",
        pid=123,
        concurrency=5,
        in_flight=2,
        started_at=T0,
        last_seen=seen,
        heartbeat_seconds=heartbeat_seconds,
    )


async def test_worker_registry_lists_live_workers_until_they_expire(
    repo_harness: RepoHarness,
) -> None:
    workers = repo_harness.workers
    await workers.beat(worker("w-1", T0), ttl_seconds=30)
    await workers.beat(worker("w-2", T0 + timedelta(seconds=5)), ttl_seconds=30)
    live = await workers.live(T0 + timedelta(seconds=5))
    assert {w.worker_id for w in live} == {"w-1", "w-2"}
    assert next(w for w in live if w.worker_id == "w-1") == worker("w-1", T0)
    live = await workers.live(T0 + timedelta(seconds=7))
    assert [w.worker_id for w in live] == ["w-2"]
    await workers.remove("w-2")
    assert await workers.live(T0 + timedelta(seconds=7)) == []


async def test_a_worker_that_missed_its_heartbeat_is_not_live_though_its_ttl_runs(
    repo_harness: RepoHarness,
) -> None:
    """A SIGKILLed worker never removes itself: it stops counting one heartbeat plus a
    margin (half a heartbeat) after its last beat, not when its record's TTL ends."""
    workers = repo_harness.workers
    killed = worker("killed", T0, heartbeat_seconds=10)
    await workers.beat(killed, ttl_seconds=300)
    assert await workers.live(T0 + timedelta(seconds=14)) == [killed]
    assert await workers.live(T0 + timedelta(seconds=16)) == []
    # Beating again brings it back: liveness follows the last heartbeat.
    again = worker("killed", T0 + timedelta(seconds=20), heartbeat_seconds=10)
    await workers.beat(again, ttl_seconds=300)
    assert await workers.live(T0 + timedelta(seconds=21)) == [again]


async def test_an_idempotency_key_stores_one_task(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    first, second = make_task(1), make_task(2)
    expires = T0 + timedelta(hours=24)
    assert (
        await repo.add_idempotent(first, key="k-1", fingerprint="f", expires_at=expires, now=T0)
        is None
    )
    again = await repo.add_idempotent(
        second, key="k-1", fingerprint="f", expires_at=expires, now=T0 + timedelta(seconds=5)
    )
    assert again == first.id
    with pytest.raises(TaskNotFound):
        await repo.get(second.id)
    assert sum((await repo.count_by_status()).values()) == 1


async def test_an_idempotency_key_reused_for_another_request_is_refused(
    repo_harness: RepoHarness,
) -> None:
    from domain.errors import IdempotencyKeyReused

    repo = repo_harness.repository
    expires = T0 + timedelta(hours=24)
    await repo.add_idempotent(make_task(1), key="k-2", fingerprint="a", expires_at=expires, now=T0)
    with pytest.raises(IdempotencyKeyReused):
        await repo.add_idempotent(
            make_task(2), key="k-2", fingerprint="b", expires_at=expires, now=T0
        )
    assert sum((await repo.count_by_status()).values()) == 1


async def test_an_expired_idempotency_key_can_be_claimed_again(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    first, later = make_task(1), make_task(2)
    await repo.add_idempotent(
        first, key="k-3", fingerprint="f", expires_at=T0 + timedelta(hours=1), now=T0
    )
    after = T0 + timedelta(hours=2)
    assert (
        await repo.add_idempotent(
            later, key="k-3", fingerprint="f", expires_at=after + timedelta(hours=1), now=after
        )
        is None
    )
    assert (await repo.get(later.id)).id == later.id


async def test_concurrent_submissions_with_one_key_store_exactly_one(
    repo_harness: RepoHarness,
) -> None:
    repo = repo_harness.repository
    tasks = [make_task(n) for n in range(10)]
    expires = T0 + timedelta(hours=24)
    results = await asyncio.gather(
        *(
            repo.add_idempotent(t, key="k-race", fingerprint="f", expires_at=expires, now=T0)
            for t in tasks
        )
    )
    created = [t for t, r in zip(tasks, results, strict=True) if r is None]
    assert len(created) == 1
    assert {r for r in results if r is not None} <= {created[0].id}
    assert sum((await repo.count_by_status()).values()) == 1


# -- held tasks by due time ------------------------------------------------------------


def held_task(due_in_seconds: float, *, n: int = 0) -> Task:
    return Task.create(
        "email",
        "user@example.com",
        T0 + timedelta(microseconds=n),
        run_at=T0 + timedelta(seconds=due_in_seconds),
        held=True,
    )


async def test_list_due_held_finds_held_tasks_earliest_first(repo_harness: RepoHarness) -> None:
    repo = repo_harness.repository
    later, first, second = held_task(7200, n=1), held_task(3600, n=2), held_task(3601, n=3)
    not_held = Task.create("email", "x", T0, run_at=T0 + timedelta(seconds=60))
    for task in (later, first, second, not_held):
        await repo.add(task)

    due = await repo.list_due_held(T0 + timedelta(seconds=3601), limit=10)
    assert [task.id for task in due] == [first.id, second.id]
    assert due[0] == first, "the whole task comes back"
    assert [t.id for t in await repo.list_due_held(T0 + timedelta(days=1), limit=2)] == [
        first.id,
        second.id,
    ]
    assert await repo.list_due_held(T0 + timedelta(seconds=3599), limit=10) == []


async def test_a_task_leaves_the_held_index_when_it_is_unheld_or_cancelled(
    repo_harness: RepoHarness,
) -> None:
    repo = repo_harness.repository
    unheld, cancelled = held_task(3600, n=1), held_task(3600, n=2)
    for task in (unheld, cancelled):
        await repo.add(task)
    await repo.transition(unheld.unhold(T0), expected=unheld)
    await repo.transition(cancelled.cancel(T0), expected=cancelled)

    assert await repo.list_due_held(T0 + timedelta(days=1), limit=10) == []
    stored = await repo.get(unheld.id)
    assert stored.status is TaskStatus.PENDING and not stored.held


async def test_list_due_held_does_not_depend_on_other_pending_tasks(
    repo_harness: RepoHarness,
) -> None:
    repo = repo_harness.repository
    held = held_task(960)
    await repo.add(held)
    for n in range(30):  # newer PENDING tasks, delayed within the queue's reach
        await repo.add(Task.create("email", n, T0 + timedelta(seconds=1 + n)))

    due = await repo.list_due_held(T0 + timedelta(seconds=960), limit=1)
    assert [task.id for task in due] == [held.id]


async def test_list_due_held_refuses_a_limit_below_one(repo_harness: RepoHarness) -> None:
    with pytest.raises(ValueError, match="limit"):
        await repo_harness.repository.list_due_held(T0, limit=0)
