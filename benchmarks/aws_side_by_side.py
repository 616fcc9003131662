"""The aws engine and the original loop side by side on one moto server, as
``benchmarks.run`` runs them (same workers, producers, depth), at the payload sizes of
issue 16's cost targets: tasks/s, DynamoDB writes per task and dollars per million
tasks, engine ÷ original. A quicker check than ``make bench`` of one change to the
aws path:

    PYTHONPATH=$PWD python -m benchmarks.aws_side_by_side --tasks 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import aws_engine, original_loop
from benchmarks.common import moto_server
from benchmarks.run import AWS_DEPTH, AWS_PAYLOADS, AWS_PRODUCERS, AWS_WORKERS


def side_by_side(endpoint: str, tasks: int, payload_bytes: int) -> dict[str, Any]:
    shared: dict[str, Any] = {"workers": AWS_WORKERS, "producers": AWS_PRODUCERS}
    shared |= {"depth": AWS_DEPTH, "tasks": tasks}
    engine = asyncio.run(
        aws_engine.run(endpoint, per_table=tasks, payload_bytes=payload_bytes, **shared)
    )
    original = original_loop.run(endpoint, payload=aws_engine.payload_of(payload_bytes), **shared)
    keys = ("tasks_per_second", "dynamodb_write_requests_per_task", "dollars_per_million_tasks")
    figures = {
        f"{side}_{k}": run[k]
        for side, run in (("engine", engine), ("original", original))
        for k in keys
    }
    return {
        "payload_bytes": payload_bytes,
        **figures,
        "dynamodb_read_requests_per_task": engine["dynamodb_read_requests_per_task"],
        "engine_calls_per_task": {k: round(v / tasks, 3) for k, v in engine["calls"].items()},
        "cost_ratio": round(
            engine["dollars_per_million_tasks"] / original["dollars_per_million_tasks"], 3
        ),
        "speed_ratio": round(engine["tasks_per_second"] / original["tasks_per_second"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300, help="tasks per side and size")
    args = parser.parse_args()
    aws_engine.use_fake_credentials()
    with tempfile.TemporaryDirectory() as work, moto_server(Path(work)) as moto:
        for payload, _ in AWS_PAYLOADS:
            print(json.dumps(side_by_side(moto.url, args.tasks, payload)), flush=True)


if __name__ == "__main__":
    main()
