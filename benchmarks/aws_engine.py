"""Benchmarks 2 and 5 (aws): no-op tasks through the engine on the aws backend, against
a local moto server, counting every SQS and DynamoDB request.

The engine runs in this process: ``TaskService.submit`` from ``producers`` coroutines
and a ``Worker``, both from the container with ``Settings(backend="aws", ...)``. The
number of tasks submitted but not completed is held at or below ``depth`` (a steady
submission rate), because moto's SQS calls slow down as a queue grows.

moto's TransactWriteItems deep-copies the whole table once per item, so a table of a
few thousand tasks makes every transaction slow; the run is split into rounds of
``per_table`` tasks, each on a freshly provisioned table (the queue stays). Request
counts per task do not depend on the table's size.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dependency_injector import providers

from adapters.dynamodb.change_stream import DynamoDbChangeStream
from adapters.memory import InMemoryTaskRepository, InMemoryWorkerRegistry
from benchmarks.aws_counting import RequestCounter
from benchmarks.common import percentile
from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.models import JSON
from domain.processing import Outcome
from domain.services import SubmitRequest
from entrypoints.runtime import build_worker, maybe_await

METRICS_READ_SECONDS = 5.0
"""A ``/metrics`` read this often while tasks run: fixed traffic, counted per task."""
POLL_WAIT_SECONDS = 2
"""Long polls of 2 s rather than 20: a poll still returns as soon as a message arrives,
and a stopped round's last poll (in a thread) does not hold the run up for 20 s."""

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def use_fake_credentials() -> None:
    """moto accepts any credentials; set fake ones for this process only."""
    for name, value in FAKE_CREDENTIALS.items():
        os.environ[name] = value


def aws_settings(endpoint: str, queue: str, table: str, workers: int) -> Settings:
    return Settings(
        backend="aws",
        aws_endpoint_url=endpoint,
        sqs_queue_name=queue,
        dynamodb_table=table,
        auto_provision=True,
        worker_count=workers,
        handlers="benchmarks.handlers",
        poll_wait_seconds=POLL_WAIT_SECONDS,
        visibility_timeout=30,
        shutdown_grace_seconds=10,
    )


def payload_of(size: int) -> JSON:
    """A payload whose JSON text is about ``size`` bytes (None for 0): random base64
    text, which compresses about as well as typical JSON does not (a fair, not a
    favourable, case for the engine's zlib of large payloads)."""
    if size <= 0:
        return None
    text = base64.b64encode(random.Random(size).randbytes(size)).decode()
    return {"data": text[: max(1, size - 12)]}


def attach_every_client(
    container: Container, counter: RequestCounter, table: str, store: str
) -> None:
    """Count the requests of every client the engine has: SQS, its long polls,
    DynamoDB and the stream the status counts are read from."""
    dynamodb = container.aws_dynamodb()
    if store == "dynamodb":
        counter.learn_table(dynamodb, table)  # before attaching: not counted
    counter.attach(container.aws_sqs())
    counter.attach(container.aws_sqs_poll())
    counter.attach(dynamodb)
    if store == "dynamodb":
        stream = container.backend.stream_counts().stream
        if isinstance(stream, DynamoDbChangeStream):
            counter.attach(stream.client)


async def read_metrics(container: Container, stop: asyncio.Event) -> None:
    """What a dashboard does: ``/metrics`` every ``METRICS_READ_SECONDS``."""
    service = container.task_service()
    while not stop.is_set():
        await service.metrics()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), METRICS_READ_SECONDS)


async def _round(
    container: Container, tasks: int, producers: int, depth: int, payload: JSON = None
) -> tuple[float, list[float]]:
    """Submit ``tasks`` with at most ``depth`` outstanding; wait for them all."""
    service = container.task_service()
    worker = build_worker(container)
    outcomes = worker.processor.outcomes
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    metrics = asyncio.create_task(read_metrics(container, stop))
    submitted = 0
    submit_latencies: list[float] = []

    def completed() -> int:
        return outcomes[Outcome.COMPLETED]

    async def produce() -> None:
        nonlocal submitted
        while submitted < tasks:
            if submitted - completed() >= depth:
                await asyncio.sleep(0.002)
                continue
            submitted += 1
            started = time.perf_counter()
            await service.submit(SubmitRequest(type="noop", payload=payload))
            submit_latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(produce() for _ in range(producers)))
    while completed() < tasks:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    stop.set()
    await running
    await metrics
    return elapsed, submit_latencies


async def _latency(container: Container, tasks: int, interval: float) -> list[float]:
    """Light load: one submit every ``interval``; submit -> start of each task."""
    service = container.task_service()
    repository = container.repository()
    worker = build_worker(container)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(1.0)  # the worker is long-polling
    ids = []
    for _ in range(tasks):
        ids.append((await service.submit(SubmitRequest(type="noop"))).id)
        await asyncio.sleep(interval)
    while worker.processor.outcomes[Outcome.COMPLETED] < tasks:
        await asyncio.sleep(0.01)
    stop.set()
    await running
    latencies = []
    for task_id in ids:
        task = await repository.get(task_id)
        assert task.started_at is not None
        latencies.append((task.started_at - task.created_at).total_seconds())
    return latencies


async def run(
    endpoint: str,
    *,
    tasks: int,
    workers: int,
    producers: int,
    depth: int,
    per_table: int,
    batching: bool = True,
    store: str = "dynamodb",
    latency_tasks: int = 0,
    latency_interval: float = 0.1,
    payload_bytes: int = 0,
) -> dict[str, Any]:
    use_fake_credentials()
    # As ``taskq serve`` runs it (entrypoints/runtime.py): blocking boto3 calls, long
    # polls among them, get threads enough; the stock pool (cores + 4) starves them.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max(32, 4 * workers)))
    counter = RequestCounter()
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    elapsed_total = 0.0
    submit_latencies: list[float] = []
    done = 0
    payload = payload_of(payload_bytes)
    while done < tasks:
        n = min(per_table, tasks - done)
        table = f"bench-{uuid.uuid4().hex[:8]}"
        container = build_container(aws_settings(endpoint, queue, table, workers))
        if not batching:
            container.backend_queue.override(container.backend.sqs_queue)
        if store == "memory":
            # SQS on moto, the task store in memory: the SQS requests per task at a rate
            # that moto's DynamoDB transactions do not cap.
            container.backend_repository.override(providers.Singleton(InMemoryTaskRepository))
            container.workers.override(providers.Singleton(InMemoryWorkerRegistry))
        await maybe_await(container.init_resources())  # provisions them (auto_provision)
        try:
            attach_every_client(container, counter, table, store)
            elapsed, latencies = await _round(container, n, producers, depth, payload)
            elapsed_total += elapsed
            submit_latencies += latencies
            done += n
            if done >= tasks:
                await container.backend.queue().aclose()  # the acks still lingering count
                summary = counter.summary(tasks)
                if latency_tasks:
                    start = await _latency(container, latency_tasks, latency_interval)
                    summary["latency"] = {
                        "tasks": latency_tasks,
                        "interval_s": latency_interval,
                        "p50_ms": round(percentile(start, 50) * 1000, 1),
                        "p99_ms": round(percentile(start, 99) * 1000, 1),
                    }
        finally:
            await maybe_await(container.shutdown_resources())
    return {
        "store": store,
        "payload_bytes": payload_bytes,
        "batching": batching,
        "workers": workers,
        "depth": depth,
        "seconds": round(elapsed_total, 3),
        "tasks_per_second": round(tasks / elapsed_total, 1),
        "submit_p50_ms": round(percentile(submit_latencies, 50) * 1000, 1),
        **summary,
    }
