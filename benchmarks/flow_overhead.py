"""The overhead of flow control on a task type that has no limits (issue 17): tasks per
second through the real ``TaskProcessor`` on one SQLite file, without flow control
(``OpenGate``, today's processor) and with it (``FlowGate`` on the SQLite store), in
alternating rounds so that both see the same machine; then a type with a concurrency
limit, for what a limit costs (a read and two conditional writes per task).

    python -m benchmarks.flow_overhead --tasks 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.clock import SystemClock  # noqa: E402
from adapters.sqlite import (  # noqa: E402
    SqliteDatabase,
    SqliteFlowControlStore,
    SqliteTaskQueue,
    SqliteTaskRepository,
)
from domain.flow_control import FlowLimits  # noqa: E402
from domain.flow_gate import Admissions, FlowGate, OpenGate  # noqa: E402
from domain.models import Delivery, Task  # noqa: E402
from domain.processing import Outcome, TaskProcessor  # noqa: E402
from domain.retry import RetryPolicy  # noqa: E402
from domain.task_types import HandlerRegistry, TaskType  # noqa: E402

SLOTS = 20


async def noop(payload: object) -> str:
    return "ok"


async def one_round(directory: str, variant: str, tasks: int) -> float:
    """Tasks per second of ``variant`` (``none``, ``gate``, ``limited``)."""
    clock = SystemClock()
    db = SqliteDatabase(f"{directory}/{variant}-{time.monotonic_ns()}.db", clock=clock)
    try:
        repo, queue = SqliteTaskRepository(db), SqliteTaskQueue(db, clock, max_receive_count=10)
        task_types = HandlerRegistry()
        limits = FlowLimits(max_concurrency=1000) if variant == "limited" else FlowLimits()
        task_types.add(replace(TaskType("bench", noop), flow=limits))
        flow: Admissions = OpenGate()
        if variant != "none":
            flow = FlowGate(SqliteFlowControlStore(db), queue, clock, task_types)
        processor = TaskProcessor(repo, queue, clock, task_types, RetryPolicy(), flow=flow)
        for _ in range(tasks):
            task = Task.create("bench", {}, clock.now())
            await queue.send(task.id)
            await repo.add(task)
        done = 0
        started = time.perf_counter()

        async def work() -> None:
            nonlocal done
            while done < tasks:
                for delivery in await queue.receive(
                    max_messages=1, visibility_timeout=30, wait_seconds=0
                ):
                    if await processor.process(delivery) is Outcome.COMPLETED:
                        done += 1  # a deferred one comes back

        await asyncio.gather(*(work() for _ in range(SLOTS)))
        return tasks / (time.perf_counter() - started)
    finally:
        db.close()


async def admission_cost(calls: int = 20_000) -> dict[str, float]:
    """Microseconds per ``admission`` of a task of a type without limits: the whole of
    what flow control adds to such a delivery (the settings' read once a second aside)."""
    clock = SystemClock()
    task_types = HandlerRegistry()
    task_types.add(TaskType("bench", noop))
    with tempfile.TemporaryDirectory(prefix="taskq-flow-bench-") as directory:
        db = SqliteDatabase(f"{directory}/cost.db", clock=clock)
        try:
            queue = SqliteTaskQueue(db, clock, max_receive_count=10)
            gates: dict[str, Admissions] = {
                "none": OpenGate(),
                "gate": FlowGate(SqliteFlowControlStore(db), queue, clock, task_types),
            }
            task = Task.create("bench", {}, clock.now())
            delivery = Delivery("r", task.id, 1)
            costs = {}
            for name, gate in gates.items():
                started = time.perf_counter()
                for _ in range(calls):
                    async with gate.admission(task, delivery):
                        pass
                costs[name] = (time.perf_counter() - started) / calls * 1e6
            return costs
        finally:
            db.close()


VARIANTS = {
    "none": "no flow control (today)",
    "gate": "flow control, type without limits",
    "limited": "flow control, type with max_concurrency",
}


async def measure(tasks: int, rounds: int) -> dict[str, Any]:
    """Each variant's tasks/s (median and every round), its change from ``none`` in
    percent, and the microseconds of one admission with and without flow control."""
    results: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="taskq-flow-bench-") as directory:
        for n in range(rounds):  # alternate the order: a loaded machine drifts
            for variant in list(results)[:: 1 if n % 2 == 0 else -1]:
                results[variant].append(await one_round(directory, variant, tasks))
    base = statistics.median(results["none"])
    variants = {
        variant: {
            "tasks_per_second": round(statistics.median(runs)),
            "runs": [round(r) for r in runs],
            "change_percent": round(100 * (statistics.median(runs) / base - 1), 1),
        }
        for variant, runs in results.items()
    }
    cost = await admission_cost()
    return {
        "tasks": tasks,
        "rounds": rounds,
        "slots": SLOTS,
        "variants": variants,
        "admission_us": {name: round(us, 1) for name, us in cost.items()},
    }


async def main(tasks: int, rounds: int) -> None:
    measured = await measure(tasks, rounds)
    for variant, label in VARIANTS.items():
        row = measured["variants"][variant]
        spread = ", ".join(str(r) for r in row["runs"])
        print(
            f"{label:42s} {row['tasks_per_second']:7d} tasks/s "
            f"({row['change_percent']:+5.1f}%)  rounds: {spread}"
        )
    cost = measured["admission_us"]
    print(
        f"admission of a task of a type without limits: {cost['gate']:.1f} us "
        f"(without flow control: {cost['none']:.1f} us) per delivery"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each variant")
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.rounds))
