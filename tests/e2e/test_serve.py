"""``taskq serve`` as a real process: submit over HTTP, complete, stop cleanly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.blobs import image_bytes
from tests.support.processes import running_server, wait_all_final

pytestmark = pytest.mark.e2e


def test_serve_completes_fifty_tasks_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {"TASKQ_BACKEND": "memory", "WORKER_COUNT": "5", "TASKQ_SHUTDOWN_GRACE_SECONDS": "10"}
    with running_server(tmp_path, env=env) as server, server.client() as client:
        uploaded = client.post(
            "/blobs?name=cat.png",
            content=image_bytes((320, 240)),
            headers={"Content-Type": "image/png"},
        )
        assert uploaded.status_code == 201, uploaded.text
        cat = uploaded.json()["key"]
        kinds = [
            ("email", "user@example.com"),
            ("image-resize", {"image": cat, "width": 64, "height": 64}),
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


def test_the_built_in_types_do_real_work_in_a_served_process(tmp_path: Path) -> None:
    """Under `taskq serve` (sqlite, blobs in ./data/blobs): an uploaded image resized and
    downloaded, an export downloaded from its link, a missing image FAILED at once."""
    env = {"TASKQ_SQLITE_PATH": str(tmp_path / "data" / "taskq.db"), "WORKER_COUNT": "2"}
    with running_server(tmp_path, env=env) as server, server.client() as client:
        cat = client.post("/blobs?name=cat.jpg", content=image_bytes((400, 300), "JPEG"))
        key = cat.json()["key"]
        submitted = [
            client.post("/tasks", json={"type": t, "payload": p}).json()["id"]
            for t, p in [
                ("image-resize", {"image": key, "width": 100, "height": 100, "fit": "cover"}),
                ("image-resize", "photo.png"),
            ]
        ]
        tasks = wait_all_final(client, submitted)
        resized, missing = (tasks[i] for i in submitted)
        assert resized["status"] == "COMPLETED", resized
        result = resized["result"]
        assert isinstance(result, dict)
        assert (result["width"], result["height"], result["format"]) == (100, 100, "jpeg")
        download = client.get(f"/blobs/{result['key']}")
        assert download.status_code == 200 and len(download.content) == result["bytes"]
        assert (tmp_path / "data" / "blobs" / "objects" / str(result["key"])).is_file()
        assert (missing["status"], missing["attempts"]) == ("FAILED", 1)
        assert "image 'photo.png' not found" in str(missing["error"])

        exported = client.post("/tasks", json={"type": "data-export", "payload": "report-2024"})
        export = wait_all_final(client, [exported.json()["id"]])[exported.json()["id"]]
        assert export["status"] == "COMPLETED", export
        link = export["result"]["download"]  # type: ignore[index]
        assert link == f"{server.url}/blobs/exports/report-2024.csv"
        lines = client.get(link).text.splitlines()
        assert lines[0].startswith("id,type,status") and len(lines) == 1 + 3
