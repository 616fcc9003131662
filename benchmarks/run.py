"""``make bench``: every benchmark of docs/benchmarks.md in one run, written there.

    .venv/bin/python -m benchmarks.run                # full sizes (~15 minutes)
    .venv/bin/python -m benchmarks.run --quick --output /tmp/bench.md

``--quick`` runs the same code on tiny sizes: a smoke test (``make test`` runs it) that
every benchmark still works and yields its figures. Its numbers mean nothing.
Comparisons (HTTP memory vs sqlite, engine vs original, 1k vs 100k stored tasks) are
measured in the same run, one after the other, on this noisy 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    aws_engine,
    aws_latency,
    baseline,
    http_throughput,
    io_bound,
    latency,
    memory_rss,
    original_loop,
    reads,
    run_extra,
    sustained,
    waiting,
)
from benchmarks.common import ROOT, cpu_model, moto_server
from benchmarks.http_throughput import OBSERVABILITY_OFF, SHIPPED_DEFAULTS


@dataclass(frozen=True)
class Sizes:
    inprocess: int
    http_memory: int
    http_sqlite: int
    aws_sqs: int
    aws_full: int
    aws_per_table: int
    original: int
    reads_small: int
    reads_large: int
    reads_requests: int
    latency_tasks: int
    aws_latency_tasks: int
    io_tasks: int
    rss_tasks: int
    waiters: int = 1000
    waiting_load: int = 3000
    sustained_seconds: float = 8.0
    aws_modelled: int = 600
    extra: run_extra.ExtraSizes = run_extra.ExtraSizes()
    """Benchmarks 10 to 12 (issues 15 and 17)."""


FULL = Sizes(
    inprocess=20_000,
    http_memory=10_000,
    http_sqlite=5_000,
    aws_sqs=5_000,
    aws_full=1_000,
    aws_per_table=1_000,
    original=1_000,
    reads_small=1_000,
    reads_large=100_000,
    reads_requests=200,
    latency_tasks=250,
    aws_latency_tasks=40,
    io_tasks=1_000,
    rss_tasks=100_000,
)
QUICK = Sizes(
    inprocess=300,
    http_memory=200,
    http_sqlite=200,
    aws_sqs=40,
    aws_full=20,
    aws_per_table=20,
    original=20,
    reads_small=50,
    reads_large=500,
    reads_requests=10,
    latency_tasks=10,
    aws_latency_tasks=3,
    io_tasks=100,
    rss_tasks=300,
    waiters=50,
    waiting_load=200,
    sustained_seconds=1.0,
    aws_modelled=10,
    extra=run_extra.QUICK,
)
AWS_WORKERS = 20
AWS_PRODUCERS = 20
AWS_DEPTH = 100
AWS_PAYLOADS = ((200, ""), (4096, "_4k"))
"""Payload sizes of the aws runs (issue 16's cost targets), and their results' suffix."""


REPEATS = 3
"""Throughput runs are repeated and the median run reported (all are listed)."""
COST_REPEATS = 5
"""Runs of each side for the cost of the default observability: a ratio of two medians
near 1 that three runs each left about 5% apart from one run of the bench to the next."""


def _median(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


def machine() -> dict[str, Any]:
    cpu = cpu_model(platform.processor() or "unknown")
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def timed(label: str, run: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    print(f"[bench] {label} ...", file=sys.stderr, flush=True)
    result = run()
    print(f"[bench] {label}: {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    return result


def observability_cost(tasks: int, work: Path) -> dict[str, Any]:
    """HTTP throughput (memory) with the default metrics and logging, and with both off
    (``TASKQ_METRICS=false``, task log silent), alternated; the medians' ratio. Each
    round swaps which goes first (defaults, off; off, defaults; ...), so that whatever
    favours the first or the second run of a pair falls on both alike."""
    settings = {"defaults": SHIPPED_DEFAULTS, "off": OBSERVABILITY_OFF}
    runs: dict[str, list[dict[str, Any]]] = {"defaults": [], "off": []}
    for round_ in range(COST_REPEATS):
        order = list(settings.items())
        for name, env in order if round_ % 2 == 0 else reversed(order):
            runs[name].append(
                http_throughput.run(
                    "memory", tasks, workers=50, connections=32, log_dir=work, settings=env
                )
            )
    defaults, off = (_median(runs[name], "tasks_per_second") for name in settings)
    defaults_cpu, off_cpu = (
        _median(runs[name], "server_cpu_us_per_task")["server_cpu_us_per_task"] for name in settings
    )
    return {
        "tasks": tasks,
        "defaults_tasks_per_second": defaults["tasks_per_second"],
        "off_tasks_per_second": off["tasks_per_second"],
        "defaults_runs": [r["tasks_per_second"] for r in runs["defaults"]],
        "off_runs": [r["tasks_per_second"] for r in runs["off"]],
        "defaults_over_off": round(defaults["tasks_per_second"] / off["tasks_per_second"], 3),
        "defaults_cpu_us_per_task": defaults_cpu,
        "off_cpu_us_per_task": off_cpu,
        "defaults_cpu_runs": [r["server_cpu_us_per_task"] for r in runs["defaults"]],
        "off_cpu_runs": [r["server_cpu_us_per_task"] for r in runs["off"]],
        "cpu_off_over_defaults": round(off_cpu / defaults_cpu, 3),
    }


def run_all(sizes: Sizes, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "started": datetime.now(UTC).isoformat()}
    results["inprocess"] = timed(
        "1 in-process, alternated with the engine before issue 18",
        lambda: baseline.alternated(sizes.inprocess, REPEATS),
    )
    http_runs: dict[str, list[dict[str, Any]]] = {"memory": [], "sqlite": []}
    for _ in range(REPEATS):  # alternated, so the machine's noise falls on both
        for backend, n in (("memory", sizes.http_memory), ("sqlite", sizes.http_sqlite)):
            http_runs[backend].append(
                timed(
                    f"1 HTTP {backend}",
                    lambda backend=backend, n=n: http_throughput.run(  # type: ignore[misc]
                        backend, n, workers=50, connections=32, log_dir=work
                    ),
                )
            )
    results["http"] = [
        {**_median(runs, "tasks_per_second"), "runs": [r["tasks_per_second"] for r in runs]}
        for runs in http_runs.values()
    ]
    results["http_observability"] = timed(
        "1 HTTP memory, default metrics and logging vs both off",
        lambda: observability_cost(sizes.http_memory, work),
    )
    results["io_bound"] = timed(
        "6 I/O-bound", lambda: asyncio.run(io_bound.run(sizes.io_tasks, 0.1, 100))
    )
    results["latency"] = timed(
        "5 latency memory", lambda: latency.run(sizes.latency_tasks, 0.02, work)
    )
    results["reads"] = timed(
        "4 reads",
        lambda: reads.run(
            ["memory", "sqlite"],
            sizes.reads_small,
            sizes.reads_large,
            sizes.reads_requests,
            work,
        ),
    )
    with moto_server(work) as moto:
        aws_engine.use_fake_credentials()
        results["aws_sqs_saturation"] = timed(
            "2 aws, SQS on moto, store in memory",
            lambda: asyncio.run(
                aws_engine.run(
                    moto.url,
                    tasks=sizes.aws_sqs,
                    per_table=sizes.aws_sqs,
                    store="memory",
                    workers=AWS_WORKERS,
                    producers=AWS_PRODUCERS,
                    depth=AWS_DEPTH,
                )
            ),
        )
        results["aws_metrics_every_s"] = aws_engine.METRICS_READ_SECONDS
        for payload, suffix in AWS_PAYLOADS:  # each size: the engine, then the original
            results[f"aws_engine{suffix}"] = timed(
                f"2/3/5 aws engine, SQS + DynamoDB on moto, {payload} B payloads",
                lambda payload=payload, suffix=suffix: asyncio.run(  # type: ignore[misc]
                    aws_engine.run(
                        moto.url,
                        tasks=sizes.aws_full,
                        per_table=sizes.aws_per_table,
                        latency_tasks=0 if suffix else sizes.aws_latency_tasks,
                        workers=AWS_WORKERS,
                        producers=AWS_PRODUCERS,
                        depth=AWS_DEPTH,
                        payload_bytes=payload,
                    )
                ),
            )
            results[f"original{suffix}"] = timed(
                f"3 original loop on moto, {payload} B payloads",
                lambda payload=payload: original_loop.run(  # type: ignore[misc]
                    moto.url,
                    tasks=sizes.original,
                    workers=AWS_WORKERS,
                    producers=AWS_PRODUCERS,
                    depth=AWS_DEPTH,
                    payload=aws_engine.payload_of(payload),
                ),
            )
        results["aws_latency_model"] = timed(
            "13 aws worker, modelled AWS latency, 10/50/200 slots",
            lambda: aws_latency.run(moto.url, tasks=sizes.aws_modelled),
        )
    results["rss"] = [
        timed(
            f"7 RSS {backend}",
            lambda backend=backend: memory_rss.run(  # type: ignore[misc]
                backend, sizes.rss_tasks, work, retention=2.0
            ),
        )
        for backend in ("sqlite", "memory")
    ]
    results["waiting"] = timed(
        "8 waiting requests",
        lambda: waiting.run(sizes.waiters, sizes.waiting_load, work),
    )
    results["sustained"] = timed(
        "9 sustained load beside a trivial endpoint",
        lambda: sustained.run(sizes.sustained_seconds, work),
    )
    results.update(run_extra.run(sizes.extra, work, timed))
    results["finished"] = datetime.now(UTC).isoformat()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--output", type=Path, help="markdown report (default: docs/benchmarks.md)")
    parser.add_argument("--json", type=Path, help="also write the raw figures as JSON")
    parser.add_argument(
        "--from-json", type=Path, help="render the report from a former run's JSON; run nothing"
    )
    args = parser.parse_args()
    output = args.output or (None if args.quick else ROOT / "docs" / "benchmarks.md")
    if args.from_json is not None:
        results = json.loads(args.from_json.read_text())
    else:
        sizes = QUICK if args.quick else FULL
        python = Path(sys.executable)
        if python.is_relative_to(ROOT):
            python = python.relative_to(ROOT)
        command = f"{python} -m benchmarks.run" + (" --quick" if args.quick else "")
        with tempfile.TemporaryDirectory(prefix="taskq-bench-") as directory:
            results = run_all(sizes, Path(directory))
        results["command"] = "make bench  (" + command + ")"
        results["quick"] = args.quick
    from benchmarks.report import render

    text = render(results)
    if output is not None:
        output.write_text(text)
        print(f"[bench] wrote {output}", file=sys.stderr)
    else:
        print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
