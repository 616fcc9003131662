"""``taskq types`` (list, pause, resume, set) against a real ``taskq serve`` process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from entrypoints.cli import main
from tests.support.processes import Server, running_server

pytestmark = pytest.mark.e2e


def taskq(server: Server, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main([*args, "--url", server.url])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def listed(answer: Any, name: str) -> Any:
    return next(t for t in answer["task_types"] if t["type"] == name)


def test_an_operator_pauses_resumes_and_sets_limits_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "TASKQ_BACKEND": "memory",
        "TASKQ_HANDLERS": "tests.e2e.flow_handlers",
        "TASKQ_TEST_FLOW_LOG": str(tmp_path / "flow.log"),
    }
    with running_server(tmp_path, env=env) as server:
        code, types = taskq(server, capsys, "types")
        assert code == 0
        assert listed(types, "flow-concurrent")["max_concurrency"] == 3

        code, paused = taskq(server, capsys, "types", "pause", "flow-pausable")
        assert (code, paused["paused"]) == (0, True)
        assert listed(taskq(server, capsys, "types")[1], "flow-pausable")["paused"] is True
        code, resumed = taskq(server, capsys, "types", "resume", "flow-pausable")
        assert (code, resumed["paused"]) == (0, False)

        code, changed = taskq(
            server, capsys, "types", "set", "flow-rate", "--rate", "none", "--max-concurrency", "2"
        )
        assert code == 0
        assert (changed["rate"], changed["max_concurrency"], changed["burst"]) == (None, 2, 2)

        code, error = taskq(server, capsys, "types", "pause", "no-such-type")
        assert code == 1 and "no-such-type" in error["error"]
