"""Scenario 7: the AWS endpoint goes away and comes back, ``taskq serve`` stays up.

While the endpoint refuses connections, and then while it accepts them but never
answers, ``POST /tasks`` is a quick 503 (bounded by ``aws_timeout_seconds`` and
``aws_max_attempts``), ``/health`` stays 200 and ``/ready`` is 503 naming the failing
dependencies. When the endpoint returns on the same port, work resumes with no restart.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Blackhole, MotoServer, ProcessGroup, aws_env
from tests.support.scenarios import StatusWatch, submit_tasks, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.aws]

SUBMIT_BOUND = 8.0
"""Seconds a 503 may take: 2 attempts of a 1 s timeout, the backoff, and slack."""


def _assert_degraded(client: httpx.Client, phase: str) -> float:
    started = time.monotonic()
    response = client.post("/tasks", json={"type": "sleepy", "payload": {"key": "x"}})
    took = time.monotonic() - started
    assert response.status_code == 503, (phase, response.text)
    assert response.json().get("error"), response.text
    assert took < SUBMIT_BOUND, f"{phase}: the 503 took {took:.1f} s"
    assert client.get("/health").status_code == 200, phase
    ready = client.get("/ready")
    assert ready.status_code == 503, (phase, ready.text)
    body = ready.json()
    assert body["checks"]["repository"] != "ok" and body["checks"]["queue"] != "ok", body
    assert "repository" in body["error"] and "queue" in body["error"], body
    return took


def test_aws_endpoint_down_is_503_fast_and_work_resumes_without_restart(
    tmp_path: Path,
) -> None:
    moto = MotoServer(tmp_path)
    moto.start()
    try:
        env = aws_env(tmp_path, moto.url, visibility=5)
        env.update(
            TASKQ_AWS_TIMEOUT_SECONDS="1",
            TASKQ_AWS_MAX_ATTEMPTS="2",
            TASKQ_POLL_WAIT_SECONDS="1",
            WORKER_COUNT="5",
        )
        with ProcessGroup(tmp_path, env) as procs:
            server = procs.start("serve", wait=True)
            with server.client() as client:
                before = submit_tasks(client, "sleepy", [{"key": uuid.uuid4().hex}])
                assert StatusWatch(client, before).wait_all_final(timeout=20)

                moto.stop()
                refused = _assert_degraded(client, "refused")
                hole = Blackhole(moto.port)
                try:
                    hanging = _assert_degraded(client, "hanging")
                finally:
                    hole.close()

                moto.start()  # same port, empty: provision the same names again
                aws_env(tmp_path, moto.url, visibility=5, name=env["TASKQ_SQS_QUEUE_NAME"])
                back = time.monotonic()
                wait_for(lambda: client.get("/ready").status_code == 200, timeout=20, what="/ready")
                after = submit_tasks(client, "sleepy", [{"key": uuid.uuid4().hex}])
                watch = StatusWatch(client, after)
                assert watch.wait_all_final(timeout=40), procs.logs()
                assert watch.count("COMPLETED") == 1
                resumed = time.monotonic() - back
            assert server.process.poll() is None, "taskq serve died during the outage"
        print(
            f"503 in {refused:.1f} s refused, {hanging:.1f} s hanging; resumed in {resumed:.1f} s"
        )
    finally:
        moto.stop()
