"""The SQLite write lock in a real scrape of ``GET /metrics``: a submit that had to wait
for another process's transaction shows in the counters; other backends expose none."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app

PROMETHEUS = {"Accept": "text/plain; version=0.0.4"}


def _values(text: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("taskq_sqlite_")
    }


async def _scrape(settings: Settings, hold_lock_on: str | None = None) -> dict[str, float]:
    container = build_container(settings)
    app = create_app(container)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        task = {"type": "data-export", "payload": {"dataset": "tasks", "format": "csv"}}
        assert (await client.post("/tasks", json=task)).status_code == 201
        if hold_lock_on is not None:
            other = sqlite3.connect(hold_lock_on, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another process's transaction
            submitting = asyncio.create_task(client.post("/tasks", json=task))
            await asyncio.sleep(0.3)
            assert not submitting.done()
            other.execute("COMMIT")
            other.close()
            assert (await submitting).status_code == 201
        scrape = await client.get("/metrics", headers=PROMETHEUS)
        assert scrape.status_code == 200
        return _values(scrape.text)


async def test_a_submit_that_waited_for_the_write_lock_shows_in_the_scrape(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "taskq.db")
    values = await _scrape(Settings(backend="sqlite", sqlite_path=path), hold_lock_on=path)
    assert values["taskq_sqlite_write_transactions_total"] >= 2
    # the write that found the lock held ran on the database's thread, not the loop's
    assert 1 <= values["taskq_sqlite_loop_write_transactions_total"]
    assert (
        values["taskq_sqlite_loop_write_transactions_total"]
        < (values["taskq_sqlite_write_transactions_total"])
    )
    assert values["taskq_sqlite_write_lock_waits_total"] >= 1
    assert values["taskq_sqlite_write_lock_wait_seconds_total"] >= 0.25


async def test_without_another_writer_nothing_waits(tmp_path: Path) -> None:
    values = await _scrape(Settings(backend="sqlite", sqlite_path=str(tmp_path / "t.db")))
    assert values["taskq_sqlite_write_transactions_total"] >= 1
    assert (
        values["taskq_sqlite_loop_write_transactions_total"]
        == (values["taskq_sqlite_write_transactions_total"])
    )  # all of them on the event loop's connection
    assert values["taskq_sqlite_write_lock_waits_total"] == 0
    assert values["taskq_sqlite_write_lock_wait_seconds_total"] == 0


async def test_the_memory_backend_has_no_sqlite_metrics() -> None:
    assert await _scrape(Settings(backend="memory")) == {}
