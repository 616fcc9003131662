"""The ``taskq`` client commands against a real HTTP server (uvicorn in a thread)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from entrypoints.cli import _settings, build_parser, main
from entrypoints.http.app import create_app

API_KEY = "cli-test-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.url = f"http://127.0.0.1:{_free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(
            create_app(container), host="127.0.0.1", port=port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve()

    def run_in_server_loop(self, coroutine: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    @classmethod
    def start(cls, container: Container) -> Iterator[LiveServer]:
        live = cls(container)
        thread = threading.Thread(target=live._run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not live.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        try:
            yield live
        finally:
            live.server.should_exit = True
            thread.join(timeout=10)


@pytest.fixture
def live() -> Iterator[LiveServer]:
    container = build_container(Settings(backend="memory", api_keys=API_KEY))
    yield from LiveServer.start(container)


def taskq(live: LiveServer, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main([*args, "--url", live.url, "--api-key", API_KEY])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_submit_with_run_at_and_idempotency_key(
    live: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run_at = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    args = ["submit", "email", "a@b.io", "--run-at", run_at, "--idempotency-key", "k"]

    code, first = taskq(live, capsys, *args)
    again, repeated = taskq(live, capsys, *args)
    too_far, error = taskq(live, capsys, "submit", "email", "a@b.io", "--run-at", "2999-01-01Z")

    assert (code, again) == (0, 0)
    assert first["id"] == repeated["id"] and first["run_at"] is not None
    assert too_far == 1 and error["error"].startswith("run_at:")


def test_cancel_and_retry(live: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    _, task = taskq(live, capsys, "submit", "email", "a@b.io")

    code, cancelled = taskq(live, capsys, "cancel", task["id"])
    again, conflict = taskq(live, capsys, "cancel", task["id"])
    retry, not_failed = taskq(live, capsys, "retry", task["id"], "--max-attempts", "2")

    assert (code, cancelled["status"]) == (0, "CANCELLED")
    assert again == 1 and "CANCELLED" in conflict["error"]
    assert retry == 1 and "CANCELLED" in not_failed["error"]


def test_dead_letters_and_redrive(live: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    _, task = taskq(live, capsys, "submit", "email", "a@b.io")

    async def fail() -> None:
        repository = live.container.repository()
        stored = await repository.get(task["id"])
        now = datetime.now(UTC)
        claimed = stored.claim("lease", now, 30)
        await repository.transition(claimed, expected=stored)
        await repository.transition(claimed.fail("boom", now), expected=claimed)

    live.run_in_server_loop(fail())

    code, page = taskq(live, capsys, "dead-letters", "--limit", "10")
    assert code == 0 and [t["id"] for t in page["tasks"]] == [task["id"]]
    assert page["tasks"][0]["error"] == "boom"

    code, redriven = taskq(live, capsys, "redrive", "--type", "email", "--per-second", "100")
    assert code == 0 and redriven == {"retried": [task["id"]], "count": 1}


def test_workers_lists_what_the_server_lists(
    live: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, body = taskq(live, capsys, "workers")
    assert code == 0 and body == {"workers": [], "active_workers": 0}


def test_client_without_a_key_gets_the_401(
    live: LiveServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKQ_API_KEY", raising=False)
    code = main(["metrics", "--url", live.url])

    assert code == 1
    assert "authentication required" in capsys.readouterr().out


def test_the_api_key_can_come_from_the_environment(
    live: LiveServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKQ_API_KEY", API_KEY)

    assert main(["metrics", "--url", live.url]) == 0
    assert "total_tasks" in capsys.readouterr().out


@pytest.mark.parametrize(
    "command", ["cancel", "retry", "dead-letters", "redrive", "submit", "serve", "api"]
)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    assert exited.value.code == 0
    assert "usage: taskq" in capsys.readouterr().out


def test_insecure_flag_reaches_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKQ_INSECURE", raising=False)
    parser = build_parser()

    assert _settings(parser.parse_args(["serve", "--insecure"])).insecure is True
    assert _settings(parser.parse_args(["api"])).insecure is False
