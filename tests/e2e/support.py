"""Starting ``taskq`` as a real process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def taskq_command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("taskq")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "entrypoints.cli", *args]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def running_server(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, command: str = "serve"
) -> Iterator[Server]:
    """``taskq <command>`` on a free loopback port, ready to answer; killed on exit."""
    port = free_port()
    full_env = {
        **os.environ,
        "PORT": str(port),
        "TASKQ_HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log_path = tmp_path / f"taskq-{command}-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            taskq_command(command, *args),
            cwd=ROOT,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_healthy(server)
        yield server
    finally:
        server.kill()


def wait_healthy(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"taskq exited early ({server.process.returncode}):\n{server.log()}")
        try:
            if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"taskq did not become healthy in {timeout}s:\n{server.log()}")


def wait_all_final(
    client: httpx.Client, ids: list[str], timeout: float = 60
) -> dict[str, dict[str, object]]:
    """Poll until every task is COMPLETED, FAILED or CANCELLED; return them by id."""
    deadline = time.monotonic() + timeout
    tasks: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline:
        for task_id in ids:
            if task_id in tasks and tasks[task_id]["status"] in {
                "COMPLETED",
                "FAILED",
                "CANCELLED",
            }:
                continue
            response = client.get(f"/tasks/{task_id}")
            assert response.status_code == 200, response.text
            tasks[task_id] = response.json()
        if all(t["status"] in {"COMPLETED", "FAILED", "CANCELLED"} for t in tasks.values()):
            return tasks
        time.sleep(0.2)
    unfinished = {
        i: t["status"] for i, t in tasks.items() if t["status"] not in {"COMPLETED", "FAILED"}
    }
    raise TimeoutError(f"{len(unfinished)} tasks not final after {timeout}s: {unfinished}")
