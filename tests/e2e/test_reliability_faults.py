"""Scenario 6: transient AWS faults during a run of 200 tasks.

The engine runs in this process (botocore event hooks are per client) against a moto
server process. A ``before-send`` hook on the container's own SQS and DynamoDB clients
answers a share of the requests with throttling, a 500 or a 503, or drops the
connection before the request leaves. For SQS a share of requests is also sent and
then "loses" its answer: the server acted, the client sees a dropped connection and
retries (a duplicate send, a second delete). DynamoDB is not given that fault: botocore
makes a retried TransactWriteItems idempotent with a ClientRequestToken, which moto
ignores, so on moto it would test moto.

Every task completes, each is recorded once, and the faults were retried (botocore's
standard mode: exponential backoff with jitter, ``aws_max_attempts`` in all).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ConnectionClosedError

from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.errors import InfrastructureError
from domain.models import TaskStatus
from domain.services import SubmitRequest
from entrypoints.runtime import build_worker, maybe_await
from tests.support.aws import json_error_response
from tests.support.processes import FAKE_AWS_ENV, MotoServer, aws_env
from tests.support.scenarios import RunLog, ScenarioResult, duplicated_runs

pytestmark = [pytest.mark.e2e, pytest.mark.aws]

FAULTS = ("throttle", "500", "503", "drop")
FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


class FaultInjector:
    """A ``before-send`` hook: fails ``rate`` of the requests, at random but seeded."""

    def __init__(self, rate: float, seed: int, *, lose_answers: bool) -> None:
        self.rate = rate
        self.rng = random.Random(seed)
        self.lose_answers = lose_answers
        self.lock = threading.Lock()
        self.requests = 0
        self.injected: dict[str, int] = dict.fromkeys((*FAULTS, "answer lost"), 0)

    def __call__(self, request: Any, **_: Any) -> Any:
        with self.lock:
            self.requests += 1
            if self.rng.random() >= self.rate:
                return None
            kinds = (*FAULTS, "answer lost") if self.lose_answers else FAULTS
            kind = self.rng.choice(kinds)
            self.injected[kind] += 1
        if kind == "throttle":
            return json_error_response(400, "ThrottlingException", "Rate exceeded (injected)")
        if kind in ("500", "503"):
            return json_error_response(int(kind), "InternalFailure", "injected server error")
        if kind == "answer lost":
            httpx.post(
                request.url, content=request.body, headers=dict(request.headers.items()), timeout=30
            )
        raise ConnectionClosedError(endpoint_url=request.url)

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())


def run_transient_faults(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    tasks: int = 200,
    rate: float = 0.1,
    timeout: float = 120,
) -> tuple[ScenarioResult, dict[str, Any]]:
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    run_log_path = tmp_path / "runs.log"
    monkeypatch.setenv("TASKQ_TEST_RUN_LOG", str(run_log_path))
    with MotoServer(tmp_path) as moto:
        env = aws_env(tmp_path, moto.url, visibility=10)
        settings = Settings(
            backend="aws",
            aws_endpoint_url=moto.url,
            sqs_queue_name=env["TASKQ_SQS_QUEUE_NAME"],
            dynamodb_table=env["DYNAMODB_TABLE"],
            handlers="tests.e2e.reliability_handlers",
            worker_count=20,
            visibility_timeout=10,
            poll_wait_seconds=1,
            aws_max_attempts=8,
            aws_timeout_seconds=10,
            reconcile_interval_seconds=1,
            reconcile_stale_after_seconds=5,
        )
        return asyncio.run(_run(settings, RunLog(run_log_path), tasks, rate, timeout))


async def _run(
    settings: Settings, run_log: RunLog, tasks: int, rate: float, timeout: float
) -> tuple[ScenarioResult, dict[str, Any]]:
    container = build_container(settings)
    await maybe_await(container.init_resources())
    sqs_faults = FaultInjector(rate, seed=6, lose_answers=True)
    dynamodb_faults = FaultInjector(rate, seed=7, lose_answers=False)
    container.aws_sqs().meta.events.register("before-send.sqs.*", sqs_faults)
    container.aws_sqs_poll().meta.events.register("before-send.sqs.*", sqs_faults)
    container.aws_dynamodb().meta.events.register("before-send.dynamodb.*", dynamodb_faults)
    stop = asyncio.Event()
    worker = build_worker(container)
    running = asyncio.create_task(worker.run(stop))
    try:
        service = container.task_service()
        repository = container.repository()
        keys = [uuid.uuid4().hex for _ in range(tasks)]
        ids: list[str] = []
        submit_errors = 0
        started = time.monotonic()
        slots = asyncio.Semaphore(20)  # twenty clients submitting at once

        async def submit(key: str) -> None:
            nonlocal submit_errors
            request = SubmitRequest(type="sleepy", payload={"key": key, "seconds": 0.01})
            async with slots:
                try:
                    ids.append((await service.submit(request)).id)
                except InfrastructureError:
                    # The API's 503: the client would retry. Nothing was stored; a message
                    # that went out finds no task and the worker drops it after its grace.
                    submit_errors += 1

        await asyncio.gather(*(submit(key) for key in keys))
        # Poll the counters (cheap), then read every task once.
        while time.monotonic() - started < timeout:
            counts = await _counts(repository)
            if sum(n for s, n in counts.items() if s in FINAL) >= len(ids):
                break
            await asyncio.sleep(0.5)
        finals: dict[str, Any] = {}
        for task_id in ids:
            for _ in range(5):
                try:
                    task = await repository.get(task_id)
                except InfrastructureError:
                    continue
                if task.status.is_final:
                    finals[task_id] = task
                break
        took = time.monotonic() - started
        await asyncio.sleep(1)  # late duplicate deliveries settle
        counts = await _counts(repository)
    finally:
        stop.set()
        await running
        await maybe_await(container.shutdown_resources())
    submitted_keys = [t.payload["key"] for t in finals.values()]
    completed = [t for t in finals.values() if t.status is TaskStatus.COMPLETED]
    stats = {
        "sqs requests": sqs_faults.requests,
        "sqs faults": sqs_faults.injected,
        "dynamodb requests": dynamodb_faults.requests,
        "dynamodb faults": dynamodb_faults.injected,
        "submit errors (503)": submit_errors,
        "outcomes": {k.value: v for k, v in worker.processor.outcomes.items() if v},
        "counts": counts,
    }
    result = ScenarioResult(
        scenario=f"6. transient AWS faults ({rate:.0%} of requests)",
        backend="aws (moto)",
        tasks=len(ids),
        lost=len(ids) - len(completed) - (len(ids) - len(finals)),
        stuck=len(ids) - len(finals),
        duplicated_runs=duplicated_runs(run_log, submitted_keys),
        recover_seconds=round(took, 1),
        double_completions=counts.get("COMPLETED", 0) - len(completed),
        notes=f"{sqs_faults.total_injected + dynamodb_faults.total_injected} faults injected "
        f"in {sqs_faults.requests + dynamodb_faults.requests} requests",
    )
    return result, stats


async def _counts(repository: Any) -> dict[str, int]:
    for _ in range(5):
        try:
            counts = await repository.count_by_status()
            return {status.value: n for status, n in counts.items() if n}
        except InfrastructureError:
            await asyncio.sleep(0.2)
    return {}


def test_aws_transient_faults_all_tasks_complete_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, stats = run_transient_faults(tmp_path, monkeypatch)
    print(result, stats)
    result.check()
    assert result.tasks + stats["submit errors (503)"] == 200
    assert result.tasks >= 190, stats
    assert stats["counts"].get("COMPLETED") == result.tasks, stats  # one record per task
    for kind in FAULTS:
        assert stats["sqs faults"][kind] > 0 and stats["dynamodb faults"][kind] > 0, stats
    assert stats["sqs faults"]["answer lost"] > 0, stats
