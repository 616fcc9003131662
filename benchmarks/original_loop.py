"""Benchmark 3: the original Go service's algorithm, with boto3, for comparison only.

What the original does per task: PutItem (PENDING) and SendMessage on submit; each of
WORKER_COUNT workers (goroutines there, threads here) loops ReceiveMessage (up to 10),
then handles the batch's messages one after another: UpdateItem PROCESSING, run the
handler, UpdateItem COMPLETED, DeleteMessage. The item holds the payload, and the
message carries it too, as the original's do. The table is created plain; its status
index (the original lists and counts by status through one) is charged as assumed:
``ASSUMED_STATUS_INDEX``, keys only, the projection most favourable to it. Submissions
are held to at most ``depth`` unfinished tasks, as for the
engine, so moto's queue stays equally short in both runs.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from benchmarks.aws_counting import RequestCounter
from benchmarks.aws_units import Index

ASSUMED_STATUS_INDEX = Index("status-index", "status", "created_at", "KEYS_ONLY")
"""The original's status index as charged: keyed by status and creation time, keys only
(an index write is then 1 unit whatever the payload, and a status change 2)."""
RECEIVE_WAIT_SECONDS = 2
"""The original long-polls 20 s; 2 s here only bounds how long a stop takes (an empty
queue is never waited on while tasks are outstanding)."""


def _clients(endpoint: str, pool: int) -> tuple[Any, Any]:
    config = Config(
        region_name="us-east-1",
        max_pool_connections=pool,
        read_timeout=RECEIVE_WAIT_SECONDS + 30,
        retries={"mode": "standard", "total_max_attempts": 5},
    )
    session = boto3.session.Session()
    return (
        session.client("sqs", endpoint_url=endpoint, config=config),
        session.client("dynamodb", endpoint_url=endpoint, config=config),
    )


def run(
    endpoint: str,
    *,
    tasks: int,
    workers: int,
    producers: int,
    depth: int,
    payload: Any = None,
    interval: float = 0.0,
) -> dict[str, Any]:
    """``interval``: submission n is made no sooner than n * interval seconds in (with one
    producer, tasks posted one at a time at a steady rate)."""
    sqs, dynamodb = _clients(endpoint, workers + producers + 4)
    name = f"original-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    counter = RequestCounter(indexes={name: [ASSUMED_STATUS_INDEX]})
    counter.attach(sqs)
    counter.attach(dynamodb)

    lock = threading.Lock()
    submitted = 0
    completed = 0
    stop = threading.Event()
    errors: list[BaseException] = []
    began = time.perf_counter()

    def now() -> str:
        return datetime.now(UTC).isoformat()

    def produce() -> None:
        nonlocal submitted
        while True:
            with lock:
                if submitted >= tasks:
                    return
                busy = submitted - completed >= depth
                if not busy:
                    submitted += 1
                    due = began + (submitted - 1) * interval
            if busy:
                time.sleep(0.002)
                continue
            time.sleep(max(0.0, due - time.perf_counter()))
            task_id = str(uuid.uuid4())
            dynamodb.put_item(
                TableName=name,
                Item={
                    "id": {"S": task_id},
                    "type": {"S": "noop"},
                    "payload": {"S": json.dumps(payload)},
                    "status": {"S": "PENDING"},
                    "created_at": {"S": now()},
                },
            )
            body = json.dumps({"id": task_id, "type": "noop", "payload": payload})
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    def set_status(task_id: str, status: str) -> None:
        dynamodb.update_item(
            TableName=name,
            Key={"id": {"S": task_id}},
            UpdateExpression="SET #s = :s, updated_at = :t",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}, ":t": {"S": now()}},
        )

    def work() -> None:
        nonlocal completed
        try:
            while not stop.is_set():
                messages = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=RECEIVE_WAIT_SECONDS
                ).get("Messages", [])
                for message in messages:  # one after another, as the original does
                    task_id = json.loads(message["Body"])["id"]
                    set_status(task_id, "PROCESSING")
                    set_status(task_id, "COMPLETED")  # the no-op handler ran in between
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    with lock:
                        completed += 1
        except BaseException as error:  # surfaced by run()
            errors.append(error)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    started = began = time.perf_counter()
    for thread in threads:
        thread.start()
    producing = [threading.Thread(target=produce, daemon=True) for _ in range(producers)]
    for thread in producing:
        thread.start()
    while True:
        with lock:
            done = completed
        if done >= tasks or errors:
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    stop.set()
    for thread in [*producing, *threads]:
        thread.join(timeout=RECEIVE_WAIT_SECONDS + 10)
    if errors:
        raise RuntimeError(f"the original loop failed: {errors[0]!r}")
    figures = {
        "assumed_index": "status-index (status, created_at), KEYS_ONLY",
        "workers": workers,
        "depth": depth,
        "seconds": round(elapsed, 3),
        "tasks_per_second": round(tasks / elapsed, 1),
        **counter.summary(tasks),
    }
    sqs.delete_queue(QueueUrl=queue_url)
    dynamodb.delete_table(TableName=name)
    return figures
