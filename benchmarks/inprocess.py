"""Engine overhead: no-op tasks through the use cases and the worker, in one process.

Submits ``n`` tasks with ``TaskService.submit`` while a ``Worker`` (memory backend)
runs them; reports tasks/s from the first submit to the last completion. What observes
the tasks is what ``taskq serve`` wires by default (bootstrap/container.py): the
Prometheus task metrics, the task event log and the completion waiters; the flow gate
on the memory flow store; and the backlog bound serve has on memory
(``DEFAULT_MEMORY_MAX_BACKLOG``: each submission counts the PENDING tasks). As
``taskq serve`` does once started (``settle_garbage_collector``), the objects made so
far are collected once and frozen out of the collector's sight before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from prometheus_client import CollectorRegistry

from adapters.clock import SystemClock
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from adapters.memory_flow import InMemoryFlowControlStore
from adapters.observability.metrics import PrometheusTaskEvents
from adapters.observability.task_log import TaskEventLog
from benchmarks.common import completed
from bootstrap.container import task_observers
from domain.events import FanOut
from domain.flow_gate import FlowGate
from domain.limits import DEFAULT_MEMORY_MAX_BACKLOG
from domain.processing import ProcessorSettings, TaskProcessor
from domain.retry import RetryPolicy
from domain.services import SubmissionLimits, SubmitRequest, TaskService
from domain.task_types import HandlerRegistry, TaskType
from domain.waiting import CompletionWaiters
from entrypoints.runtime import settle_garbage_collector
from entrypoints.worker import Worker, WorkerSettings


async def noop(payload: Any) -> None:
    return None


async def run(n: int, concurrency: int) -> dict[str, float]:
    clock = SystemClock()
    repo = InMemoryTaskRepository()
    queue = InMemoryTaskQueue(clock)
    task_types = HandlerRegistry()
    task_types.add(TaskType("noop", noop))
    workers = InMemoryWorkerRegistry()
    collectors = CollectorRegistry()
    metrics = lambda: PrometheusTaskEvents(collectors, task_types.names())  # noqa: E731
    events = FanOut(task_observers(True, metrics, TaskEventLog(), CompletionWaiters()))
    limits = SubmissionLimits(max_backlog=DEFAULT_MEMORY_MAX_BACKLOG)
    service = TaskService(repo, queue, clock, task_types, workers, limits, events=events)
    processor = TaskProcessor(
        repo,
        queue,
        clock,
        task_types,
        RetryPolicy(),
        ProcessorSettings(visibility_timeout=60),
        events=events,
        flow=FlowGate(InMemoryFlowControlStore(), queue, clock, task_types),
    )
    worker = Worker(
        processor,
        queue,
        workers,
        clock,
        WorkerSettings(concurrency=concurrency, poll_wait_seconds=1, shutdown_grace_seconds=5),
    )
    stop = asyncio.Event()
    settle_garbage_collector()  # what serve does after start-up
    started = time.perf_counter()
    running = asyncio.create_task(worker.run(stop))
    for _ in range(n):
        await service.submit(SubmitRequest(type="noop"))
    elapsed = await completed(repo, n, started, stop, running)
    return {"tasks": n, "seconds": round(elapsed, 3), "tasks_per_second": round(n / elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.tasks, args.concurrency))))


if __name__ == "__main__":
    main()
