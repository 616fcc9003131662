"""/ready on a real SQLite database that fills up: SQLite's own page cap
(``PRAGMA max_page_count``) makes every write that needs a page fail with
SQLITE_FULL, "database or disk is full", as a full disk does; reads still work."""

from __future__ import annotations

from pathlib import Path

import httpx
from dependency_injector import providers

from adapters.clock import ManualClock
from adapters.sqlite import SqliteDatabase
from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.health import PROBE_INTERVAL_SECONDS
from entrypoints.http.app import create_app

PAYLOAD = {"dataset": "tasks", "type": "x" * 20_000, "format": "csv"}


async def cap_pages(db: SqliteDatabase, pages: int) -> None:
    """Cap the file at ``pages`` pages (a setting of each connection); SQLite never caps
    below its current size, so 1 means "full now"."""
    await db.on_each_connection(
        lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}").fetchone()
    )


async def test_ready_follows_a_database_that_fills_up_and_recovers(tmp_path: Path) -> None:
    container = build_container(Settings(backend="sqlite", sqlite_path=str(tmp_path / "t.db")))
    clock = ManualClock()
    container.clock.override(providers.Object(clock))
    app = create_app(container)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):

        async def submit() -> httpx.Response:
            return await client.post("/tasks", json={"type": "data-export", "payload": PAYLOAD})

        assert (await submit()).status_code == 201
        assert (await client.get("/ready")).status_code == 200
        db = container.backend.database()
        await cap_pages(db, 1)  # at most what the file holds now: full

        answers = [(await submit()).status_code for _ in range(3)]
        assert answers == [503, 503, 503]
        ready = await client.get("/ready")
        assert ready.status_code == 503, ready.text
        assert "disk is full" in ready.json()["checks"]["repository"]
        assert (await client.get("/metrics")).status_code == 200, "reads still work"

        # Still full for a task, but a probe (a small row) fits: ready again, half-open,
        # and the next failed write trips it at once.
        await clock.advance(PROBE_INTERVAL_SECONDS)
        assert (await client.get("/ready")).status_code == 200
        assert (await submit()).status_code == 503
        assert (await client.get("/ready")).status_code == 503

        await cap_pages(db, 1_000_000)
        await clock.advance(PROBE_INTERVAL_SECONDS)
        assert (await client.get("/ready")).status_code == 200
        assert (await submit()).status_code == 201
