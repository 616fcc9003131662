"""The Celery side of benchmark 15 (``benchmarks/celery_redis.py``): one no-op task on a
Redis broker, its state recorded in Redis as the engine records a task's.

Loaded by ``celery -A benchmarks.celery_app worker`` and by the submitting process;
the broker's URL comes from ``BENCH_REDIS_URL``."""

from __future__ import annotations

import os

from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_ignore_result=False,  # each task's state is written, as the engine writes it
    result_extended=False,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    task_send_sent_event=False,
)


@app.task(name="noop")  # type: ignore[untyped-decorator]
def noop() -> None:
    return None
