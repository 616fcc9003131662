"""Scenario 8: SIGTERM to ``taskq serve`` with 20 tasks in flight (their handlers running).

The process stops receiving, waits the grace period, releases what is still running
(back to PENDING, its message visible at once), and exits 0. A restarted ``taskq serve``
finishes every task well before the visibility timeout would have brought them back,
which shows they were released rather than abandoned.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.processes import ProcessGroup, on_moto, sqlite_env
from tests.support.scenarios import (
    RunLog,
    ScenarioResult,
    StatusWatch,
    submit_sleepy,
    submit_tasks,
    wait_for,
)

pytestmark = pytest.mark.e2e

VISIBILITY = 60.0  # far longer than the restart takes: a task not released would wait it out


def _counts(procs: ProcessGroup, settle_seconds: float = 30.0) -> dict[str, int]:
    """Task counts per status, read through a ``taskq api`` (no worker) started for it:
    once none is PROCESSING, or after ``settle_seconds`` (on aws the counts come from
    the table's stream and trail the writes by a second or two; on a loaded machine the
    new aggregator's takeover and first read can take far longer)."""
    api = procs.start("api", wait=True)
    statuses = ("PENDING", "PROCESSING", "COMPLETED")
    deadline = time.monotonic() + settle_seconds
    try:
        with api.client() as client:
            while True:
                metrics = client.get("/metrics").json()
                counts = {s: int(metrics[f"{s.lower()}_tasks"]) for s in statuses}
                if counts["PROCESSING"] == 0 or time.monotonic() > deadline:
                    return counts
                time.sleep(0.25)
    finally:
        api.kill()


def run_graceful_shutdown(
    tmp_path: Path,
    env: dict[str, str],
    *,
    backend: str,
    tasks: int = 30,
    concurrency: int = 20,
    task_seconds: float = 4.0,
    grace: float = 2.0,
) -> ScenarioResult:
    env = {
        **env,
        "WORKER_COUNT": str(concurrency),
        "TASKQ_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "TASKQ_SHUTDOWN_GRACE_SECONDS": str(grace),
        "TASKQ_POLL_WAIT_SECONDS": "1",
    }
    run_log = RunLog(Path(env["TASKQ_TEST_RUN_LOG"]))
    with ProcessGroup(tmp_path, env) as procs:
        first = procs.start("serve", wait=True)
        with first.client() as client:
            keys, ids = submit_sleepy(client, tasks, task_seconds)
            # In flight: handlers running, as their own log says (not the status
            # counts: on aws they trail by a second or two, and claim at finish writes
            # PROCESSING only after its delay; a SIGTERM that late lands when the runs
            # are about to end, and those that end just after the grace ran for
            # nothing). Each is then in its grace period, claimed or not yet.
            in_flight = min(20, concurrency)
            wait_for(
                lambda: len(run_log.starts()) >= in_flight,
                timeout=30,
                interval=0.05,
                what=f"{in_flight} handlers running",
            )
        signalled = time.monotonic()
        code = first.terminate(timeout=grace + 30)
        exit_seconds = time.monotonic() - signalled
        counts = _counts(procs)

        restarted_at = time.monotonic()
        second = procs.start("serve", wait=True)
        with second.client() as client:
            watch = StatusWatch(client, ids)
            finished = watch.wait_all_final(timeout=VISIBILITY - 10)
            recover = time.monotonic() - restarted_at
        result = ScenarioResult.observed(
            "8. SIGTERM under load, restart",
            backend,
            watch,
            run_log,
            keys,
            recover_seconds=recover if finished else None,
            notes=f"exit {code} {exit_seconds:.1f} s after SIGTERM (grace {grace:g} s); "
            f"then {counts['PENDING']} PENDING, "
            f"{counts['PROCESSING']} PROCESSING",
        )
        assert code == 0, first.log()
        assert counts["PROCESSING"] == 0, f"not released: {counts}"
        assert counts["PENDING"] == tasks - counts["COMPLETED"]
        assert finished, f"not final: {watch.not_final()}\n{procs.logs()}"
        assert {t["status"] for t in watch.latest.values()} == {"COMPLETED"}
        assert exit_seconds < grace + 3, result.notes
        return result


def test_sqlite_sigterm_releases_in_flight_tasks_and_a_restart_finishes_them(
    tmp_path: Path,
) -> None:
    result = run_graceful_shutdown(tmp_path, sqlite_env(tmp_path), backend="sqlite")
    print(result)
    result.check()


@pytest.mark.aws
def test_aws_sigterm_releases_in_flight_tasks_and_a_restart_finishes_them(
    tmp_path: Path,
) -> None:
    result = on_moto(
        tmp_path,
        lambda env: run_graceful_shutdown(tmp_path, env, backend="aws (moto)"),
        visibility=VISIBILITY,
    )
    print(result)
    result.check()


def test_sqlite_sigterm_exits_within_the_grace_period_despite_a_long_sync_handler(
    tmp_path: Path,
) -> None:
    grace = 1.0
    env = sqlite_env(
        tmp_path,
        TASKQ_VISIBILITY_TIMEOUT=str(VISIBILITY),
        TASKQ_SHUTDOWN_GRACE_SECONDS=str(grace),
    )
    with ProcessGroup(tmp_path, env) as procs:
        server = procs.start("serve", wait=True)
        with server.client() as client:
            ids = submit_tasks(client, "sleepy", [{"key": "long", "seconds": 30}])
            watch = StatusWatch(client, ids)
            wait_for(
                lambda: bool(watch.poll()) and watch.count("PROCESSING") == 1,
                timeout=20,
                what="the task PROCESSING",
            )
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            code = server.process.wait(timeout=grace + 4)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - signalled
        assert code == 0, f"no exit {took:.1f} s after SIGTERM (grace {grace:g} s)"
        assert _counts(procs)["PENDING"] == 1
