"""Benchmark 14: issue 16's outside check. ``taskq serve`` (aws backend, against the
moto server) runs as a real process behind a loopback counting proxy
(``benchmarks/counting_proxy.py``), which counts every SQS, DynamoDB and Streams request
the process makes while ``tasks`` no-op tasks of ``payload_bytes`` are posted one at a
time at ``rate`` per second, with ``GET /metrics`` every ``metrics_every`` seconds.
Counting starts before the first POST and ends once the queue is empty (every task done
and acked, read from moto directly, uncounted) plus a second for the last acks.

The original loop (``benchmarks/original_loop.py``) is counted the same way: its clients
pointed at the same kind of proxy, its tasks submitted one at a time at the same rate.
Both are charged by the simple model (1 WRU a plain write, 2 a transactional item, 1 RRU
a read, 5 index units a task on both sides, SQS $0.40 per million requests).

    python -m benchmarks.aws_outside            # starts its own moto server
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import boto3
import httpx

from benchmarks import original_loop
from benchmarks.aws_engine import FAKE_CREDENTIALS, payload_of, use_fake_credentials
from benchmarks.common import moto_server, percentile, serve
from benchmarks.counting_proxy import CountingProxy

TASKS = 200
RATE = 20.0
PAYLOAD_BYTES = 200
METRICS_EVERY = 3.0
POSTING_CLIENTS = 4


def _queue_empty(sqs: Any, queue_url: str) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)
    return all(int(attributes["Attributes"][name]) == 0 for name in names)


def _post_paced(
    http: httpx.Client, tasks: int, rate: float, payload: Any, metrics_every: float
) -> tuple[list[str], int]:
    """POST ``tasks``, one task a request, the n-th due n / ``rate`` seconds in (a few
    clients at once, as independent callers would, so a slow answer does not hold the
    next one back), reading /metrics meanwhile; the ids and how many /metrics reads."""
    started = time.monotonic()

    def post(i: int) -> str:
        time.sleep(max(0.0, started + i / rate - time.monotonic()))
        answer = http.post("/tasks", json={"type": "noop", "payload": payload})
        answer.raise_for_status()
        return str(answer.json()["id"])

    reads = 0
    with ThreadPoolExecutor(POSTING_CLIENTS) as pool:
        posted = [pool.submit(post, i) for i in range(tasks)]
        while not all(future.done() for future in posted):
            http.get("/metrics", headers={"accept": "application/json"}).raise_for_status()
            reads += 1
            wait(posted, timeout=metrics_every)
    return [future.result() for future in posted], reads


def run_engine(
    moto_url: str,
    work: Path,
    *,
    tasks: int = TASKS,
    rate: float = RATE,
    payload_bytes: int = PAYLOAD_BYTES,
    metrics_every: float = METRICS_EVERY,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    name = f"outside-{uuid.uuid4().hex[:8]}"
    payload = payload_of(payload_bytes)
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1")
    with CountingProxy(moto_url) as proxy:
        server_env = {
            **FAKE_CREDENTIALS,
            "TASKQ_BACKEND": "aws",
            "AWS_ENDPOINT_URL": proxy.url,
            "TASKQ_AUTO_PROVISION": "true",
            "TASKQ_SQS_QUEUE_NAME": name,
            "DYNAMODB_TABLE": name,
            **(env or {}),
        }
        with serve(work, server_env) as server, httpx.Client(base_url=server.url) as http:
            queue_url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            before = proxy.snapshot()
            started = time.monotonic()
            ids, reads = _post_paced(http, tasks, rate, payload, metrics_every)
            posted = time.monotonic() - started
            next_read = time.monotonic() + metrics_every
            while not _queue_empty(sqs, queue_url):
                if time.monotonic() >= next_read:
                    http.get("/metrics", headers={"accept": "application/json"})
                    reads += 1
                    next_read += metrics_every
                time.sleep(0.2)
            time.sleep(1.0)  # acks still lingering are counted too
            counted = proxy.snapshot().since(before)
            elapsed = time.monotonic() - started
            latencies = []
            for task_id in ids:  # after counting: these reads are not charged
                task = http.get(f"/tasks/{task_id}").json()
                if task["status"] != "COMPLETED":
                    raise RuntimeError(f"task {task_id} is {task['status']}:\n{server.log()}")
                latencies.append(_seconds(task["started_at"]) - _seconds(task["created_at"]))
    return {
        "side": "engine (taskq serve)",
        "env": env or {},
        "rate_per_s": round(tasks / posted, 1),
        "counted_seconds": round(elapsed, 1),
        "metrics_reads": reads,
        "submit_to_start_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "submit_to_start_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        **counted.summary(tasks),
    }


def _seconds(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def run_original(
    moto_url: str,
    *,
    tasks: int = TASKS,
    rate: float = RATE,
    payload_bytes: int = PAYLOAD_BYTES,
    workers: int = 5,
) -> dict[str, Any]:
    """The original loop, its tasks posted one at a time at ``rate``, counted alike."""
    use_fake_credentials()
    with CountingProxy(moto_url) as proxy:
        before = proxy.snapshot()
        started = time.monotonic()
        original_loop.run(
            proxy.url,
            tasks=tasks,
            workers=workers,
            producers=1,
            depth=tasks,
            payload=payload_of(payload_bytes),
            interval=1 / rate,
        )
        counted = proxy.snapshot().since(before)
    # Its table and queue are created and deleted inside: control plane, not per task.
    for call in ("dynamodb.CreateTable", "dynamodb.DeleteTable", "sqs.CreateQueue"):
        counted.calls.pop(call, None)
    counted.calls.pop("sqs.DeleteQueue", None)
    return {
        "side": "original loop",
        "workers": workers,
        "counted_seconds": round(time.monotonic() - started, 1),
        **counted.summary(tasks),
    }


def run(moto_url: str, work: Path, **engine: Any) -> dict[str, Any]:
    """The engine with its defaults, then the original; the ratio of their costs."""
    use_fake_credentials()
    tasks = engine.get("tasks", TASKS)
    ours = run_engine(moto_url, work, **engine)
    theirs = run_original(moto_url, tasks=tasks, rate=engine.get("rate", RATE))
    return {
        "engine": ours,
        "original": theirs,
        "ratio": round(ours["cost_per_million_tasks"] / theirs["cost_per_million_tasks"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=TASKS)
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument(
        "--pace", type=float, action="append", help="TASKQ_RECEIVE_PACE_SECONDS values to try"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, moto_server(Path(directory)) as moto:
        result = run(moto.url, Path(directory), tasks=args.tasks, rate=args.rate)
        for pace in args.pace or []:
            result[f"engine_pace_{pace}"] = run_engine(
                moto.url,
                Path(directory),
                tasks=args.tasks,
                rate=args.rate,
                env={"TASKQ_RECEIVE_PACE_SECONDS": str(pace)},
            )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
