"""``taskq serve`` as a real process: submit over HTTP, complete, stop cleanly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.processes import running_server, wait_all_final

pytestmark = pytest.mark.e2e


def test_serve_completes_fifty_tasks_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {"TASKQ_BACKEND": "memory", "WORKER_COUNT": "5", "TASKQ_SHUTDOWN_GRACE_SECONDS": "10"}
    with running_server(tmp_path, env=env) as server, server.client() as client:
        kinds = [
            ("email", "user@example.com"),
            ("image-resize", {"image": "cat.png", "width": 64, "height": 64}),
            ("data-export", "users"),
        ]
        ids = []
        for n in range(50):
            task_type, payload = kinds[n % 3]
            response = client.post("/tasks", json={"type": task_type, "payload": payload})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])

        tasks = wait_all_final(client, ids)
        assert {t["status"] for t in tasks.values()} == {"COMPLETED"}
        metrics = client.get("/metrics").json()
        assert metrics["completed_tasks"] == 50
        assert metrics["total_tasks"] == 50
        assert metrics["active_workers"] == 5

        started = time.monotonic()
        assert server.terminate(timeout=20) == 0, server.log()
        assert time.monotonic() - started < 10
