"""Tasks per second through the SQLite adapters alone (no HTTP, no handler work).

Each task: repository.add + queue.send (the submit), then receive, get, claim
(PENDING -> PROCESSING), complete (PROCESSING -> COMPLETED) and ack (the worker).

    .venv/bin/python benchmarks/bench_sqlite.py --tasks 5000 --workers 20
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.clock import SystemClock  # noqa: E402
from adapters.sqlite import SqliteDatabase, SqliteTaskQueue, SqliteTaskRepository  # noqa: E402
from domain.models import Delivery, Task, TaskStatus  # noqa: E402


async def run(path: str, tasks: int, producers: int, workers: int, synchronous: str) -> float:
    clock = SystemClock()
    db = SqliteDatabase(path, synchronous=synchronous, clock=clock)
    repo = SqliteTaskRepository(db)
    queue = SqliteTaskQueue(db, clock, max_receive_count=10)
    done = 0
    all_done = asyncio.Event()

    async def produce(offset: int) -> None:
        for n in range(offset, tasks, producers):
            task = Task.create("email", {"to": f"user{n}@example.com"}, clock.now())
            await repo.add(task)
            await queue.send(task.id)

    async def handle(delivery: Delivery) -> None:
        nonlocal done
        assert delivery.task_id is not None
        task = await repo.get(delivery.task_id)
        claimed = task.claim(delivery.receipt, clock.now(), 30)
        await repo.transition(claimed, expected=task)
        await repo.transition(claimed.complete({"sent": True}, clock.now()), expected=claimed)
        await queue.ack(delivery)
        done += 1
        if done == tasks:
            all_done.set()

    async def work() -> None:
        while not all_done.is_set():
            batch = await queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=0.2)
            await asyncio.gather(*(handle(d) for d in batch))

    started = time.perf_counter()
    consumers = [asyncio.create_task(work()) for _ in range(workers)]
    await asyncio.gather(*(produce(i) for i in range(producers)))
    await all_done.wait()
    elapsed = time.perf_counter() - started
    await asyncio.gather(*consumers)
    counts = await repo.count_by_status()
    assert counts[TaskStatus.COMPLETED] == tasks, counts
    db.close()
    return tasks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--producers", type=int, default=50)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default="NORMAL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskq-bench-") as directory:
        rate = asyncio.run(
            run(
                f"{directory}/bench.db",
                args.tasks,
                args.producers,
                args.workers,
                args.synchronous,
            )
        )
    print(
        f"{rate:,.0f} tasks/s  ({args.tasks} tasks, {args.producers} producers, "
        f"{args.workers} receivers x 10, synchronous={args.synchronous})"
    )


if __name__ == "__main__":
    main()
