"""Benchmark 8: many ``GET /tasks/{id}?wait=N`` requests parked on one ``taskq serve``.

``--waiters`` requests (one connection each) wait on delayed tasks that do not finish
while they wait. Meanwhile no-op tasks are submitted (and run) over 16 other
connections: their throughput is compared with the same load before the waiters came
and after they left, and the server's RSS with the waiters against without. Then the
waited-on tasks are cancelled: each waiter is answered by the task event, and the time
until the last one answered is reported.

    .venv/bin/python -m benchmarks.waiting --waiters 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import loadgen
from benchmarks.common import rss_kib, serve

WAIT_SECONDS = 30
"""As long as a client may wait (MAX_TASK_WAIT_SECONDS): the load runs inside it."""
HELD_DELAY_SECONDS = 600
"""The waited-on tasks are due this far off, so they stay PENDING."""
LOAD_CONNECTIONS = 16
ROUNDS = 3
"""Runs with and without waiters, alternated; the medians are compared."""


async def _load(url: str, tasks: int) -> float:
    """Submissions per second of ``tasks`` no-op tasks, and every one completed."""
    result = await loadgen.submit_many(
        url, tasks, lambda _: {"type": "noop"}, connections=LOAD_CONNECTIONS
    )
    if result.errors:
        raise RuntimeError(f"{result.errors} submissions failed")
    return tasks / (result.last_submit - result.first_submit)


async def _held_tasks(url: str, count: int) -> list[str]:
    body = {"type": "noop", "delay_seconds": HELD_DELAY_SECONDS}
    result = await loadgen.submit_many(url, count, lambda _: body, keep_ids=True)
    if result.errors:
        raise RuntimeError(f"{result.errors} submissions failed")
    return result.ids


async def _wait(conn: loadgen.Connection, task_id: str) -> tuple[int, str, float]:
    status, task = await conn.request("GET", f"/tasks/{task_id}?wait={WAIT_SECONDS}")
    return status, task.get("status", "") if isinstance(task, dict) else "", time.perf_counter()


async def _cancel_all(url: str, ids: list[str]) -> None:
    conns = [await loadgen.Connection.open(url) for _ in range(LOAD_CONNECTIONS)]
    try:
        await asyncio.gather(
            *(_cancel_each(conn, ids[n :: len(conns)]) for n, conn in enumerate(conns))
        )
    finally:
        await asyncio.gather(*(c.close() for c in conns))


async def _cancel_each(conn: loadgen.Connection, ids: list[str]) -> None:
    for task_id in ids:
        status, answer = await conn.request("POST", f"/tasks/{task_id}/cancel")
        if status != 200:
            raise RuntimeError(f"cancel answered {status}: {answer}")


async def _parked_round(
    url: str, pid: int, ids: list[str], load_tasks: int
) -> tuple[float, int, float]:
    """Park a waiter on each of ``ids``, run the load, cancel the tasks: the load's
    submissions per second, the RSS while parked, and the time from the cancels until
    the last waiter was answered."""
    conns = [await loadgen.Connection.open(url) for _ in ids]
    waiting = [asyncio.create_task(_wait(c, t)) for c, t in zip(conns, ids, strict=True)]
    await asyncio.sleep(1.0)  # every request has arrived and waits
    rss = rss_kib(pid)
    during = await _load(url, load_tasks)
    if any(job.done() for job in waiting):
        raise RuntimeError("a waiter was answered before its task finished")
    rss = max(rss, rss_kib(pid))
    cancel_started = time.perf_counter()
    await _cancel_all(url, ids)
    answers = await asyncio.gather(*waiting)
    await asyncio.gather(*(c.close() for c in conns))
    if any(status != 200 or task != "CANCELLED" for status, task, _ in answers):
        raise RuntimeError(f"a waiter was not answered with its cancelled task: {answers[:3]}")
    return during, rss, max(at for _, _, at in answers) - cancel_started


async def _scenario(url: str, pid: int, waiters: int, load_tasks: int) -> dict[str, Any]:
    # Every round's held tasks are there from the start: only the waiting requests differ
    # between the runs with and without them, which alternate (the machine is noisy).
    held = await _held_tasks(url, waiters * ROUNDS)
    await _load(url, load_tasks // 4)  # warm up
    rss_without = rss_kib(pid)
    without: list[float] = []
    with_waiters: list[float] = []
    rss_with: list[int] = []
    answer_seconds: list[float] = []
    for n in range(ROUNDS):
        without.append(await _load(url, load_tasks))
        during, rss, answered = await _parked_round(
            url, pid, held[n * waiters : (n + 1) * waiters], load_tasks
        )
        with_waiters.append(during)
        rss_with.append(rss)
        answer_seconds.append(answered)
    await asyncio.sleep(1.0)
    rss_after = rss_kib(pid)
    baseline, loaded = statistics.median(without), statistics.median(with_waiters)
    return {
        "waiters": waiters,
        "load_tasks": load_tasks,
        "rounds": ROUNDS,
        "submits_per_second_without": round(baseline),
        "submits_per_second_with_waiters": round(loaded),
        "without_runs": [round(x) for x in without],
        "with_runs": [round(x) for x in with_waiters],
        "throughput_with_over_without": round(loaded / baseline, 3),
        "rss_without_mib": round(rss_without / 1024, 1),
        "rss_with_waiters_mib": round(max(rss_with) / 1024, 1),
        "rss_with_over_without": round(max(rss_with) / rss_without, 3),
        "rss_per_waiter_kib": round((rss_with[0] - rss_without) / waiters, 1),
        "rss_after_mib": round(rss_after / 1024, 1),
        "rss_after_each_round_mib": [round(x / 1024, 1) for x in rss_with],
        "cancel_to_last_answer_seconds": round(max(answer_seconds), 2),
    }


def _allow_connections(count: int) -> None:
    """This process opens one connection per waiter: raise its open-files limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def run(waiters: int, load_tasks: int, log_dir: Path) -> dict[str, Any]:
    _allow_connections(waiters)
    env = {
        "TASKQ_BACKEND": "memory",
        "WORKER_COUNT": "50",
        "TASKQ_MAX_CONNECTIONS": str(waiters + 256),
    }
    with serve(log_dir, env) as server:
        figures = asyncio.run(_scenario(server.url, server.pid, waiters, load_tasks))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=1000)
    parser.add_argument("--load-tasks", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskq-bench-") as directory:
        print(json.dumps(run(args.waiters, args.load_tasks, Path(directory))))


if __name__ == "__main__":
    main()
