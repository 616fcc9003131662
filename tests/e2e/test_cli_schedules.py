"""``taskq schedules ...`` and ``taskq.Client``'s schedule methods against a real
``taskq serve`` process over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from entrypoints.cli import main
from taskq import Client
from taskq.errors import NotFound
from tests.support.processes import Server, keyed_server

pytestmark = pytest.mark.e2e
API_KEY = "schedules-cli-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with keyed_server(tmp_path_factory.mktemp("schedules"), API_KEY) as server:
        yield server


def taskq(server: Server, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main([*args, "--url", server.url, "--api-key", API_KEY])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_cli_adds_lists_and_deletes_a_schedule(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = '{"to": "ops@example.com", "subject": "s", "body": "b"}'
    add = ["schedules", "add", "cli-nightly", "email", "0 3 * * *", payload]
    code, added = taskq(server, capsys, *add, "--timezone", "Asia/Tokyo", "--missed", "run_once")
    assert code == 0 and added["timezone"] == "Asia/Tokyo" and added["missed"] == "run_once"
    assert added["next_fire_at"].endswith("T18:00:00Z")  # 03:00 in Tokyo

    code, listed = taskq(server, capsys, "schedules", "list")
    assert code == 0 and "cli-nightly" in [s["name"] for s in listed]

    code, bad = taskq(server, capsys, "schedules", "add", "x", "email", "0 25 * * *", payload)
    assert code == 1 and bad["error"].startswith("cron:")

    assert taskq(server, capsys, "schedules", "delete", "cli-nightly")[0] == 0
    code, missing = taskq(server, capsys, "schedules", "delete", "cli-nightly")
    assert code == 1 and "not found" in missing["error"]


def test_client_puts_lists_and_deletes_schedules(server: Server) -> None:
    with Client(server.url, api_key=API_KEY) as client:
        put = client.put_schedule(
            "client-every-5", "email", "*/5 * * * *", "a@example.com", enabled=False
        )
        assert put.enabled is False and put.next_fire_at is None
        assert "client-every-5" in [s.name for s in client.schedules()]
        client.delete_schedule("client-every-5")
        assert "client-every-5" not in [s.name for s in client.schedules()]
        with pytest.raises(NotFound):
            client.delete_schedule("client-every-5")
