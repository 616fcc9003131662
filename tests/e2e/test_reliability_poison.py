"""Scenarios 5 and 11: poison messages and poison tasks against real worker processes.

5. An undecodable body and a message for a task id nobody stored are put straight on the
   queue: the worker keeps running, the first ends in the dead-letter queue, the second
   is acked. A task whose handler kills its worker process kills it once: the restarted
   worker runs its next attempts isolated, in a child process, whose deaths are failed
   attempts; at max_attempts it is FAILED with the crash recorded and dead-lettered.
11. Poison tasks that SIGKILL their process among many healthy short tasks on two
   workers: no healthy task ends FAILED, every poison task does, with the crash error.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from adapters import envelope
from adapters.clock import SystemClock
from adapters.sqlite import SqliteDatabase, SqliteTaskQueue
from tests.support.processes import MotoServer, ProcessGroup, aws_env, on_moto, sqlite_env
from tests.support.scenarios import (
    RunLog,
    ScenarioResult,
    StatusWatch,
    duplicated_runs,
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
        "TASKQ_ORPHAN_GRACE_SECONDS": "2",  # the orphan is kept this long, then acked
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
        assert "crashed its worker process (exit code 1)" in str(task["error"]), task
        assert task["attempts"] == task["max_attempts"] == 3, task
        assert task["isolated"] is True, task
        # One worker crash (the first attempt, not counted); then three isolated attempts.
        assert crashes == 1 and run_log.starts()[crash_key] == 4, (crashes, run_log.starts())
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


CRASH_ERROR = "crashed its worker process"


def run_poison_neighbours(
    tmp_path: Path,
    env: dict[str, str],
    *,
    backend: str,
    healthy: int = 60,
    poison: int = 2,
    workers: int = 2,
    concurrency: int = 5,
    timeout: float = 90.0,
) -> ScenarioResult:
    """``poison`` tasks that SIGKILL their process, shuffled among ``healthy`` tasks of
    100-300 ms, on ``workers`` worker processes (restarted when they die)."""
    env = {
        **env,
        "WORKER_COUNT": str(concurrency),
        "TASKQ_VISIBILITY_TIMEOUT": "2",
        "TASKQ_POLL_WAIT_SECONDS": "1",
        "TASKQ_RETRY_BASE_SECONDS": "0.5",
    }
    rng = random.Random(11)
    kinds = ["sleepy"] * healthy + ["sigkill"] * poison
    rng.shuffle(kinds)
    run_log = RunLog(Path(env["TASKQ_TEST_RUN_LOG"]))
    with ProcessGroup(tmp_path, env) as procs:
        api = procs.start("api", wait=True)
        with api.client() as client:
            ids: dict[str, list[str]] = {"sleepy": [], "sigkill": []}
            keys: list[str] = []
            for kind in kinds:
                keys.append(uuid.uuid4().hex)
                payload = {"key": keys[-1], "seconds": round(rng.uniform(0.1, 0.3), 3)}
                ids[kind] += submit_tasks(client, kind, [payload])
            started = time.monotonic()
            running = [procs.start("worker") for _ in range(workers)]
            crashes = 0
            watch = StatusWatch(client, ids["sleepy"] + ids["sigkill"])
            while not watch.all_final() and time.monotonic() - started < timeout:
                for n, worker in enumerate(running):
                    if worker.process.poll() is not None:
                        crashes += 1
                        running[n] = procs.start("worker")
                time.sleep(0.5)
                watch.poll()
            took = time.monotonic() - started
            watch.poll()
            metrics = client.get("/metrics").json()
        final = watch.latest
        healthy_failed = [i for i in ids["sleepy"] if final[i]["status"] != "COMPLETED"]
        poison_wrong = {
            i: (final[i]["status"], final[i]["error"])
            for i in ids["sigkill"]
            if final[i]["status"] != "FAILED" or CRASH_ERROR not in str(final[i]["error"])
        }
        isolated = sum(1 for i in ids["sleepy"] if final[i]["isolated"])
        result = ScenarioResult(
            scenario="11. poison tasks among healthy neighbours",
            backend=backend,
            tasks=healthy + poison,
            lost=len(watch.missing) + len(healthy_failed) + len(poison_wrong),
            stuck=len(watch.not_final()),
            duplicated_runs=duplicated_runs(run_log, keys),
            recover_seconds=round(took, 1) if watch.all_final() else None,
            double_completions=len(watch.violations),
            healthy_failed=len(healthy_failed),
            notes=f"{poison} SIGKILL tasks among {healthy} of 100-300 ms on {workers} workers "
            f"x {concurrency}: {crashes} worker crashes, {isolated} healthy tasks ran "
            f"isolated after one, 0 healthy FAILED is required",
        )
        assert watch.all_final(), (watch.not_final(), procs.logs())
        assert not healthy_failed, [final[i] for i in healthy_failed]
        assert not poison_wrong, poison_wrong
        assert crashes <= poison, "a poison task crashed a worker more than once"
        assert metrics["queue_depth"] + metrics["queue_in_flight"] == 0, metrics
        return result


def test_sqlite_a_poison_task_fails_alone_and_its_neighbours_complete(tmp_path: Path) -> None:
    result = run_poison_neighbours(tmp_path, sqlite_env(tmp_path), backend="sqlite")
    print(result)
    result.check()


@pytest.mark.aws
def test_aws_a_poison_task_fails_alone_and_its_neighbours_complete(tmp_path: Path) -> None:
    result = on_moto(
        tmp_path,
        lambda env: run_poison_neighbours(tmp_path, env, backend="aws (moto)"),
        visibility=2,
    )
    print(result)
    result.check()
