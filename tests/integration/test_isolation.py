"""The process sandbox with real child processes: a handler that kills its process
kills only its child, and a timeout, a cancel or a shutdown stops the child."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from adapters.isolation import ProcessHandlerSandbox
from domain.errors import (
    HandlerCrashed,
    HandlerNotIsolatable,
    HandlerTimeout,
    PermanentTaskError,
)
from domain.models import Task, TaskStatus
from domain.processing import Outcome
from domain.task_types import TaskType
from tests.support import isolated_handlers as h
from tests.support.lost_attempts import LEASE, LostAttemptRig
from tests.support.sandbox import gone, pid_in


@pytest.fixture(scope="module")
def sandbox() -> ProcessHandlerSandbox:
    return ProcessHandlerSandbox(preload=["tests.support.isolated_handlers"])


def kind(name: str, handler: Any, timeout: float = 30) -> TaskType:
    return TaskType(name, handler, timeout)


async def test_a_handler_runs_in_a_child_process(sandbox: ProcessHandlerSandbox) -> None:
    result = await sandbox.run(kind("where", h.where), {"a": [1, 2.5]}, timeout_seconds=10)
    assert result["echo"] == {"a": [1, 2.5]}
    assert result["pid"] != os.getpid()


async def test_an_async_handler_runs_under_its_own_loop(sandbox: ProcessHandlerSandbox) -> None:
    result = await sandbox.run(kind("double", h.async_double), 21, timeout_seconds=10)
    assert result["twice"] == 42


async def test_a_handler_that_sigkills_its_process_kills_only_the_child(
    sandbox: ProcessHandlerSandbox, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    with pytest.raises(HandlerCrashed) as info:
        payload = {"pidfile": str(pidfile)}
        await sandbox.run(kind("killer", h.sigkill_self), payload, timeout_seconds=10)
    assert "'killer' handler crashed its worker process (killed by signal SIGKILL (9))" in str(
        info.value
    )
    assert info.value.exit_code == -9
    assert int(pidfile.read_text()) != os.getpid() and gone(int(pidfile.read_text()))
    # This process, and the sandbox, go on.
    assert (await sandbox.run(kind("where", h.where), 1, timeout_seconds=10))["echo"] == 1


@pytest.mark.parametrize(
    ("handler", "how"),
    [(h.exit_hard, "(exit code 3)"), (h.segfault, "(killed by signal SIGSEGV (11))")],
)
async def test_any_death_without_a_result_is_a_crash(
    sandbox: ProcessHandlerSandbox, handler: Any, how: str
) -> None:
    with pytest.raises(HandlerCrashed, match=re.escape(f"crashed its worker process {how}")):
        await sandbox.run(kind("dies", handler), None, timeout_seconds=10)


async def test_a_handler_exception_comes_back_as_it_was(sandbox: ProcessHandlerSandbox) -> None:
    with pytest.raises(ValueError, match="bad payload 7"):
        await sandbox.run(kind("bad", h.raise_value_error), 7, timeout_seconds=10)
    with pytest.raises(PermanentTaskError, match="never going to work"):
        await sandbox.run(kind("no", h.raise_permanent), None, timeout_seconds=10)
    with pytest.raises(RuntimeError, match=r"Unpicklable: 1\+2"):
        await sandbox.run(kind("odd", h.raise_unpicklable), None, timeout_seconds=10)


async def test_a_timeout_terminates_the_child(
    sandbox: ProcessHandlerSandbox, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(HandlerTimeout, match="slow timed out after 0.5s"):
        await sandbox.run(
            kind("slow", h.sleep_long), {"pidfile": str(pidfile)}, timeout_seconds=0.5
        )
    assert time.monotonic() - started < 5
    assert gone(int(pidfile.read_text()))


async def test_cancelling_the_caller_terminates_the_child(
    sandbox: ProcessHandlerSandbox, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    running = asyncio.create_task(
        sandbox.run(kind("slow", h.sleep_long), {"pidfile": str(pidfile)}, timeout_seconds=60)
    )
    pid = await pid_in(pidfile)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert gone(pid)


async def test_a_sigterm_to_the_whole_process_group_does_not_end_the_attempt(
    sandbox: ProcessHandlerSandbox, tmp_path: Path
) -> None:
    """systemd stops a service by signalling every process of it: the worker drains its
    tasks, so a child must not die of that SIGTERM (it would count as the task's crash)."""
    pidfile = tmp_path / "pid"
    payload = {"pidfile": str(pidfile), "seconds": 1}
    running = asyncio.create_task(
        sandbox.run(kind("slow", h.sleep_long), payload, timeout_seconds=30)
    )
    pid = await pid_in(pidfile)
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    assert await running == "woke"


def test_a_child_does_not_outlive_its_worker(tmp_path: Path) -> None:
    """A worker SIGKILLed while a child runs: the child stops too (else its task would
    run twice at once when another worker takes it over)."""
    pidfile = tmp_path / "pid"
    script = (
        "import asyncio\n"
        "from adapters.isolation import ProcessHandlerSandbox\n"
        "from domain.task_types import TaskType\n"
        "from tests.support import isolated_handlers as h\n"
        "sandbox = ProcessHandlerSandbox(preload=['tests.support.isolated_handlers'])\n"
        "task_type = TaskType('slow', h.sleep_long, 60)\n"
        f"payload = {{'pidfile': {str(pidfile)!r}, 'seconds': 60}}\n"
        "asyncio.run(sandbox.run(task_type, payload, timeout_seconds=60))\n"
    )
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(
        [sys.executable, "-c", script], cwd=root, env={**os.environ, "PYTHONPATH": str(root)}
    )
    try:
        child = asyncio.run(pid_in(pidfile, timeout=30))
        worker.kill()
        worker.wait(10)
        deadline = time.monotonic() + 10
        while not gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(child), "the isolated child outlived its worker"
    finally:
        worker.kill()
        worker.wait(10)


async def test_a_handler_a_child_cannot_find_is_refused_with_the_reason(
    sandbox: ProcessHandlerSandbox,
) -> None:
    with pytest.raises(HandlerNotIsolatable, match="register a module-level function"):
        await sandbox.run(kind("lambda", lambda payload: payload), 1, timeout_seconds=10)


def test_a_sandbox_never_forks_the_worker() -> None:
    with pytest.raises(ValueError, match="never forks"):
        ProcessHandlerSandbox(start_method="fork")


# -- the processor with the real sandbox ----------------------------------------------


async def isolated(
    sandbox: ProcessHandlerSandbox, task_type: TaskType, payload: Any
) -> tuple[LostAttemptRig, Task]:
    """A rig holding one task whose first worker died: its next attempt runs isolated."""
    env = LostAttemptRig(task_type, sandbox=sandbox)
    task = await env.submit(task_type.name, payload)
    await env.worker_dies_holding()
    return env, task


async def start_slow(
    sandbox: ProcessHandlerSandbox, tmp_path: Path
) -> tuple[LostAttemptRig, Task, asyncio.Task[Outcome], int]:
    """An isolated task running a minute-long handler, and its child's pid."""
    pidfile = tmp_path / "pid"
    env, task = await isolated(
        sandbox, kind("slow", h.sleep_long), {"pidfile": str(pidfile), "seconds": 60}
    )
    processing = asyncio.create_task(env.processor().process(await env.receive()))
    return env, task, processing, await pid_in(pidfile)


async def test_a_crash_in_the_child_fails_the_attempt_with_the_crash_error(
    sandbox: ProcessHandlerSandbox, tmp_path: Path
) -> None:
    env, task = await isolated(
        sandbox, kind("killer", h.sigkill_self), {"pidfile": str(tmp_path / "pid")}
    )
    assert await env.processor().process(await env.receive()) is Outcome.RETRY_SCHEDULED
    stored = await env.repo.get(task.id)
    assert stored.isolated and stored.attempts == 1
    assert stored.error is not None and "crashed its worker process" in stored.error


async def test_a_cancel_during_an_isolated_run_terminates_the_child(
    sandbox: ProcessHandlerSandbox, tmp_path: Path
) -> None:
    env, task, processing, pid = await start_slow(sandbox, tmp_path)
    await env.service.cancel(task.id)
    await env.clock.advance(LEASE / 3)  # the heartbeat that finds the cancel request
    assert await asyncio.wait_for(processing, 10) is Outcome.CANCELLED
    assert gone(pid)
    assert (await env.repo.get(task.id)).status is TaskStatus.CANCELLED


async def test_a_timeout_of_an_isolated_run_terminates_the_child(
    sandbox: ProcessHandlerSandbox, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    env, task = await isolated(
        sandbox, kind("slow", h.sleep_long, timeout=0.5), {"pidfile": str(pidfile)}
    )
    outcome = await asyncio.wait_for(env.processor().process(await env.receive()), 10)
    assert outcome is Outcome.RETRY_SCHEDULED
    assert gone(int(pidfile.read_text()))
    error = (await env.repo.get(task.id)).error or ""
    assert "HandlerTimeout: slow timed out after 0.5s" in error


async def test_a_shutdown_during_an_isolated_run_stops_the_child_and_gives_the_task_back(
    sandbox: ProcessHandlerSandbox, tmp_path: Path
) -> None:
    env, task, processing, pid = await start_slow(sandbox, tmp_path)
    processing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await processing
    assert gone(pid)
    released = await env.repo.get(task.id)
    assert released.status is TaskStatus.PENDING and released.attempts == 0


class _BoundToThisProcess:
    """A handler bound to something only this process has (a lock, like a built-in
    type's blob store or process pool)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid: int | None = None

    def run(self, payload: Any) -> Any:
        with self.lock:
            self.pid = os.getpid()
        return {"echo": payload}


async def test_a_handler_a_child_cannot_take_runs_in_the_worker_once_isolated(
    sandbox: ProcessHandlerSandbox,
) -> None:
    bound = _BoundToThisProcess()
    env, task = await isolated(sandbox, kind("bound", bound.run), "x")

    assert await env.processor().process(await env.receive()) is Outcome.COMPLETED
    stored = await env.repo.get(task.id)
    assert stored.isolated and stored.result == {"echo": "x"}
    assert bound.pid == os.getpid(), "run in the worker's process, not refused"
