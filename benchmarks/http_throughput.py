"""Benchmark 1 over HTTP: no-op tasks submitted to one ``taskq serve`` by a load
generator in another process (this one), on loopback, until all are COMPLETED.

    .venv/bin/python -m benchmarks.http_throughput --backend memory --tasks 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks import loadgen
from benchmarks.common import cpu_seconds, percentile, serve

SHIPPED_DEFAULTS = {"TASKQ_METRICS": "true", "TASKQ_LOG_LEVEL": "INFO"}
"""The service's own defaults (the benchmark server otherwise logs at WARNING)."""
OBSERVABILITY_OFF = {"TASKQ_METRICS": "false", "TASKQ_LOG_LEVEL": "CRITICAL"}
"""Metrics and task logging switched off: what the defaults are measured against."""


def server_env(
    backend: str, directory: Path, workers: int, settings: Mapping[str, str]
) -> dict[str, str]:
    env = {"TASKQ_BACKEND": backend, "WORKER_COUNT": str(workers), **settings}
    if backend == "sqlite":
        env["TASKQ_SQLITE_PATH"] = str(directory / "bench.db")
    return env


def run(
    backend: str,
    tasks: int,
    *,
    workers: int,
    connections: int,
    log_dir: Path,
    settings: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One run; ``settings``: more of the server's environment (``OBSERVABILITY_OFF``)."""
    env = server_env(backend, log_dir, workers, settings or {})
    with serve(log_dir, env) as server:
        server_cpu = cpu_seconds(server.pid)
        own_cpu = time.process_time()
        submitted = asyncio.run(
            loadgen.submit_many(
                server.url, tasks, lambda _: {"type": "noop"}, connections=connections
            )
        )
        if submitted.errors or submitted.submitted != tasks:
            raise RuntimeError(f"{submitted.errors} submissions failed:\n{server.log()}")
        done_at, metrics = asyncio.run(loadgen.wait_completed(server.url, tasks))
        server_cpu = cpu_seconds(server.pid) - server_cpu
        own_cpu = time.process_time() - own_cpu
    elapsed = done_at - submitted.first_submit
    submit_seconds = submitted.last_submit - submitted.first_submit
    return {
        "backend": backend,
        "tasks": tasks,
        "workers": workers,
        "connections": connections,
        "seconds": round(elapsed, 3),
        "tasks_per_second": round(tasks / elapsed),
        "submits_per_second": round(tasks / submit_seconds),
        "submit_p50_ms": round(percentile(submitted.latencies, 50) * 1000, 2),
        "submit_p99_ms": round(percentile(submitted.latencies, 99) * 1000, 2),
        "failed": metrics["failed_tasks"],
        # Shares of one core over the run: which process was the bottleneck.
        "server_cpu_share": round(server_cpu / elapsed, 2),
        "loadgen_cpu_share": round(own_cpu / elapsed, 2),
        # The server's CPU time per task: what the task costs it.
        "server_cpu_us_per_task": round(server_cpu / tasks * 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--observability-off", action="store_true", help="TASKQ_METRICS=false, no task log"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskq-bench-") as directory:
        figures = run(
            args.backend,
            args.tasks,
            workers=args.workers,
            connections=args.connections,
            log_dir=Path(directory),
            settings=OBSERVABILITY_OFF if args.observability_off else None,
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
