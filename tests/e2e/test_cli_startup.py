"""The real ``taskq`` command refusing to start: a busy port, bad configuration, a
maintenance command pointed at no database. One line saying why, a non-zero status,
and nothing left behind (no ghost worker, no empty database)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ROOT, running_server, taskq_command, with_repo_on_path

pytestmark = pytest.mark.e2e


def taskq(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        taskq_command(*args),
        cwd=cwd,
        env={**os.environ, **with_repo_on_path(env)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def test_a_second_server_on_a_busy_port_exits_at_once_and_registers_no_worker(
    tmp_path: Path,
) -> None:
    env = {"TASKQ_BACKEND": "sqlite", "TASKQ_SQLITE_PATH": str(tmp_path / "taskq.db")}
    with running_server(tmp_path, env=env) as first:
        workers_before = httpx.get(first.url + "/workers").json()["workers"]
        port = first.url.rsplit(":", 1)[1]

        started = time.monotonic()
        second = taskq("serve", env={**env, "PORT": port, "TASKQ_HOST": "127.0.0.1"})
        took = time.monotonic() - started
        workers_after = []
        for _ in range(3):
            time.sleep(0.3)
            workers_after.append(httpx.get(first.url + "/workers").json()["workers"])

    assert second.returncode != 0
    assert took < 10
    assert lines(second) == [
        f"taskq: cannot listen on 127.0.0.1:{port}: Address already in use (another server "
        "is listening there: stop it, or choose another PORT or --port)"
    ]
    assert len(workers_before) == 1
    assert all(seen == workers_before for seen in workers_after)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"TASKQ_BACKEND": "postgres"},
            "taskq: TASKQ_BACKEND='postgres': should be 'memory', 'sqlite' or 'aws'",
        ),
        (
            {"PORT": "abc"},
            "taskq: PORT='abc': should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"TASKQ_TRUSTED_PROXIES": "10.0.0.0/8,lb.internal"},
            "taskq: TASKQ_TRUSTED_PROXIES='10.0.0.0/8,lb.internal': 'lb.internal' is not an "
            "IP address or CIDR network (10.0.0.0/8, ::1)",
        ),
        (
            {"TASKQ_BACKEND": "memory", "TASKQ_HANDLERS": "tests.e2e.no_such_module"},
            "taskq: TASKQ_HANDLERS names 'tests.e2e.no_such_module', which cannot be imported: "
            "No module named 'tests.e2e.no_such_module' (TASKQ_HANDLERS takes comma-separated "
            "module names, importable from the installed packages or the current directory)",
        ),
    ],
    ids=["backend", "port", "trusted proxies", "handlers"],
)
def test_bad_configuration_is_one_line_naming_the_variable_and_exit_2(
    env: dict[str, str], expected: str
) -> None:
    done = taskq("serve", env=env)

    assert done.returncode == 2
    assert lines(done) == [expected]


@pytest.mark.parametrize("command", ["reconcile", "vacuum"])
def test_maintenance_commands_refuse_a_missing_database_and_create_none(
    tmp_path: Path, command: str
) -> None:
    done = taskq(command, env={"TASKQ_BACKEND": "sqlite"}, cwd=tmp_path)

    assert done.returncode == 2
    assert lines(done) == [
        f"taskq: no database at {tmp_path.resolve()}/data/taskq.db "
        "(TASKQ_SQLITE_PATH='./data/taskq.db'): run this where the server runs, or set "
        "TASKQ_SQLITE_PATH to its database file"
    ]
    assert list(tmp_path.iterdir()) == []
