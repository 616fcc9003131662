"""A transition writes only the columns that change, and the row it leaves is the row
of the new task, whole: every kind of transition, checked against ``task_row``."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.clock import ManualClock
from adapters.sqlite import SqliteDatabase, SqliteTaskRepository
from adapters.sqlite.codec import ROW_COLUMNS, changed_columns, task_row
from domain.errors import ConcurrencyConflict
from domain.models import Task
from domain.priorities import Priority
from domain.progress import Progress

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=2)

Step = Callable[[Task, datetime], Task]

CHAINS: dict[str, list[Step]] = {
    "claimed, reported, extended, completed": [
        lambda t, now: t.claim("lease-1", now, 30),
        lambda t, now: t.report_progress(Progress(40.0, "halfway", now), now),
        lambda t, now: t.extend_lease(now, 60),
        lambda t, now: t.complete({"rows": [1, 2, 3]}, now),
    ],
    "retried, failed, retried by hand, completed": [
        lambda t, now: t.claim("lease-1", now, 30),
        lambda t, now: t.retry_later("timeout", now, traceback="Traceback ..."),
        lambda t, now: t.claim("lease-2", now, 30),
        lambda t, now: t.fail("boom", now),
        lambda t, now: t.retry_failed(now, 2),
        lambda t, now: t.claim("lease-3", now, 30),
        lambda t, now: t.complete(None, now),
    ],
    "cancel requested while running": [
        lambda t, now: t.claim("lease-1", now, 30),
        lambda t, now: t.request_cancel(now),
        lambda t, now: t.cancel(now),
    ],
    "released at shutdown, lost, taken over": [
        lambda t, now: t.claim("lease-1", now, 30),
        lambda t, now: t.release(now),
        lambda t, now: t.claim("lease-2", now, 1),
        lambda t, now: t.take_over("lease-3", now + timedelta(seconds=5), 30),
        lambda t, now: t.settle_lost_attempt(now),
    ],
}


def _stored(path: Path, task_id: str) -> dict[str, object]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute(f"SELECT {', '.join(ROW_COLUMNS)} FROM tasks WHERE id = ?", (task_id,))
        return dict(row.fetchone())
    finally:
        conn.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "taskq.db"


@pytest.fixture
def repo(path: Path) -> Iterator[SqliteTaskRepository]:
    db = SqliteDatabase(str(path), clock=ManualClock(T0))
    try:
        yield SqliteTaskRepository(db)
    finally:
        db.close()


@pytest.mark.parametrize("chain", list(CHAINS), ids=list(CHAINS))
async def test_each_transition_leaves_the_whole_row_of_the_new_task(
    path: Path, repo: SqliteTaskRepository, chain: str
) -> None:
    task = Task.create("email", {"to": "a@example.com"}, T0, priority=Priority.HIGH)
    await repo.add(task)
    for minute, step in enumerate(CHAINS[chain], start=1):
        new = step(task, T0 + timedelta(minutes=minute))
        await repo.transition(new, expected=task)
        assert _stored(path, task.id) == task_row(new)
        assert await repo.get(task.id) == new
        task = new


async def test_a_held_task_unheld_then_run_keeps_its_due_keys_right(
    path: Path, repo: SqliteTaskRepository
) -> None:
    task = Task.create("email", None, T0, run_at=LATER, held=True)
    await repo.add(task)
    assert _stored(path, task.id)["held_key"] is not None
    unheld = task.unhold(LATER)
    for new, expected in ((unheld, task), (unheld.claim("lease", LATER, 30), unheld)):
        await repo.transition(new, expected=expected)
        stored = _stored(path, task.id)
        assert stored == task_row(new)
    assert (stored["held_key"], stored["due_key"]) == (None, None)


async def test_a_stale_expected_version_still_changes_nothing(
    path: Path, repo: SqliteTaskRepository
) -> None:
    task = Task.create("email", None, T0)
    await repo.add(task)
    claimed = task.claim("lease", T0, 30)
    await repo.transition(claimed, expected=task)
    with pytest.raises(ConcurrencyConflict):
        await repo.transition(task.cancel(T0), expected=task)
    assert _stored(path, task.id) == task_row(claimed)


def test_a_claim_and_a_completion_leave_the_payload_and_creation_alone() -> None:
    task = Task.create("email", {"to": "a@example.com"}, T0)
    claimed = task.claim("lease", T0, 30)
    done = claimed.complete({"sent": True}, T0)
    for new, old, written in (
        (claimed, task, {"status", "attempts", "started_at", "lease_token"}),
        (done, claimed, {"status", "result", "finished_at", "lease_token"}),
    ):
        columns = set(changed_columns(new, old))
        assert written <= columns
        assert not columns & {"id", "type", "payload", "created_at", "created_key", "extra"}


def test_a_changed_value_is_written_even_when_it_equals_the_old_one() -> None:
    # 1 == True in Python, but the JSON differs: a value is compared by identity.
    task = Task.create("email", None, T0)
    running = task.claim("lease", T0, 30)
    first = running.complete(1, T0)
    second = dataclasses.replace(first, result=True, version=first.version + 1)
    assert "result" in changed_columns(second, first)
