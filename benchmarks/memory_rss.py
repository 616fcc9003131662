"""Benchmark 7: RSS of ``taskq serve`` idle and after ``--tasks`` no-op tasks.

sqlite with retention on (TASKQ_RETENTION_SECONDS): the store stays bounded, and so
should the process. The memory backend keeps every task (it has no retention), so its
growth per task is reported too, as the cost of keeping history in RAM.

    .venv/bin/python -m benchmarks.memory_rss --tasks 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import loadgen
from benchmarks.common import rss_kib, serve

STEPS = 5


def run(backend: str, tasks: int, log_dir: Path, retention: float) -> dict[str, Any]:
    env = {
        "TASKQ_BACKEND": backend,
        "WORKER_COUNT": "50",
        "TASKQ_SQLITE_PATH": str(log_dir / "rss.db"),
    }
    if backend == "sqlite":
        env["TASKQ_RETENTION_SECONDS"] = str(retention)
    with serve(log_dir, env) as server:
        time.sleep(1.0)
        idle = rss_kib(server.pid)
        samples = []
        done = 0
        step = max(1, tasks // STEPS)
        while done < tasks:
            n = min(step, tasks - done)
            result = asyncio.run(
                loadgen.submit_many(server.url, n, lambda _: {"type": "noop"}, connections=16)
            )
            if result.errors:
                raise RuntimeError(f"{result.errors} submissions failed:\n{server.log()}")
            done += n
            metrics = asyncio.run(loadgen.wait_drained(server.url))
            samples.append((done, rss_kib(server.pid)))
        time.sleep(1.0)
        final = rss_kib(server.pid)
    peak = max(rss for _, rss in samples)
    return {
        "backend": backend,
        "tasks": tasks,
        "retention_s": retention if backend == "sqlite" else None,
        "idle_rss_mib": round(idle / 1024, 1),
        "final_rss_mib": round(final / 1024, 1),
        "peak_rss_mib": round(max(peak, final) / 1024, 1),
        "growth_mib": round((final - idle) / 1024, 1),
        "growth_bytes_per_task": round((final - idle) * 1024 / tasks),
        "samples": [{"tasks": n, "rss_mib": round(kib / 1024, 1)} for n, kib in samples],
        "stored_tasks_at_end": metrics["total_tasks"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["memory", "sqlite"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--retention", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskq-bench-") as directory:
        print(json.dumps(run(args.backend, args.tasks, Path(directory), args.retention)))


if __name__ == "__main__":
    main()
