"""Benchmark 6: I/O-bound handlers. ``--tasks`` tasks that each await
``asyncio.sleep(--sleep)``, with WORKER_COUNT ``--concurrency``, in one process
(container, memory backend); ideal time tasks * sleep / concurrency.

    .venv/bin/python -m benchmarks.io_bound --tasks 1000 --sleep 0.1 --concurrency 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from benchmarks.common import completed
from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.limits import MAX_BATCH_SIZE
from domain.services import BatchEntry, SubmitRequest
from entrypoints.runtime import build_worker, maybe_await


async def run(tasks: int, sleep: float, concurrency: int) -> dict[str, Any]:
    settings = Settings(
        backend="memory",
        worker_count=concurrency,
        handlers="benchmarks.handlers",
        poll_wait_seconds=1,
    )
    container = build_container(settings)
    await maybe_await(container.init_resources())
    try:
        service = container.task_service()
        repository = container.repository()
        worker = build_worker(container)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        started = time.perf_counter()
        entry = BatchEntry(SubmitRequest(type="sleep", payload=sleep))
        for start in range(0, tasks, MAX_BATCH_SIZE):
            await service.submit_batch([entry] * min(MAX_BATCH_SIZE, tasks - start))
        elapsed = await completed(repository, tasks, started, stop, running)
    finally:
        await maybe_await(container.shutdown_resources())
    ideal = tasks * sleep / concurrency
    return {
        "tasks": tasks,
        "sleep_s": sleep,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "ideal_seconds": round(ideal, 3),
        "overhead_ratio": round(elapsed / ideal, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.tasks, args.sleep, args.concurrency))))


if __name__ == "__main__":
    main()
