"""The SQLite dead-letter table empties: a dead letter leaves with its task when the
task is retried or purged; a poison message stays until it is redriven."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters import envelope
from adapters.clock import ManualClock
from adapters.sqlite import MIGRATIONS, SqliteDatabase, SqliteTaskQueue, SqliteTaskRepository
from domain.errors import PermanentTaskError
from domain.services import RETRY_SEND_DELAY_SECONDS
from tests.support.worker_rig import WorkerRig

T0 = datetime(2026, 12, 1, tzinfo=UTC)
RETENTION_SECONDS = 3600


def refuse(payload: Any) -> Any:
    raise PermanentTaskError("the downstream service said no")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[WorkerRig]:
    clock = ManualClock(T0)
    db = SqliteDatabase(str(tmp_path / "tasks.db"), clock=clock)
    repository = SqliteTaskRepository(db, retention_seconds=RETENTION_SECONDS)
    queue = SqliteTaskQueue(db, clock, max_receive_count=5)
    rig = WorkerRig(clock=clock, repository=repository, queue=queue)
    rig.handler("refused", refuse)
    yield rig
    db.close()


async def test_a_retried_task_takes_its_dead_letter_with_it(rig: WorkerRig) -> None:
    first = await rig.submit("refused", 1)
    await rig.submit("refused", 2)
    await rig.queue.send_raw("not an envelope")  # type: ignore[attr-defined]
    await rig.process_visible()
    assert await rig.queue.dead_letter_count() == 3

    await rig.service.retry(first.id, extra_attempts=1)
    assert await rig.queue.dead_letter_count() == 2
    await rig.clock.advance(RETRY_SEND_DELAY_SECONDS)  # a retry's message is sent delayed
    await rig.process_visible()  # it fails again: one dead letter for it, not two
    assert await rig.queue.dead_letter_count() == 3
    assert len(await rig.service.retry_failed(per_second=0)) == 2
    remaining = await rig.queue.list_dead_letters(limit=10)
    assert [d.raw_body for d in remaining] == ["not an envelope"], "poison stays"


async def test_a_purged_task_takes_its_dead_letter_with_it(rig: WorkerRig) -> None:
    await rig.submit("refused", 1)
    await rig.process_visible()
    assert await rig.queue.dead_letter_count() == 1

    purged = await rig.repository.purge_expired(  # type: ignore[attr-defined]
        datetime.fromtimestamp(T0.timestamp() + RETENTION_SECONDS + 1, UTC)
    )
    assert purged == 1
    assert await rig.queue.dead_letter_count() == 0


def _make_version_4_file(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:4]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    at = T0.isoformat(timespec="microseconds")
    for task_id, status in [("done", "COMPLETED"), ("failed", "FAILED"), ("waiting", "PENDING")]:
        conn.execute(
            "INSERT INTO tasks (id, type, payload, status, created_at, created_key, "
            "updated_at, max_attempts, attempts, retry_count, result, version) "
            "VALUES (?, 'email', '\"x\"', ?, ?, ?, ?, 3, 3, 3, 'null', 3)",
            (task_id, status, at, at, at),
        )
    for body in [*(envelope.encode(t) for t in ("done", "purged", "failed", "waiting")), "?"]:
        conn.execute(
            "INSERT INTO dead_letters (message_id, body, receive_count, sent_at, dead_at, "
            "reason) VALUES ('m', ?, 3, 0, 0, 'failed')",
            (body,),
        )
    conn.close()


async def test_the_migration_drops_dead_letters_that_outlived_their_task(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_version_4_file(path)
    clock = ManualClock(T0)
    db = SqliteDatabase(str(path), clock=clock)
    try:
        queue = SqliteTaskQueue(db, clock, max_receive_count=5)
        kept = {d.task_id for d in await queue.list_dead_letters(limit=10)}
    finally:
        db.close()
    assert kept == {"failed", "waiting", None}
