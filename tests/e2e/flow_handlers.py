"""Task types with flow limits for the flow-control end-to-end tests, loaded with
``TASKQ_HANDLERS``. Each run appends ``<type> <start> <end>`` (unix times) to the file
named by ``TASKQ_TEST_FLOW_LOG``: one ``write`` on an ``O_APPEND`` descriptor, atomic
between processes on a local file."""

from __future__ import annotations

import os
import time
from typing import Any

from domain.task_types import task_type

FLOW_LOG_ENV = "TASKQ_TEST_FLOW_LOG"
CONCURRENCY = 3
RATE = 8.0
BURST = 2


def _run(name: str, seconds: float) -> str:
    start = time.time()
    time.sleep(seconds)
    line = f"{name} {start:.4f} {time.time():.4f}\n".encode()
    fd = os.open(os.environ[FLOW_LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return "ok"


@task_type("flow-concurrent", max_concurrency=CONCURRENCY)
def concurrent(payload: Any) -> str:
    return _run("flow-concurrent", 0.4)


@task_type("flow-rate", rate=RATE, burst=BURST)
def rated(payload: Any) -> str:
    return _run("flow-rate", 0.0)


@task_type("flow-pausable")
def pausable(payload: Any) -> str:
    return _run("flow-pausable", 0.0)
