"""``taskq serve`` as a real process: an email task delivered to the local mailbox
file (the default without SMTP settings), and a stoppable handler really stopped at its
timeout."""

from __future__ import annotations

import mailbox
import time
from pathlib import Path

import pytest

from tests.support.processes import running_server, wait_all_final

pytestmark = pytest.mark.e2e


def test_an_email_task_lands_in_the_local_mailbox_beside_the_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"TASKQ_BACKEND": "sqlite", "TASKQ_SQLITE_PATH": str(data / "taskq.db")}
    with running_server(tmp_path, env=env) as server, server.client() as client:
        payload = {"to": "ann@example.com", "subject": "Hello from make run", "text": "It works."}
        ids = [
            client.post("/tasks", json={"type": "email", "payload": payload}).json()["id"],
            client.post("/tasks", json={"type": "email", "payload": "bob@example.com"}).json()[
                "id"
            ],
        ]
        tasks = wait_all_final(client, ids)
        assert server.terminate(timeout=20) == 0, server.log()

    assert [tasks[i]["status"] for i in ids] == ["COMPLETED", "COMPLETED"], tasks
    box = mailbox.mbox(str(data / "mailbox"))
    try:
        messages = {m["To"]: m for m in box}
    finally:
        box.close()
    assert set(messages) == {"ann@example.com", "bob@example.com"}
    ann = messages["ann@example.com"]
    assert ann["Subject"] == "Hello from make run"
    assert ann["From"] == "taskq@localhost"
    body = ann.get_payload(decode=True)
    assert isinstance(body, bytes) and "It works." in body.decode()
    assert tasks[ids[0]]["result"] == {
        "message_id": ann["Message-ID"],
        "accepted": ["ann@example.com"],
    }
    assert messages["bob@example.com"]["Subject"] == "Notification from taskq"


def test_a_stoppable_handler_past_its_timeout_never_writes_its_file(tmp_path: Path) -> None:
    env = {
        "TASKQ_BACKEND": "memory",
        "TASKQ_HANDLERS": "tests.e2e.stoppable_handlers",
        "WORKER_COUNT": "2",
    }
    stopped, abandoned = tmp_path / "stopped.txt", tmp_path / "abandoned.txt"
    with running_server(tmp_path, env=env) as server, server.client() as client:
        ids = [
            client.post(
                "/tasks",
                json={
                    "type": kind,
                    "payload": {"seconds": 1.5, "path": str(path)},
                    "max_attempts": 1,
                },
            ).json()["id"]
            for kind, path in (("late-writer-stoppable", stopped), ("late-writer", abandoned))
        ]
        tasks = wait_all_final(client, ids)
        time.sleep(2.5)  # well past when both handlers would have written
        assert server.terminate(timeout=20) == 0, server.log()

    for task_id in ids:
        assert tasks[task_id]["status"] == "FAILED"
        assert "timed out after 0.5s" in str(tasks[task_id]["error"])
    assert not stopped.exists(), "the stoppable handler ran on past its timeout"
    assert abandoned.exists()  # a thread cannot be stopped: why stoppable exists
