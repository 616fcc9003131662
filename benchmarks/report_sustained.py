"""Section 9 of docs/benchmarks.md (``benchmarks/sustained.py``, issue 18): sustained
load beside a trivial endpoint, and its rows in the table of figures against targets."""

from __future__ import annotations

from typing import Any

from benchmarks.common import mark

ACCEPTED_OVER_TRIVIAL = {"memory": 0.5, "sqlite": 0.25}
"""Issue 18: requests/s accepted by ``taskq serve`` ÷ the trivial endpoint's."""
COMPLETED_OVER_ACCEPTED = 0.9
"""Issue 18: tasks completed while the load lasts ÷ those accepted."""
P99_OVER_P50 = 10
"""Issue 18: POST p99 at most this many times its p50 (memory)."""
SPLIT_PREFIX = "taskq api + taskq worker"


def target_rows(s: dict[str, Any] | None) -> list[str]:
    """The issue's ratios for ``taskq serve`` on memory and sqlite, and the split runs'
    figures (reported: the issue sets them no target)."""
    if s is None:
        return []
    runs = {row["run"]: row for row in s["runs"]}
    trivial = runs["trivial Starlette endpoint"]["accepted_per_second"]
    rows = []
    for backend, least in ACCEPTED_OVER_TRIVIAL.items():
        row = runs[f"taskq serve, {backend}"]
        ratio, completed = row["accepted_over_trivial"], row.get("completed_over_accepted", 0.0)
        rows.append(
            f"| 9 | sustained load, `taskq serve` ({backend}): requests/s accepted ÷ the "
            f"trivial endpoint's | {ratio}× ({row['accepted_per_second']:,} vs {trivial:,}) | "
            f"≥ {least}× | {mark(ratio >= least)} |"
        )
        rows.append(
            f"| 9 | sustained load, `taskq serve` ({backend}): completed while the load "
            f"lasted ÷ accepted | {completed} | ≥ {COMPLETED_OVER_ACCEPTED} | "
            f"{mark(completed >= COMPLETED_OVER_ACCEPTED)} |"
        )
    memory = runs["taskq serve, memory"]
    rows.append(
        f"| 9 | sustained load, `taskq serve` (memory): POST p99 ÷ p50 | "
        f"{memory['p99_over_p50']} | ≤ {P99_OVER_P50} | "
        f"{mark(memory['p99_over_p50'] <= P99_OVER_P50)} |"
    )
    for name, row in runs.items():
        if name.startswith(SPLIT_PREFIX):
            rows.append(
                f"| 9 | sustained load, `{name}`: accepted/s, completed while the load lasted "
                f"÷ accepted | {row['accepted_per_second']:,} ({row['accepted_over_trivial']}× "
                f"the trivial endpoint), {row['completed_over_accepted']} | reported (issue 18) "
                "| reported |"
            )
    return rows


def section(s: dict[str, Any] | None) -> list[str]:
    """Section 9, in runs that have it."""
    if s is None:
        return []
    lines = [
        "## 9. Sustained load, beside a trivial endpoint",
        "",
        f"The same load generator ({s['connections']} keep-alive connections posting no-op "
        f"tasks for {s['load_seconds']:g} s) against a trivial Starlette POST endpoint, "
        "`taskq serve` (memory, sqlite; shipped defaults, `WORKER_COUNT=50`) and `taskq api` "
        "+ `taskq worker` x2 (and x1) on one sqlite file. Completed during the load: "
        "`completed_tasks` the moment the load stops less its value as it starts. A 503 "
        "(back-pressure) is not accepted. CPU per request: the server's CPU time over the "
        "requests accepted.",
        "",
        "| run | accepted/s | × trivial | completed during load ÷ accepted | POST p50 / p99 "
        "| p99 ÷ p50 | backlog at end | server CPU | CPU per request |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in s["runs"]:
        lines.append(
            f"| {row['run']} | {row['accepted_per_second']:,} | "
            f"{row.get('accepted_over_trivial', 1.0)} | "
            f"{row.get('completed_over_accepted', '')} | {row['post_p50_ms']} / "
            f"{row['post_p99_ms']} ms | {row['p99_over_p50']} | {row.get('backlog_at_end', '')} | "
            f"{row['server_cpu_share']} | {row.get('server_cpu_us_per_accepted', '')} µs |"
        )
    return [*lines, ""]
