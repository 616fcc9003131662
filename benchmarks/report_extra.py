"""docs/benchmarks.md's parts for benchmarks 10 to 12, 14 and 15 (issues 15 to 18): named
figures, rows of the targets table, and a section each. A run without them (a former
run's JSON) renders without them."""

from __future__ import annotations

from typing import Any

from benchmarks.common import mark
from benchmarks.counting_proxy import INDEX_UNITS_PER_TASK
from benchmarks.export_memory import BOUND_MIB
from benchmarks.resize_latency import TARGET_RATIO

OUTSIDE_TARGET = 0.9
"""Issue 16: engine ÷ original cost per million tasks at a 200-byte payload."""
NOISE_PERCENT = 5.0
"""Flow control's cost on a type without limits is "within noise" when its median is
at most this much below the median without it, or inside the range of those rounds."""


def _shipped(results: dict[str, Any]) -> dict[str, Any] | None:
    """The resize run with the shipped TASKQ_CPU_WORKERS (the first)."""
    resize = results.get("resize_latency")
    return resize["runs"][0] if resize else None


def _flow_within_noise(flow: dict[str, Any]) -> bool:
    none, gate = flow["variants"]["none"], flow["variants"]["gate"]
    inside = min(none["runs"]) <= gate["tasks_per_second"] <= max(none["runs"])
    return bool(gate["change_percent"] >= -NOISE_PERCENT or inside)


def figures(results: dict[str, Any]) -> dict[str, float]:
    named: dict[str, float] = {}
    shipped = _shipped(results)
    if shipped is not None:
        named["resize_noop_p99_ratio"] = shipped["p99_ratio"]
        named["resize_noop_p50_ratio"] = shipped["p50_ratio"]
        named["resizes_per_second"] = shipped["resizes_per_second"]
    if "export_memory" in results:
        named["export_rss_growth_mib"] = results["export_memory"]["growth_mib"]
    if "flow_overhead" in results:
        named["flow_no_limits_change_percent"] = results["flow_overhead"]["variants"]["gate"][
            "change_percent"
        ]
    celery = _celery_solo(results)
    if celery is not None:
        named["celery_solo_tasks_per_second"] = celery["tasks_per_second"]
        named["inprocess_over_celery_solo"] = _over(results["inprocess"], celery)
    if "aws_outside" in results:
        named["aws_outside_cost_ratio"] = results["aws_outside"]["ratio"]
        named["aws_outside_sqs_per_task"] = results["aws_outside"]["engine"][
            "sqs_requests_per_task"
        ]
    return named


def target_rows(results: dict[str, Any]) -> list[str]:
    rows = []
    for run in results["resize_latency"]["runs"] if "resize_latency" in results else []:
        shipped = run is _shipped(results)
        rows.append(
            f"| 10 | no-op submit → start p99 while images are resized ÷ idle, "
            f"`TASKQ_CPU_WORKERS={run['cpu_workers']}`"
            + (" (shipped: one fewer than the cores)" if shipped else "")
            + f" | {run['p99_ratio']}× ({run['resizing']['p99_ms']} vs "
            f"{run['idle']['p99_ms']} ms) | ≤ {TARGET_RATIO:g}× | "
            f"{mark(run['p99_ratio'] <= TARGET_RATIO) if shipped else 'reported'} |"
        )
    if "export_memory" in results:
        export = results["export_memory"]
        rows.append(
            f"| 11 | RSS growth exporting {export['tasks']:,} tasks (sqlite → {export['format']}) "
            f"| {export['growth_mib']} MiB | < {BOUND_MIB} MiB | "
            f"{mark(export['growth_mib'] < BOUND_MIB)} |"
        )
    if "flow_overhead" in results:
        flow = results["flow_overhead"]
        gate = flow["variants"]["gate"]
        rows.append(
            f"| 12 | flow control on a type without limits, tasks/s vs without | "
            f"{gate['change_percent']:+}% ({gate['tasks_per_second']:,} vs "
            f"{flow['variants']['none']['tasks_per_second']:,}) | within noise "
            f"(costs ≤ {NOISE_PERCENT:g}%, or inside the rounds without) | "
            f"{mark(_flow_within_noise(flow))} |"
        )
    celery = _celery_solo(results)
    if celery is not None:
        memory = next(row for row in results["http"] if row["backend"] == "memory")
        rows.append(
            "| 15 | no-op tasks/s, engine ÷ Celery on Redis (solo worker, "
            f"{celery['tasks_per_second']:,}/s): in-process / one `taskq serve` over HTTP "
            "(memory) | "
            f"{_over(results['inprocess'], celery)}× / {_over(memory, celery)}× | beside "
            "Celery+Redis (issue 18) | reported |"
        )
    if "aws_outside" in results:
        outside = results["aws_outside"]
        rows.append(
            f"| 14 | outside check: `taskq serve` (aws) ÷ original, cost per million tasks "
            f"of 200 B at a modest rate | {outside['ratio']}× | ≤ {OUTSIDE_TARGET:g}× | "
            f"{mark(outside['ratio'] <= OUTSIDE_TARGET)} |"
        )
    return rows


def sections(results: dict[str, Any]) -> list[str]:
    return [*_resize(results.get("resize_latency")), *_export(results.get("export_memory"))] + [
        *_flow(results.get("flow_overhead")),
        *_outside(results.get("aws_outside")),
        *_celery(results),
    ]


def _celery_solo(results: dict[str, Any]) -> dict[str, Any] | None:
    """Celery's run with a solo worker, if Celery on Redis ran."""
    celery = results.get("celery_redis")
    if celery is None or "runs" not in celery:
        return None
    solo: dict[str, Any] = next(run for run in celery["runs"] if "solo" in run["pool"])
    return solo


def _over(engine: dict[str, Any], celery: dict[str, Any]) -> float:
    return round(float(engine["tasks_per_second"]) / float(celery["tasks_per_second"]), 1)


def _celery(results: dict[str, Any]) -> list[str]:
    celery = results.get("celery_redis")
    if celery is None:
        return []
    lines = ["## 15. Beside Celery on Redis", ""]
    if "runs" not in celery:
        return [*lines, f"Not run: {celery['skipped']}.", ""]
    lines += [
        f"`benchmarks/celery_redis.py` (issue 18): Celery {celery['celery']} with "
        f"`redis-server` {celery['redis']} (loopback, no persistence) as its broker and "
        "result backend (each task's state written, as the engine writes a task's); one "
        "process submits no-op tasks with `delay()`, a worker runs them; first submit to "
        "the last result stored. Celery's side has three processes on the two cores "
        "(submitter, worker, Redis) where the engine in-process has one.",
        "",
        "| run | tasks | tasks/s | submits/s |",
        "|---|---|---|---|",
    ]
    for run in celery["runs"]:
        lines.append(
            f"| Celery, `{run['pool']}` | {run['tasks']:,} | {run['tasks_per_second']:,} | "
            f"{run['submits_per_second']:,} |"
        )
    memory = next(row for row in results["http"] if row["backend"] == "memory")
    inprocess = results["inprocess"]
    return [
        *lines,
        f"| the engine in-process (section 1, median) | {inprocess['tasks']:,} | "
        f"{inprocess['tasks_per_second']:,} | |",
        f"| one `taskq serve` over HTTP, memory (section 1, median) | {memory['tasks']:,} | "
        f"{memory['tasks_per_second']:,} | {memory.get('submits_per_second', 0):,} |",
        "",
    ]


def _resize(resize: dict[str, Any] | None) -> list[str]:
    if resize is None:
        return []
    first = resize["runs"][0]
    lines = [
        "## 10. CPU-bound work beside no-op tasks",
        "",
        "`benchmarks/resize_latency.py` (issue 15): one `taskq serve` (memory, "
        f"`WORKER_COUNT={first['worker_count']}`); generated photos ({first['image']}) "
        "uploaded with `POST /blobs`; no-op tasks trickled in one every "
        f"{first['interval_s'] * 1000:g} ms ({first['tasks_per_phase']} a phase, "
        f"{first['rounds']} rounds alternated), with the server otherwise idle and while "
        "streams each keep one `image-resize` running (one more stream than the CPU pool "
        "has processes, so it never idles; fewer than the worker's slots, so a no-op never "
        "queues behind a resize). Latency = `started_at − created_at`.",
        "",
        "| TASKQ_CPU_WORKERS | resizes/s (mean ms each) | no-op p50 / p99 idle "
        "| with resizes | p50 ratio | p99 ratio | server process CPU idle / resizing |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in resize["runs"]:
        idle, busy = run["idle"], run["resizing"]
        lines.append(
            f"| {run['cpu_workers']} | {run['resizes_per_second']} "
            f"({run['resize_mean_ms']} ms) | {idle['p50_ms']} / {idle['p99_ms']} ms | "
            f"{busy['p50_ms']} / {busy['p99_ms']} ms | {run['p50_ratio']}× | "
            f"{run['p99_ratio']}× | {run['server_cpu_share_idle']} / "
            f"{run['server_cpu_share_resizing']} of a core |"
        )
    return [
        *lines,
        "",
        "Decoding, resizing and encoding run in the pool's processes, not on the event "
        "loop: the server process's own CPU (the loop, the uploads, the blob reads and "
        "writes) is the last column. With as many resizing processes as cores, the loop "
        "also competes with them for a core (the operating system's scheduler), which "
        "shows in the p99 rather than the p50; one process fewer than the cores leaves it "
        "one (the second row).",
        "",
    ]


def _export(export: dict[str, Any] | None) -> list[str]:
    if export is None:
        return []
    return [
        "## 11. data-export memory",
        "",
        f"`benchmarks/export_memory.py` (issue 15): {export['tasks']:,} tasks stored in "
        f"SQLite ({export['populate_s']} s), then one `data-export` to {export['format']} "
        f"streamed page by page into a directory blob store ({export['rows']:,} rows, "
        f"{export['bytes']:,} bytes, {export['export_s']} s) while a thread samples the "
        f"process's RSS every 10 ms: {export['rss_before_mib']} → {export['rss_peak_mib']} "
        f"MiB at most, **+{export['growth_mib']} MiB** (bound {BOUND_MIB} MiB); Python's own "
        f"allocations peaked at {export['python_allocations_peak_mib']} MiB (tracemalloc).",
        "",
    ]


def _flow(flow: dict[str, Any] | None) -> list[str]:
    if flow is None:
        return []
    lines = [
        "## 12. Flow control on a type without limits",
        "",
        f"`benchmarks/flow_overhead.py` (issue 17): {flow['tasks']:,} no-op tasks a round "
        f"through the real `TaskProcessor` on one SQLite file, {flow['slots']} slots, "
        f"rounds of each variant: {flow['rounds']}, in alternating order.",
        "",
        "| variant | tasks/s (median) | rounds | vs without |",
        "|---|---|---|---|",
    ]
    labels = {
        "none": "no flow control (`OpenGate`, before issue 17)",
        "gate": "flow control, type without limits (`FlowGate`)",
        "limited": "flow control, type with `max_concurrency`",
    }
    for variant, label in labels.items():
        row = flow["variants"][variant]
        rounds = ", ".join(f"{r:,}" for r in row["runs"])
        lines.append(
            f"| {label} | {row['tasks_per_second']:,} | {rounds} | {row['change_percent']:+}% |"
        )
    cost = flow["admission_us"]
    return [
        *lines,
        "",
        f"One admission of a task of a type without limits: {cost['gate']} µs "
        f"({cost['none']} µs without flow control). A limited type pays a read and two "
        "conditional writes of the task store per task: the last row.",
        "",
    ]


def _outside(outside: dict[str, Any] | None) -> list[str]:
    if outside is None:
        return []
    ours, theirs = outside["engine"], outside["original"]
    calls = sorted({*ours["calls_per_task"], *theirs["calls_per_task"]})
    lines = [
        "## 14. Outside check: the requests `taskq serve` makes on aws",
        "",
        f"`benchmarks/aws_outside.py` (issue 16): `taskq serve` (aws, shipped defaults) as "
        "a process whose AWS endpoint is a loopback counting proxy in front of the moto "
        f"server; {ours['tasks']} no-op tasks of 200 B posted one a request at "
        f"{ours['rate_per_s']}/s, `GET /metrics` {ours['metrics_reads']} times (every few "
        f"seconds); every request counted over {ours['counted_seconds']} s, until the "
        "queue is empty and a second more. The original loop's tasks are submitted at the "
        "same rate, its clients through the same kind of proxy. Charged alike: 1 WRU a "
        "plain write, 2 a transactional item, 1 RRU a read, "
        f"{INDEX_UNITS_PER_TASK} index units a task on both sides, SQS $0.40 per million "
        f"requests. Engine submit → start: p50 {ours['submit_to_start_p50_ms']} ms, p99 "
        f"{ours['submit_to_start_p99_ms']} ms.",
        "",
        "| call (per task) | engine | original |",
        "|---|---|---|",
        *(
            f"| {call} | {ours['calls_per_task'].get(call, 0)} | "
            f"{theirs['calls_per_task'].get(call, 0)} |"
            for call in calls
        ),
    ]
    for label, key in (
        ("SQS requests", "sqs_requests_per_task"),
        ("client WRU", "wru_per_task"),
        ("RRU", "rru_per_task"),
        ("$ per million tasks", "cost_per_million_tasks"),
    ):
        lines.append(f"| **{label}** | {ours[key]} | {theirs[key]} |")
    return [*lines, "", f"Engine ÷ original: **{outside['ratio']}×**.", ""]
