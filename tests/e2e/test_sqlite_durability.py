"""The sqlite backend keeps every acknowledged task across a SIGKILL and a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import ProcessGroup, sqlite_env, wait_all_final

pytestmark = pytest.mark.e2e


def test_every_acknowledged_task_survives_sigkill_of_serve(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path, WORKER_COUNT="4", TASKQ_VISIBILITY_TIMEOUT="2")
    ids: list[str] = []
    with ProcessGroup(tmp_path, env) as procs:
        first = procs.start("serve", wait=True)
        with first.client() as client:
            for n in range(60):
                body: dict[str, object] = {
                    "type": "sleepy",
                    "payload": {"key": f"k{n}", "seconds": 0.2},
                }
                if n % 3 == 0:
                    body["delay_seconds"] = 2  # some still waiting on the queue
                response = client.post("/tasks", json=body)
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
        first.kill()  # SIGKILL right after the last 201: no chance to flush anything

        second = procs.start("serve", wait=True)
        with second.client() as client:
            for task_id in ids:
                assert client.get(f"/tasks/{task_id}").status_code == 200, task_id
            tasks = wait_all_final(client, ids, timeout=90)
        assert {t["status"] for t in tasks.values()} == {"COMPLETED"}
        assert second.terminate() == 0


def test_a_task_and_its_status_are_there_after_a_clean_restart(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    with ProcessGroup(tmp_path, env) as procs:
        first = procs.start("serve", wait=True)
        with first.client() as client:
            created = client.post("/tasks", json={"type": "email", "payload": "a@b.co"})
            assert created.status_code == 201
            task_id = created.json()["id"]
            [done] = wait_all_final(client, [task_id]).values()
        assert first.terminate() == 0

        second = procs.start("serve", wait=True)
        with second.client() as client:
            again = client.get(f"/tasks/{task_id}")
            assert again.status_code == 200
            assert again.json() == done
            assert client.get("/metrics").json()["completed_tasks"] == 1
        assert second.terminate() == 0
