"""Benchmark 4: GET /metrics and GET /tasks?status=... latency against the number of
stored tasks (memory and sqlite), p50 over ``--requests`` sequential requests.

    /work/venv/bin/python -m benchmarks.reads --small 1000 --large 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import percentile, serve
from benchmarks.loadgen import Connection

PATHS = {
    "metrics": "/metrics",
    "list_pending": "/tasks?status=PENDING&limit=50",
    "list_completed": "/tasks?status=COMPLETED&limit=50",
}


async def measure(url: str, requests: int) -> dict[str, float]:
    conn = await Connection.open(url)
    try:
        p50: dict[str, float] = {}
        for name, path in PATHS.items():
            for _ in range(min(20, requests)):  # warm up
                await conn.request("GET", path)
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                status, _ = await conn.request("GET", path)
                samples.append(time.perf_counter() - started)
                if status != 200:
                    raise RuntimeError(f"GET {path} answered {status}")
            p50[name] = percentile(samples, 50) * 1000
        return p50
    finally:
        await conn.close()


def at_size(backend: str, tasks: int, requests: int, directory: Path) -> dict[str, float]:
    env = {"TASKQ_BACKEND": backend, "TASKQ_SQLITE_PATH": str(directory / f"reads-{tasks}.db")}
    args = ["--tasks", str(tasks)]
    with serve(directory, env, module="benchmarks.reads_server", args=args, timeout=600) as server:
        return asyncio.run(measure(server.url, requests))


def run(
    backends: list[str], small: int, large: int, requests: int, log_dir: Path
) -> list[dict[str, Any]]:
    rows = []
    for backend in backends:
        few = at_size(backend, small, requests, log_dir)
        many = at_size(backend, large, requests, log_dir)
        for name in PATHS:
            rows.append(
                {
                    "backend": backend,
                    "request": f"GET {PATHS[name]}",
                    "small": small,
                    "large": large,
                    "p50_ms_small": round(few[name], 3),
                    "p50_ms_large": round(many[name], 3),
                    "ratio": round(many[name] / few[name], 2),
                    "requests": requests,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="memory,sqlite")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskq-bench-") as directory:
        rows = run(args.backends.split(","), args.small, args.large, args.requests, Path(directory))
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
