"""data-export's memory: RSS growth while exporting ``--tasks`` tasks from SQLite.

The tasks are stored first (in one process, through the SQLite repository), then one
export streams them page by page into a directory blob store while a thread samples
this process's RSS every 10 ms (freed memory of the populating step may be reused, so
the peak of Python's own allocations during the export, by tracemalloc, is reported
too). The export holds one page at a time, so the growth
should not depend on the number of tasks: the issue's bound is 32 MB for 100,000.

    python -m benchmarks.export_memory --tasks 100000 --format csv
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from adapters.blobs import DirectoryBlobStore
from adapters.clock import SystemClock
from adapters.handlers.exports import TaskExporter
from adapters.sqlite import SqliteDatabase, SqliteTaskRepository
from benchmarks.common import rss_kib
from domain.models import Task

BOUND_MIB = 32
BATCH = 500


async def populate(repository: SqliteTaskRepository, tasks: int) -> None:
    clock = SystemClock()
    for start in range(0, tasks, BATCH):
        batch = [
            Task.create("email", {"to": f"user{n}@example.com", "n": n}, clock.now())
            for n in range(start, min(tasks, start + BATCH))
        ]
        await asyncio.gather(*(repository.add(task) for task in batch))


def sample_peak(stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.01):
        peak[0] = max(peak[0], rss_kib(os.getpid()))


async def run(directory: Path, tasks: int, fmt: str) -> dict[str, Any]:
    database = SqliteDatabase(
        str(directory / "taskq.db"), synchronous="NORMAL", clock=SystemClock()
    )
    try:
        repository = SqliteTaskRepository(database)
        started = time.perf_counter()
        await populate(repository, tasks)
        populated = time.perf_counter() - started
        exporter = TaskExporter(repository, DirectoryBlobStore(directory / "blobs"), public_url="")
        gc.collect()
        before = rss_kib(os.getpid())
        peak, stop = [before], threading.Event()
        sampler = threading.Thread(target=sample_peak, args=(stop, peak))
        sampler.start()
        started = time.perf_counter()
        tracemalloc.start()
        result = await exporter.run({"dataset": "tasks", "format": fmt, "name": "bench"})
        _, allocated_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        exported = time.perf_counter() - started
        stop.set()
        sampler.join()
    finally:
        database.close()
    assert isinstance(result, dict)
    growth = (peak[0] - before) / 1024
    return {
        "tasks": tasks,
        "format": fmt,
        "rows": result["rows"],
        "bytes": result["bytes"],
        "populate_s": round(populated, 1),
        "export_s": round(exported, 1),
        "rss_before_mib": round(before / 1024, 1),
        "rss_peak_mib": round(peak[0] / 1024, 1),
        "growth_mib": round(growth, 1),
        "python_allocations_peak_mib": round(allocated_peak / 2**20, 1),
        "within_bound": growth < BOUND_MIB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--format", choices=["csv", "ndjson", "json"], default="csv")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskq-export-") as directory:
        print(json.dumps(asyncio.run(run(Path(directory), args.tasks, args.format))))


if __name__ == "__main__":
    main()
