"""The aws part of docs/benchmarks.md: what a task costs, engine against the original,
at a small and a large payload, with the table of every call per task."""

from __future__ import annotations

from typing import Any

from benchmarks.aws_counting import (
    RRU_PER_MILLION,
    S3_READS_PER_MILLION,
    S3_WRITES_PER_MILLION,
    SQS_PER_MILLION,
    STREAM_READS_PER_MILLION,
    WRU_PER_MILLION,
)
from benchmarks.common import mark

COST_TARGETS = {200: 0.9, 4096: 0.6}
"""Issue 16: engine ÷ original dollars per million tasks, at most, by payload bytes."""
RUN_KEYS = {200: ("aws_engine", "original"), 4096: ("aws_engine_4k", "original_4k")}
"""Where ``benchmarks.run`` keeps the runs of each payload size."""


def cost_ratios(results: dict[str, Any]) -> dict[int, float]:
    """Engine ÷ original dollars per million tasks, by payload size, for the sizes run."""
    ratios = {}
    for size, (engine_key, original_key) in RUN_KEYS.items():
        engine, original = results.get(engine_key), results.get(original_key)
        if engine is None or original is None or "dollars_per_million_tasks" not in engine:
            continue
        ratios[size] = round(
            engine["dollars_per_million_tasks"] / original["dollars_per_million_tasks"], 3
        )
    return ratios


def target_rows(results: dict[str, Any]) -> list[str]:
    """The rows of the figures-against-targets table."""
    rows = []
    for size, ratio in cost_ratios(results).items():
        engine_key, original_key = RUN_KEYS[size]
        engine, original = results[engine_key], results[original_key]
        target = COST_TARGETS[size]
        rows.append(
            f"| 2 | $ per million tasks, engine ÷ original, {size:,} B payload | {ratio}× "
            f"(${engine['dollars_per_million_tasks']} vs "
            f"${original['dollars_per_million_tasks']}) | ≤ {target} | "
            f"{mark(ratio <= target)} |"
        )
    return rows


def _calls_table(engine: dict[str, Any], original: dict[str, Any]) -> list[str]:
    lines = [
        "| side | call | per task | WRU | index units | RRU | billed requests | $ per million |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for side, run in (("engine", engine), ("original", original)):
        for row in run["table"]:
            lines.append(
                f"| {side} | `{row['call']}` | {row['per_task']} | {row['wru']} | "
                f"{row['index_units']} | {row['rru']} | {row['billed_requests']} | "
                f"{row['dollars_per_million']} |"
            )
        lines.append(
            f"| {side} | **all** | | {run['wru_per_task']} | {run['index_units_per_task']} | "
            f"{run['rru_per_task']} | SQS {run['sqs_requests_per_task']}, streams "
            f"{run['stream_reads_per_task']}, S3 {run['s3_requests_per_task']} | "
            f"**{run['dollars_per_million_tasks']}** |"
        )
    return lines


def cost_section(results: dict[str, Any]) -> list[str]:
    """``## 2b. What a task costs on AWS``: the method, then one table per payload size."""
    ratios = cost_ratios(results)
    if not ratios:
        return []
    original = results["original"]
    lines = [
        "## 2b. What a task costs on AWS",
        "",
        "Every request of every client is counted with botocore event hooks "
        "(`benchmarks/aws_counting.py`): the engine's SQS client and its long-poll client, "
        "its DynamoDB client, the DynamoDB Streams client of the status counts' "
        "aggregator, and S3 when used; the original's SQS and DynamoDB clients. Each "
        "request is charged by DynamoDB's rules applied to the items themselves "
        "(`benchmarks/aws_units.py`): a write 1 WRU per started KB, an update or a "
        "replacing put by the larger of the item's old and new size, a failed conditional "
        "write by the item as it stands, a transactional item twice; index writes 1 unit "
        "per KB of index item written and 1 per index item deleted (so 2 when its key "
        "changes), none when nothing the index holds changes; reads 1 RRU per started "
        "4 KB, half when eventually consistent. Fixed traffic is in the figures as it "
        "happened during the run: worker heartbeats and registry, the aggregator's "
        "GetRecords and checkpoint writes, and a `/metrics` read every "
        f"{results.get('aws_metrics_every_s', 5):g} s (`TaskService.metrics`, as the "
        "route does); the original's metrics queries are left out (favourable to it).",
        "",
        f"Prices: SQS ${SQS_PER_MILLION} per million requests (each 64 KB chunk of a "
        f"message one); DynamoDB ${WRU_PER_MILLION} per million WRU, ${RRU_PER_MILLION} per "
        f"million RRU; DynamoDB Streams ${STREAM_READS_PER_MILLION} per million GetRecords; "
        f"S3 ${S3_WRITES_PER_MILLION} per million PUT/LIST, ${S3_READS_PER_MILLION} per "
        "million GET/HEAD.",
        "",
        "The original's table is charged with the status index it lists and counts by, "
        f"assumed to be `{original.get('assumed_index', 'status-index, KEYS_ONLY')}`: keys "
        "only is the projection most favourable to it (an index write is then 1 unit "
        "whatever the item's size). The engine's `gsi1` projects all attributes; its "
        "state item stays under 1 KB, so that costs it nothing more. Payloads are random "
        "base64 text (`payload_of`: barely compressible).",
        "",
    ]
    for size, ratio in ratios.items():
        engine_key, original_key = RUN_KEYS[size]
        engine, orig = results[engine_key], results[original_key]
        lines += [
            f"### {size:,} B payload: {ratio}× (target ≤ {COST_TARGETS[size]}, "
            f"{mark(ratio <= COST_TARGETS[size])})",
            "",
            f"Engine {engine['tasks']:,} tasks at {engine['tasks_per_second']} tasks/s, "
            f"original {orig['tasks']:,} at {orig['tasks_per_second']} tasks/s "
            "(how many sends, acks and receives share a batch depends on the rate).",
            "",
            *_calls_table(engine, orig),
            "",
        ]
    return lines
