"""Task types for the reliability tests, loaded with ``TASKQ_HANDLERS``.

A handler sees only its payload, so every payload carries a ``key`` chosen by the test.
Each run appends lines to the file named by ``TASKQ_TEST_RUN_LOG`` (one ``write`` of
one line on an ``O_APPEND`` descriptor: atomic between processes on a local file)::

    start <key> <pid> <unix time>
    done <key> <pid> <run id> <unix time>

so a test counts how often each task started and how often a handler ran to its end.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

from domain.task_types import task_type

RUN_LOG_ENV = "TASKQ_TEST_RUN_LOG"


def _log(*words: str) -> None:
    path = os.environ.get(RUN_LOG_ENV)
    if not path:
        return
    line = (" ".join((*words, f"{time.time():.3f}")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _key(payload: Any) -> str:
    if isinstance(payload, dict) and isinstance(payload.get("key"), str):
        return str(payload["key"])
    return "-"


def _seconds(payload: Any) -> float:
    if isinstance(payload, dict):
        value = payload.get("seconds", 0)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return 0.0


@task_type("sleepy", timeout_seconds=120)
def sleepy(payload: Any) -> Any:
    """Sleeps ``payload["seconds"]``, then returns which process ran it."""
    key = _key(payload)
    pid = str(os.getpid())
    _log("start", key, pid)
    time.sleep(_seconds(payload))
    run_id = uuid.uuid4().hex
    _log("done", key, pid, run_id)
    return {"key": key, "pid": int(pid), "run": run_id}


@task_type("crash", timeout_seconds=60)
def crash(payload: Any) -> Any:
    """Kills the worker process that runs it, every time."""
    _log("start", _key(payload), str(os.getpid()))
    os._exit(1)


@task_type("sigkill", timeout_seconds=60)
def sigkill(payload: Any) -> Any:
    """SIGKILLs the process that runs it, every time (as a segfault or the OOM killer
    would): with it, every task that shares that process loses its attempt."""
    _log("start", _key(payload), str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
