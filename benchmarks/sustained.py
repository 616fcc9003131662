"""Sustained load, side by side with a trivial Starlette endpoint (issue 18).

The same load generator (``benchmarks/loadgen.py``: keep-alive connections posting
no-op tasks for a fixed time) runs against, one after the other:

- the ceiling: a trivial Starlette POST endpoint (``benchmarks/trivial_app.py``) under
  uvicorn;
- ``taskq serve`` on memory and on sqlite, with the shipped defaults (metrics and the
  task log on) and ``WORKER_COUNT=50``;
- ``taskq api`` + ``taskq worker`` x2 on one sqlite file (API and workers split), and
  the same with one worker process (on a 2-core machine, what splitting buys depends on
  how many processes share the cores).

For each: requests/s accepted (201; a 503 from back-pressure is not accepted), tasks
completed *while the load lasted* (``completed_tasks`` of ``GET /metrics`` read the moment
the load stops) over those accepted, POST p50/p99, and the backlog left.

    .venv/bin/python -m benchmarks.sustained --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from benchmarks import loadgen
from benchmarks.common import PYTHON, Process, cpu_seconds, free_port, percentile, serve, started
from benchmarks.http_throughput import SHIPPED_DEFAULTS, server_env

CONNECTIONS = 32
WORKERS = 50
SPLIT_WORKERS = 2
"""``taskq worker`` processes beside one ``taskq api`` in the split run."""


def _noop(_: int) -> dict[str, str]:
    return {"type": "noop"}


async def _metrics(url: str) -> dict[str, Any] | None:
    conn = await loadgen.Connection.open(url)
    try:
        status, metrics = await conn.request("GET", "/metrics")
    finally:
        await conn.close()
    return metrics if status == 200 and isinstance(metrics, dict) else None


async def _load(url: str, seconds: float) -> tuple[loadgen.SubmitResult, dict[str, Any] | None]:
    """Post for ``seconds``; then read /metrics at once (None if it has none), with
    ``completed_tasks`` counting only the tasks completed while the load lasted (a
    store kept from an earlier run, as sqlite's file can be, starts above zero)."""
    before = await _metrics(url)
    submitted = await loadgen.submit_many(
        url, 10**9, _noop, connections=CONNECTIONS, time_limit=seconds
    )
    metrics = await _metrics(url)
    if metrics is not None and before is not None:
        metrics["completed_tasks"] -= before["completed_tasks"]
    return submitted, metrics


def _figures(
    label: str, submitted: loadgen.SubmitResult, metrics: dict[str, Any] | None, cpu: float
) -> dict[str, Any]:
    seconds = submitted.last_submit - submitted.first_submit
    p50 = percentile(submitted.latencies, 50)
    p99 = percentile(submitted.latencies, 99)
    row: dict[str, Any] = {
        "run": label,
        "seconds": round(seconds, 2),
        "accepted": submitted.submitted,
        "refused_503": submitted.refused,
        "other_errors": submitted.errors - submitted.refused,
        "accepted_per_second": round(submitted.submitted / seconds),
        "post_p50_ms": round(p50 * 1000, 2),
        "post_p99_ms": round(p99 * 1000, 2),
        "p99_over_p50": round(p99 / p50, 1),
        "server_cpu_share": round(cpu / seconds, 2),
        # CPU per accepted request: comparable across runs on a machine shared with
        # other work, where requests/s are not.
        "server_cpu_us_per_accepted": round(cpu / max(1, submitted.submitted) * 1e6),
    }
    if metrics is not None:
        completed = int(metrics["completed_tasks"])
        row |= {
            "completed_during_load": completed,
            "completed_per_second": round(completed / seconds),
            "completed_over_accepted": round(completed / max(1, submitted.submitted), 3),
            "backlog_at_end": int(metrics["pending_tasks"]),
        }
    return row


def trivial(seconds: float, log_dir: Path) -> dict[str, Any]:
    port = free_port()
    command = [
        PYTHON, "-m", "uvicorn", "benchmarks.trivial_app:app", "--host", "127.0.0.1",
        "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with started(command, port=port, log_dir=log_dir) as server:
        cpu = cpu_seconds(server.pid)
        submitted, _ = asyncio.run(_load(server.url, seconds))
        cpu = cpu_seconds(server.pid) - cpu
    return _figures("trivial Starlette endpoint", submitted, None, cpu)


def taskq(
    backend: str, seconds: float, log_dir: Path, settings: Mapping[str, str] | None = None
) -> dict[str, Any]:
    run_dir = log_dir / f"sustained-{backend}-{time.monotonic_ns()}"  # a store of its own
    run_dir.mkdir()
    env = server_env(backend, run_dir, WORKERS, {**SHIPPED_DEFAULTS, **(settings or {})})
    with serve(log_dir, env) as server:
        cpu = cpu_seconds(server.pid)
        submitted, metrics = asyncio.run(_load(server.url, seconds))
        cpu = cpu_seconds(server.pid) - cpu
    return _figures(f"taskq serve, {backend}", submitted, metrics, cpu)


@contextlib.contextmanager
def _split(log_dir: Path, workers: int) -> Iterator[tuple[Process, list[Process]]]:
    database = log_dir / f"split-{time.monotonic_ns()}.db"
    env = {**server_env("sqlite", log_dir, WORKERS, SHIPPED_DEFAULTS)}
    env["TASKQ_SQLITE_PATH"] = str(database)
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(serve(log_dir, env, args=["api"]))
        started_workers = []
        for _ in range(workers):
            port = free_port()
            worker_env = {
                **env,
                "TASKQ_METRICS_PORT": str(port),
                "TASKQ_HANDLERS": "benchmarks.handlers",
            }
            command = [PYTHON, "-m", "entrypoints.cli", "worker"]
            started_workers.append(
                stack.enter_context(
                    started(
                        command, port=port, log_dir=log_dir, env=worker_env, ready_path="/metrics"
                    )
                )
            )
        yield api, started_workers


def split(seconds: float, log_dir: Path, workers: int = SPLIT_WORKERS) -> dict[str, Any]:
    with _split(log_dir, workers) as (api, worker_processes):
        pids = [api.pid, *(w.pid for w in worker_processes)]
        cpu = sum(cpu_seconds(pid) for pid in pids)
        submitted, metrics = asyncio.run(_load(api.url, seconds))
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu
    return _figures(f"taskq api + taskq worker x{workers}, sqlite", submitted, metrics, cpu)


def run(seconds: float, log_dir: Path) -> dict[str, Any]:
    """All five, one after the other, with the ratios the targets are stated in."""
    ceiling = trivial(seconds, log_dir)
    memory = taskq("memory", seconds, log_dir)
    sqlite = taskq("sqlite", seconds, log_dir)
    apart = split(seconds, log_dir)
    one_worker = split(seconds, log_dir, workers=1)
    for row in (memory, sqlite, apart, one_worker):
        row["accepted_over_trivial"] = round(
            row["accepted_per_second"] / ceiling["accepted_per_second"], 2
        )
    return {
        "load_seconds": seconds,
        "connections": CONNECTIONS,
        "runs": [ceiling, memory, sqlite, apart, one_worker],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument(
        "--only", choices=["trivial", "memory", "sqlite", "split"], help="one run alone"
    )
    parser.add_argument(
        "--split-workers", type=int, default=SPLIT_WORKERS, help="worker processes of --only split"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskq-bench-") as directory:
        work = Path(directory)
        if args.only == "trivial":
            figures: Any = trivial(args.seconds, work)
        elif args.only in ("memory", "sqlite"):
            figures = taskq(args.only, args.seconds, work)
        elif args.only == "split":
            figures = split(args.seconds, work, args.split_workers)
        else:
            figures = run(args.seconds, work)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
