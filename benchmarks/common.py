"""What the benchmarks share: processes on loopback ports, RSS, percentiles, waiting
for tasks to complete."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from domain.models import TaskStatus
from domain.ports import TaskRepository

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def mark(ok: bool) -> str:
    """A target's verdict as the reports write it."""
    return "met" if ok else "**not met**"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_model(default: str) -> str:
    """The CPU's model name from /proc/cpuinfo; ``default`` where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by the nearest-rank method."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def _stop(popen: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process we started (by its pid), then SIGKILL if it lingers."""
    if popen.poll() is not None:
        return
    popen.send_signal(signal.SIGTERM)
    try:
        popen.wait(timeout=15)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(timeout=10)


@contextlib.contextmanager
def started(
    command: Sequence[str],
    *,
    port: int,
    log_dir: Path,
    env: dict[str, str] | None = None,
    ready_path: str = "/health",
    timeout: float = 60,
) -> Iterator[Process]:
    """Start ``command`` (which listens on ``port``), wait until ``ready_path``
    answers, and stop it on exit."""
    log_path = log_dir / f"{Path(command[0]).name}-{port}.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            list(command), cwd=ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    process = Process(popen, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if popen.poll() is not None:
                raise RuntimeError(f"{command[0]} exited early:\n{process.log()}")
            try:
                if httpx.get(process.url + ready_path, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command[0]} not ready in {timeout}s:\n{process.log()}")
            time.sleep(0.05)
        yield process
    finally:
        _stop(popen)


def serve(
    log_dir: Path,
    env: dict[str, str],
    *,
    module: str = "entrypoints.cli",
    args: Sequence[str] = (),
    timeout: float = 60,
) -> contextlib.AbstractContextManager[Process]:
    """``taskq serve`` (or another module and arguments) on a free loopback port."""
    port = free_port()
    command = [PYTHON, "-m", module, *(args or ["serve"])]
    base = {
        "PORT": str(port),
        "TASKQ_HOST": "127.0.0.1",
        "TASKQ_LOG_LEVEL": "WARNING",
        "TASKQ_HANDLERS": "benchmarks.handlers",
    }
    return started(command, port=port, log_dir=log_dir, env={**base, **env}, timeout=timeout)


def moto_server(log_dir: Path) -> contextlib.AbstractContextManager[Process]:
    """A moto server (SQS + DynamoDB) on a free loopback port, in its own process
    (``scripts.local_aws``: moto's app with DynamoDB requests serialised)."""
    port = free_port()
    command = [PYTHON, "-m", "scripts.local_aws", "-H", "127.0.0.1", "-p", str(port)]
    return started(command, port=port, log_dir=log_dir, ready_path="/moto-api/")


async def completed(
    repository: TaskRepository, n: int, started: float, stop: asyncio.Event, worker: Awaitable[None]
) -> float:
    """Seconds from ``started`` (``time.perf_counter``) until ``n`` tasks in
    ``repository`` are COMPLETED; then the worker is stopped and awaited."""
    while (await repository.count_by_status())[TaskStatus.COMPLETED] < n:
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - started
    stop.set()
    await worker
    return elapsed
