"""Scenario 5: poison messages against a real worker process.

An undecodable body and a message for a task id nobody stored are put straight on the
queue: the worker keeps running, the first ends in the dead-letter queue, the second is
acked. A task whose handler kills its worker process every time is re-run by each
restarted worker until its attempts are spent; then it is FAILED with the reason
recorded and its message is dead-lettered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from adapters import envelope
from adapters.clock import SystemClock
from adapters.sqlite import SqliteDatabase, SqliteTaskQueue
from tests.e2e.support import (
    MotoServer,
    ProcessGroup,
    RunLog,
    ScenarioResult,
    StatusWatch,
    aws_env,
    sqlite_env,
    submit_tasks,
    wait_for,
)

pytestmark = pytest.mark.e2e

UNDECODABLE = "{this is not an envelope"


def _send_raw_sqlite(db_path: Path, bodies: list[str]) -> None:
    async def send() -> None:
        clock = SystemClock()
        db = SqliteDatabase(str(db_path), clock=clock)
        try:
            queue = SqliteTaskQueue(db, clock, max_receive_count=20)
            for body in bodies:
                await queue.send_raw(body)
        finally:
            db.close()

    asyncio.run(send())


def run_poison(
    tmp_path: Path,
    env: dict[str, str],
    *,
    backend: str,
    send_raw: Any,
    max_restarts: int = 8,
) -> ScenarioResult:
    """``send_raw(bodies)`` puts message bodies on the backend's queue as they are."""
    env = {
        **env,
        "WORKER_COUNT": "5",
        "TASKQ_VISIBILITY_TIMEOUT": "2",
        "TASKQ_POLL_WAIT_SECONDS": "1",
    }
    run_log = RunLog(Path(env["TASKQ_TEST_RUN_LOG"]))
    with ProcessGroup(tmp_path, env) as procs:
        api = procs.start("api", wait=True)
        worker = procs.start("worker")
        with api.client() as client:
            send_raw([UNDECODABLE, envelope.encode(str(uuid.uuid4()))])

            def settled() -> bool:
                m = client.get("/metrics").json()
                in_queue = m["queue_depth"] + m["queue_in_flight"]
                return bool(m["dead_letter_queue_depth"] == 1 and in_queue == 0)

            wait_for(settled, timeout=20, what="poison dead-lettered, orphan acked")
            assert worker.process.poll() is None, "a poison message stopped the worker"
            key = uuid.uuid4().hex
            ids = submit_tasks(client, "sleepy", [{"key": key, "seconds": 0.1}])
            after = StatusWatch(client, ids)
            assert after.wait_all_final(timeout=20), procs.logs()
            assert after.count("COMPLETED") == 1, "the worker goes on after poison"

            # A handler that kills its worker every time.
            crash_key = uuid.uuid4().hex
            [crash_id] = submit_tasks(client, "crash", [{"key": crash_key}])
            crashes = 0
            started = time.monotonic()
            watch = StatusWatch(client, [crash_id])
            while not watch.all_final() and time.monotonic() - started < 60:
                watch.poll()
                if worker.process.poll() is not None:
                    assert worker.process.returncode != 0
                    crashes += 1
                    assert crashes <= max_restarts, f"still not FAILED after {crashes} crashes"
                    worker = procs.start("worker")
                time.sleep(0.2)
            took = time.monotonic() - started
            task = watch.latest[crash_id]
            metrics = client.get("/metrics").json()
        result = ScenarioResult(
            scenario="5. poison: bad body, unknown id, worker killer",
            backend=backend,
            tasks=4,
            lost=0 if task["status"] == "FAILED" else 1,
            stuck=0 if watch.all_final() else 1,
            duplicated_runs=0,
            recover_seconds=round(took, 1),
            double_completions=len(watch.violations),
            notes=f"worker killer: {crashes} crashes, {run_log.starts().get(crash_key, 0)} "
            f"runs, then FAILED; dead letters {metrics['dead_letter_queue_depth']}",
        )
        assert task["status"] == "FAILED", (task, procs.logs())
        assert "worker crashed or was killed" in str(task["error"]), task
        assert task["attempts"] == task["max_attempts"] == 3, task
        assert crashes == 3 and run_log.starts()[crash_key] == 3
        assert metrics["dead_letter_queue_depth"] == 2, metrics
        assert metrics["queue_depth"] + metrics["queue_in_flight"] == 0, metrics
        return result


def test_sqlite_poison_messages_are_dead_lettered_and_the_worker_survives(
    tmp_path: Path,
) -> None:
    env = sqlite_env(tmp_path)
    db_path = Path(env["TASKQ_SQLITE_PATH"])
    result = run_poison(
        tmp_path, env, backend="sqlite", send_raw=lambda bodies: _send_raw_sqlite(db_path, bodies)
    )
    result.check()


def send_raw_sqs(env: dict[str, str], bodies: list[str]) -> None:
    """Bodies straight onto the SQS queue, as any producer could put them."""
    sqs = boto3.session.Session().client(
        "sqs",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    url = sqs.get_queue_url(QueueName=env["TASKQ_SQS_QUEUE_NAME"])["QueueUrl"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)


@pytest.mark.aws
def test_aws_poison_messages_are_dead_lettered_and_the_worker_survives(tmp_path: Path) -> None:
    with MotoServer(tmp_path) as moto:
        env = aws_env(tmp_path, moto.url, visibility=2)
        result = run_poison(
            tmp_path, env, backend="aws (moto)", send_raw=lambda b: send_raw_sqs(env, b)
        )
    result.check()
