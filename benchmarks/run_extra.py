"""The benchmarks of issues 15 to 18 in ``make bench`` (``benchmarks/run.py`` calls
``run``): CPU-bound resizes beside no-op tasks (10), data-export's memory (11),
flow control's overhead on a type without limits (12), the outside check of the
requests ``taskq serve`` makes on aws (14), and Celery on Redis (15). Their sections
and target rows are ``benchmarks/report_extra.py``."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import aws_outside, celery_redis, export_memory, flow_overhead, resize_latency
from benchmarks.common import moto_server
from benchmarks.resize_latency import ResizeSizes


@dataclass(frozen=True)
class ExtraSizes:
    resize: ResizeSizes = field(default_factory=lambda: ResizeSizes(tasks=300))
    export_tasks: int = 100_000
    """Issue 15's figure: RSS growth under 32 MB for 100,000 tasks exported."""
    flow_tasks: int = 2_000
    flow_rounds: int = 5
    """Rounds of each variant: with three, one slow round moved the median by 5-8% on
    this machine (an admission costs 0.6 µs more, 0.3% of a task on sqlite)."""
    outside_tasks: int = aws_outside.TASKS
    """Issue 16's outside check: 150-300 tasks of 200 B at a modest rate."""
    celery_tasks: int = 5_000
    """Issue 18: no-op tasks through Celery on Redis, each worker kind."""


QUICK = ExtraSizes(
    resize=ResizeSizes(tasks=20, image_side=1200, images=1),
    export_tasks=300,
    flow_tasks=100,
    flow_rounds=1,
    outside_tasks=20,
    celery_tasks=30,
)


def run(
    sizes: ExtraSizes, work: Path, timed: Callable[[str, Callable[[], Any]], Any]
) -> dict[str, Any]:
    """Each benchmark's figures under its key in the results."""
    results: dict[str, Any] = {}
    results["resize_latency"] = timed(
        "10 submit -> start while images are resized",
        lambda: resize_latency.run_both(sizes.resize, work),
    )

    def export() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="export-", dir=work) as directory:
            return asyncio.run(export_memory.run(Path(directory), sizes.export_tasks, "csv"))

    results["export_memory"] = timed("11 data-export memory", export)
    results["flow_overhead"] = timed(
        "12 flow control on a type without limits",
        lambda: asyncio.run(flow_overhead.measure(sizes.flow_tasks, sizes.flow_rounds)),
    )

    def outside() -> dict[str, Any]:
        with moto_server(work) as moto:
            return aws_outside.run(moto.url, work, tasks=sizes.outside_tasks)

    results["aws_outside"] = timed("14 outside check: requests of taskq serve (aws)", outside)
    results["celery_redis"] = timed(
        "15 Celery on Redis", lambda: celery_redis.run(sizes.celery_tasks, work)
    )
    return results
