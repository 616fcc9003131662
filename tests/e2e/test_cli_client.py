"""The ``taskq`` client commands against a real ``taskq serve`` process over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from entrypoints.cli import main
from tests.support.processes import (
    ROOT,
    Server,
    keyed_server,
    taskq_command,
    wait_all_final,
    with_repo_on_path,
)

pytestmark = pytest.mark.e2e
API_KEY = "cli-test-key"
FAILING_TYPE = "always-fails"  # tests.e2e.serve_handlers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with keyed_server(tmp_path_factory.mktemp("cli"), API_KEY) as server:
        yield server


def authorised(server: Server) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {API_KEY}"}
    )


def taskq(server: Server, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main([*args, "--url", server.url, "--api-key", API_KEY])
    return code, json.loads(capsys.readouterr().out)


def test_submit_with_run_at_and_idempotency_key(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    run_at = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    args = ["submit", "email", "a@b.io", "--run-at", run_at, "--idempotency-key", "k"]

    code, first = taskq(server, capsys, *args)
    again, repeated = taskq(server, capsys, *args)
    too_far, error = taskq(server, capsys, "submit", "email", "a@b.io", "--run-at", "2999-01-01Z")

    assert (code, again) == (0, 0)
    assert first["id"] == repeated["id"] and first["run_at"] is not None
    assert too_far == 1 and error["error"].startswith("run_at:")


def test_cancel_and_retry(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    _, task = taskq(server, capsys, "submit", "email", "a@b.io", "--delay-seconds", "3600")

    code, cancelled = taskq(server, capsys, "cancel", task["id"])
    again, conflict = taskq(server, capsys, "cancel", task["id"])
    retry, not_failed = taskq(server, capsys, "retry", task["id"], "--max-attempts", "2")

    assert (code, cancelled["status"]) == (0, "CANCELLED")
    assert again == 1 and "CANCELLED" in conflict["error"]
    assert retry == 1 and "CANCELLED" in not_failed["error"]


def test_status_and_list(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    _, task = taskq(server, capsys, "submit", "email", "a@b.io", "--delay-seconds", "3600")

    code, shown = taskq(server, capsys, "status", task["id"])
    listed, page = taskq(server, capsys, "list", "--status", "PENDING", "--limit", "500")
    unknown, missing = taskq(server, capsys, "status", "no-such-task")

    assert (code, shown["id"], shown["status"]) == (0, task["id"], "PENDING")
    assert listed == 0 and task["id"] in [t["id"] for t in page["tasks"]]
    assert unknown == 1 and "error" in missing


def test_dead_letters_and_redrive(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    _, task = taskq(server, capsys, "submit", FAILING_TYPE, "{}", "--max-attempts", "1")
    with authorised(server) as client:
        assert wait_all_final(client, [task["id"]])[task["id"]]["status"] == "FAILED"

    code, page = taskq(server, capsys, "dead-letters", "--limit", "10")
    assert code == 0 and [t["id"] for t in page["tasks"]] == [task["id"]]
    assert "the downstream service said no" in page["tasks"][0]["error"]

    code, redriven = taskq(server, capsys, "redrive", "--type", FAILING_TYPE, "--per-second", "100")
    assert code == 0 and redriven == {"retried": [task["id"]], "count": 1}


def test_dead_letter_messages_are_listed_dropped_and_resent(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FAILED task's message is on the dead-letter queue with the worker's reason; an
    operator drops one message and sends another back."""
    ids = [
        taskq(server, capsys, "submit", FAILING_TYPE, "{}", "--max-attempts", "1")[1]["id"]
        for _ in range(2)
    ]
    with authorised(server) as client:
        wait_all_final(client, ids)
    deadline = time.monotonic() + 10
    while True:  # the worker dead-letters the message just after the FAILED write
        code, listed = taskq(server, capsys, "dead-letter-messages", "--limit", "100")
        mine = {m["task_id"]: m for m in listed["messages"] if m["task_id"] in ids}
        if len(mine) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert code == 0 and set(mine) == set(ids)
    assert "the downstream service said no" in mine[ids[0]]["reason"]
    dropped, resent = mine[ids[0]]["message_id"], mine[ids[1]]["message_id"]

    assert taskq(server, capsys, "drop-dead-letter", dropped)[0] == 0
    assert taskq(server, capsys, "resend-dead-letter", resent)[1]["task_id"] == ids[1]
    gone, error = taskq(server, capsys, "drop-dead-letter", dropped)
    _, after = taskq(server, capsys, "dead-letter-messages", "--limit", "100")
    bulk, moved = taskq(server, capsys, "resend-dead-letters", "--limit", "1")

    assert gone == 1 and error["error"] == f"dead letter {dropped!r} not found"
    assert not {dropped, resent} & {m["message_id"] for m in after["messages"]}
    assert bulk == 0 and moved["count"] <= 1


def test_workers_lists_what_the_server_lists(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    with authorised(server) as client:
        expected = client.get("/workers").json()

    code, body = taskq(server, capsys, "workers")

    assert code == 0 and len(expected["workers"]) == 1
    assert [w["worker_id"] for w in body["workers"]] == [expected["workers"][0]["worker_id"]]
    assert body["active_workers"] == expected["active_workers"]


def test_client_without_a_key_gets_the_401(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKQ_API_KEY", raising=False)
    code = main(["metrics", "--url", server.url])

    assert code == 1
    assert "authentication required" in capsys.readouterr().out


def test_the_api_key_can_come_from_the_environment(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKQ_API_KEY", API_KEY)

    assert main(["metrics", "--url", server.url]) == 0
    assert "total_tasks" in capsys.readouterr().out


def test_the_default_url_is_loopback_on_PORT(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", server.url.rsplit(":", 1)[1])

    assert main(["metrics", "--api-key", API_KEY]) == 0
    assert "total_tasks" in capsys.readouterr().out


def test_an_unreachable_server_is_exit_2_naming_the_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["metrics", "--url", "127.0.0.1:1"])

    assert code == 2
    assert capsys.readouterr().err.startswith(
        "error: cannot reach the server at http://127.0.0.1:1: "
    )


@pytest.mark.parametrize(
    "command",
    [taskq_command, lambda *args: [sys.executable, "-m", "entrypoints.cli", *args]],
    ids=["console script", "python -m"],
)
def test_the_real_command_reaches_host_port_without_a_scheme(server: Server, command: Any) -> None:
    host_port = server.url.removeprefix("http://")
    with authorised(server) as client:
        task = client.post("/tasks", json={"type": "email", "payload": "a@b.io"}).json()

    done = subprocess.run(
        command("status", task["id"], "--url", host_port, "--api-key", API_KEY),
        cwd=ROOT,
        env={**os.environ, **with_repo_on_path({})},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == task["id"]


def test_submit_wait_prints_the_result(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = taskq(server, capsys, "submit", "email", "a@b.io", "--wait", "30")

    assert (code, result["accepted"]) == (0, ["a@b.io"])


def test_submit_wait_on_a_failing_task_prints_it_and_exits_1(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["submit", FAILING_TYPE, "{}", "--max-attempts", "1", "--wait"]
        + ["--url", server.url, "--api-key", API_KEY]
    )
    out, err = capsys.readouterr()

    assert code == 1 and json.loads(out)["status"] == "FAILED"
    assert "(always-fails) failed: RuntimeError: the downstream service said no" in err


def test_a_payload_is_json_only_when_it_is_an_object_or_array(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    _, text = taskq(server, capsys, "submit", "data-export", "2024", "--delay-seconds", "3600")
    _, listed = taskq(server, capsys, "submit", "data-export", '{"dataset": "tasks"}')
    as_json, number = taskq(server, capsys, "submit", "data-export", "2024", "--json")

    assert text["payload"] == "2024"
    assert listed["payload"] == {"dataset": "tasks"}
    assert as_json == 1 and number["error"].startswith("payload")  # 2024, a number: refused


def test_json_that_is_not_json_is_an_option_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["submit", "email", "{oops", "--json", "--url", "127.0.0.1:1"])

    assert code == 2
    assert capsys.readouterr().err.startswith("taskq: payload: not JSON (")
