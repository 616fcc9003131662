"""The HTTP API (no worker) over a store filled with ``--tasks`` tasks, for the
read-scaling benchmark. The store is filled through the repository before the API
starts, which is far quicker than submitting over HTTP.

    TASKQ_BACKEND=sqlite TASKQ_SQLITE_PATH=/tmp/r.db PORT=8090 \
        .venv/bin/python -m benchmarks.reads_server --tasks 100000
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.models import Task, TaskStatus
from entrypoints.runtime import configure_logging, maybe_await, run

FILL_CHUNK = 500


def make_task(n: int, start: datetime) -> Task:
    """Four in five COMPLETED, the rest split between PENDING and FAILED."""
    now = start + timedelta(microseconds=10 * n)
    task = Task.create("noop", None, now)
    kind = n % 10
    if kind < 8:
        return replace(task, status=TaskStatus.COMPLETED, attempts=1, finished_at=now, version=2)
    if kind == 8:
        return task
    return replace(task, status=TaskStatus.FAILED, attempts=3, error="boom", finished_at=now)


async def fill_and_serve(settings: Settings, tasks: int) -> None:
    container = build_container(settings)
    await maybe_await(container.init_resources())
    try:
        repository = container.repository()
        start = datetime.now(UTC) - timedelta(hours=1)
        for offset in range(0, tasks, FILL_CHUNK):
            chunk = range(offset, min(tasks, offset + FILL_CHUNK))
            await asyncio.gather(*(repository.add(make_task(n, start)) for n in chunk))
    finally:
        # run() owns the resources from here; a sqlite file is simply reopened.
        await maybe_await(container.shutdown_resources())
    if settings.backend == "memory":
        # The memory store lives in the container: keep it, and serve from it.
        await run(container, api=True, worker=False)
    else:
        await run(build_container(settings), api=True, worker=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, required=True)
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings)
    asyncio.run(fill_and_serve(settings, args.tasks))


if __name__ == "__main__":
    main()
