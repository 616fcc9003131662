"""``taskq init`` and ``taskq serve`` in aws mode against a moto server process."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support.processes import (
    FAKE_AWS_ENV,
    ROOT,
    MotoServer,
    running_server,
    taskq_command,
    wait_all_final,
)

pytestmark = [pytest.mark.e2e, pytest.mark.aws]


def taskq_init(env: dict[str, str]) -> str:
    done = subprocess.run(
        taskq_command("init"),
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_init_then_serve_runs_tasks_on_sqs_and_dynamodb(tmp_path: Path) -> None:
    name = f"taskq-e2e-{uuid.uuid4().hex[:8]}"
    with MotoServer(tmp_path) as moto:
        env = {
            **FAKE_AWS_ENV,
            "TASKQ_BACKEND": "aws",
            "AWS_ENDPOINT_URL": moto.url,
            "TASKQ_SQS_QUEUE_NAME": name,
            "DYNAMODB_TABLE": name,
            "TASKQ_HANDLERS": "tests.e2e.serve_handlers",
            "TASKQ_RETRY_BASE_SECONDS": "0.2",
            "TASKQ_RETRY_CAP_SECONDS": "1",
            "TASKQ_POLL_WAIT_SECONDS": "1",
            "WORKER_COUNT": "10",
        }
        first = taskq_init(env)
        assert f"created queue {name}\n" in first
        assert f"created queue {name}-dlq\n" in first
        assert f"created table {name}\n" in first
        second = taskq_init(env)
        assert "created" not in second
        assert "nothing to do" in second

        with running_server(tmp_path, env=env) as server, server.client() as client:
            ids = []
            for n in range(50):
                response = client.post(
                    "/tasks", json={"type": "email", "payload": f"user{n}@example.com"}
                )
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
            failing = client.post("/tasks", json={"type": "always-fails", "payload": {}})
            assert failing.status_code == 201, failing.text
            failing_id = failing.json()["id"]

            tasks = wait_all_final(client, [*ids, failing_id], timeout=120)
            assert {tasks[i]["status"] for i in ids} == {"COMPLETED"}
            failed = tasks[failing_id]
            assert failed["status"] == "FAILED"
            assert (failed["attempts"], failed["retry_count"]) == (3, 3)
            assert "the downstream service said no" in str(failed["error"])

            deadline = time.monotonic() + 20
            while True:
                metrics = client.get("/metrics").json()
                settled = metrics["queue_depth"] == 0 and metrics["queue_in_flight"] == 0
                # Counts come from the table's stream: they trail the writes by ~2 s.
                settled &= metrics["completed_tasks"] + metrics["failed_tasks"] == 51
                if settled or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert metrics["total_tasks"] == 51
            assert metrics["completed_tasks"] == 50
            assert metrics["failed_tasks"] == 1
            assert metrics["pending_tasks"] == metrics["processing_tasks"] == 0
            assert metrics["dead_letter_tasks"] == 1
            assert metrics["queue_depth"] == 0
            assert metrics["active_workers"] == 10
            assert server.terminate() == 0, server.log()
