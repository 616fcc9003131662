"""``GET /tasks/{id}?wait=N`` on real processes: ``taskq serve`` answers when its own
worker finishes the task; ``taskq api`` alone (SQLite) learns it from the store, which
a separate ``taskq worker`` writes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import ANY

import httpx
import pytest

from tests.support.processes import ProcessGroup, running_server

pytestmark = pytest.mark.e2e

SQLITE_FAST_WORKER = {"TASKQ_POLL_WAIT_SECONDS": "1"}


def waited(url: str, task_id: str, wait: float) -> tuple[dict[str, object], float]:
    started = time.monotonic()
    response = httpx.get(f"{url}/tasks/{task_id}", params={"wait": wait}, timeout=wait + 10)
    assert response.status_code == 200, response.text
    return response.json(), time.monotonic() - started


def test_serve_answers_a_wait_when_its_worker_completes_the_task(tmp_path: Path) -> None:
    env = {"TASKQ_BACKEND": "memory", "WORKER_COUNT": "2"}
    with running_server(tmp_path, env=env) as server, server.client() as client:
        made = client.post("/tasks", json={"type": "email", "payload": "a@b.io"}).json()

        task, elapsed = waited(server.url, made["id"], 20)

        assert task["status"] == "COMPLETED", server.log()
        assert task["result"] == {"message_id": ANY, "accepted": ["a@b.io"]}
        assert elapsed < 5


def test_api_alone_on_sqlite_polls_the_store_a_separate_worker_writes(tmp_path: Path) -> None:
    env = {
        "TASKQ_BACKEND": "sqlite",
        "TASKQ_SQLITE_PATH": str(tmp_path / "taskq.db"),
        **SQLITE_FAST_WORKER,
    }
    with ProcessGroup(tmp_path, env) as procs, ThreadPoolExecutor(2) as pool:
        api = procs.start("api", wait=True)
        with api.client() as client:
            first = client.post("/tasks", json={"type": "email", "payload": "a@b.io"}).json()
            second = client.post("/tasks", json={"type": "data-export", "payload": "u"}).json()

        # No worker yet: the wait ends at its deadline with the task as it is.
        task, elapsed = waited(api.url, first["id"], 0.5)
        assert task["status"] == "PENDING"
        assert 0.5 <= elapsed < 3

        # A worker in another process completes it while the API waits.
        waiting = pool.submit(waited, api.url, second["id"], 25)
        time.sleep(0.5)
        worker_started = time.monotonic()
        procs.start("worker")
        task, _ = waiting.result(timeout=40)
        answered_at = datetime.now(UTC)
        assert task["status"] == "COMPLETED", procs.logs()
        assert task["result"] == {
            "key": "exports/u.csv",
            "format": "csv",
            "rows": ANY,
            "bytes": ANY,
            "download": ANY,
        }
        assert time.monotonic() - worker_started < 15, procs.logs()
        # found by a poll at most WAIT_POLL_MAX_SECONDS (1 s) after the worker wrote it
        finished_at = datetime.fromisoformat(str(task["finished_at"]))
        assert (answered_at - finished_at).total_seconds() < 1.5
