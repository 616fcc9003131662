"""Benchmark 5 (memory): submit -> start latency at light load, over HTTP.

One task every ``--interval`` seconds to one ``taskq serve``; the latency of a task is
its ``started_at - created_at`` (both stamped by the server's clock).

    .venv/bin/python -m benchmarks.latency --tasks 250 --interval 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.common import percentile, serve
from benchmarks.loadgen import Connection


def start_latencies(tasks: list[dict[str, Any]]) -> list[float]:
    return [
        (
            datetime.fromisoformat(t["started_at"].replace("Z", "+00:00"))
            - datetime.fromisoformat(t["created_at"].replace("Z", "+00:00"))
        ).total_seconds()
        for t in tasks
    ]


async def trickle(url: str, count: int, interval: float) -> list[dict[str, Any]]:
    conn = await Connection.open(url)
    try:
        ids = []
        next_at = time.perf_counter()
        for _ in range(count):
            status, answer = await conn.request("POST", "/tasks", {"type": "noop"})
            if status != 201:
                raise RuntimeError(f"POST /tasks answered {status}: {answer}")
            ids.append(answer["id"])
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        deadline = time.perf_counter() + 30
        tasks = []
        for task_id in ids:
            while True:
                status, task = await conn.request("GET", f"/tasks/{task_id}")
                if task["status"] == "COMPLETED":
                    tasks.append(task)
                    break
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"task {task_id} not completed: {task}")
                await asyncio.sleep(0.01)
        return tasks
    finally:
        await conn.close()


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
    }


def run(tasks: int, interval: float, log_dir: Path) -> dict[str, Any]:
    with serve(log_dir, {"TASKQ_BACKEND": "memory", "WORKER_COUNT": "10"}) as server:
        done = asyncio.run(trickle(server.url, tasks, interval))
    return {
        "backend": "memory",
        "tasks": tasks,
        "interval_s": interval,
        **summary(start_latencies(done)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=250)
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskq-bench-") as directory:
        print(json.dumps(run(args.tasks, args.interval, Path(directory))))


if __name__ == "__main__":
    main()
