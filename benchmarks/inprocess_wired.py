"""The engine as ``taskq serve`` wires it, without HTTP: no-op tasks per second.

Builds the dependency-injector container for a backend (memory or sqlite, with the
shipped defaults), submits ``n`` no-op tasks through ``TaskService.submit`` from 32
concurrent submitters (as a server's connections would) while the worker that serve
builds (``build_worker``) runs them, and reports tasks/s from the first submit to the
last completion. ``benchmarks/inprocess.py`` wires the memory adapters by hand; this one
measures whatever the container wires, so it also covers sqlite.

    .venv/bin/python -m benchmarks.inprocess_wired --backend sqlite --tasks 9600
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import completed
from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.services import SubmitRequest
from entrypoints.runtime import build_worker, maybe_await, settle_garbage_collector

SUBMITTERS = 32


async def run(backend: str, n: int, directory: Path) -> dict[str, float | str]:
    settings = Settings(
        backend=backend,
        sqlite_path=str(directory / "taskq.db"),
        worker_count=50,
        handlers="benchmarks.handlers",
    )
    container = build_container(settings)
    await maybe_await(container.init_resources())
    try:
        service, repository = container.task_service(), container.repository()
        stop = asyncio.Event()
        worker = build_worker(container)
        each = max(1, n // SUBMITTERS)
        n = each * SUBMITTERS

        async def submitter() -> None:
            for _ in range(each):
                await service.submit(SubmitRequest(type="noop"))

        settle_garbage_collector()
        started = time.perf_counter()
        running = asyncio.create_task(worker.run(stop))
        await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))
        elapsed = await completed(repository, n, started, stop, running)
    finally:
        await maybe_await(container.shutdown_resources())
    return {"backend": backend, "tasks": n, "tasks_per_second": round(n / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["memory", "sqlite"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=9600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskq-bench-") as directory:
        print(json.dumps(asyncio.run(run(args.backend, args.tasks, Path(directory)))))


if __name__ == "__main__":
    main()
