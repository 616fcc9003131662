"""Benchmark 4: GET /metrics, GET /tasks?status=... and GET /ui (the dashboard's
overview) latency against the number of stored tasks (memory and sqlite), p50 over
``--requests`` sequential requests. Two API processes serve the two sizes side by side;
requests alternate between them.

    .venv/bin/python -m benchmarks.reads --small 1000 --large 100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
    "ui_overview": "/ui",  # the dashboard's overview page: it reads counts, not rows
}


async def measure(small_url: str, large_url: str, requests: int) -> dict[str, list[float]]:
    """p50 of each path on both servers, requests alternating between them, so that
    the machine's noise falls on both sizes alike."""
    small = await Connection.open(small_url)
    large = await Connection.open(large_url)

    async def timed(conn: Connection, path: str) -> float:
        started = time.perf_counter()
        status, _ = await conn.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        return time.perf_counter() - started

    try:
        p50: dict[str, list[float]] = {}
        for name, path in PATHS.items():
            for _ in range(min(20, requests)):  # warm up
                await timed(small, path)
                await timed(large, path)
            few, many = [], []
            for _ in range(requests):
                few.append(await timed(small, path))
                many.append(await timed(large, path))
            p50[name] = [percentile(few, 50) * 1000, percentile(many, 50) * 1000]
        return p50
    finally:
        await small.close()
        await large.close()


def _server(stack: contextlib.ExitStack, backend: str, tasks: int, directory: Path) -> str:
    env = {"TASKQ_BACKEND": backend, "TASKQ_SQLITE_PATH": str(directory / f"reads-{tasks}.db")}
    args = ["--tasks", str(tasks)]
    server = stack.enter_context(
        serve(directory, env, module="benchmarks.reads_server", args=args, timeout=600)
    )
    return server.url


def run(
    backends: list[str], small: int, large: int, requests: int, log_dir: Path
) -> list[dict[str, Any]]:
    rows = []
    for backend in backends:
        with contextlib.ExitStack() as stack:
            small_url = _server(stack, backend, small, log_dir)
            large_url = _server(stack, backend, large, log_dir)
            p50 = asyncio.run(measure(small_url, large_url, requests))
        for name, (few, many) in p50.items():
            rows.append(
                {
                    "backend": backend,
                    "request": f"GET {PATHS[name]}",
                    "small": small,
                    "large": large,
                    "p50_ms_small": round(few, 3),
                    "p50_ms_large": round(many, 3),
                    "ratio": round(many / few, 2),
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
