"""Scenario 1: a worker process SIGKILLed with tasks in flight loses nothing.

``taskq api`` and ``taskq worker`` share one backend; the worker is killed while at least
20 tasks run; a new worker starts. Every task ends COMPLETED, none is lost or stuck,
and no COMPLETED record ever changes (it was recorded once). Handler runs cut short by
the kill are re-run; a run that finished twice is counted and reported, not failed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.processes import ProcessGroup, on_moto, sqlite_env
from tests.support.scenarios import (
    RunLog,
    ScenarioResult,
    StatusWatch,
    submit_sleepy,
    wait_for,
)

pytestmark = pytest.mark.e2e


def run_worker_kill(
    tmp_path: Path,
    env: dict[str, str],
    *,
    backend: str,
    tasks: int = 40,
    concurrency: int = 20,
    # A multiple of the heartbeat (a third of the lease): handlers end just as heartbeats
    # write, the race of test_a_heartbeat_answer_in_flight_when_the_handler_ends_is_not_lost.
    task_seconds: float = 2.0,
    visibility: float = 3.0,
    timeout: float = 60.0,
) -> ScenarioResult:
    env = {
        **env,
        "WORKER_COUNT": str(concurrency),
        "TASKQ_VISIBILITY_TIMEOUT": str(visibility),
        "TASKQ_POLL_WAIT_SECONDS": "1",
    }
    run_log = RunLog(Path(env["TASKQ_TEST_RUN_LOG"]))
    with ProcessGroup(tmp_path, env) as procs:
        api = procs.start("api", wait=True)
        with api.client() as client:
            keys, ids = submit_sleepy(client, tasks, task_seconds)
            worker = procs.start("worker")  # after the submissions: it fills every slot
            watch = StatusWatch(client, ids)
            in_flight = min(20, concurrency)
            # Handlers running, from the run log: on aws (claim at finish) a run is
            # PROCESSING only from its first second, and the counts trail the writes.
            wait_for(
                lambda: _running(run_log) >= in_flight,
                timeout=30,
                interval=0.05,
                what=f"{in_flight} tasks running",
            )
            running_at_kill = _running(run_log)
            worker.kill()  # SIGKILL: no drain, no release
            killed_at = time.monotonic()
            procs.start("worker")
            finished = watch.wait_all_final(timeout)
            recover = time.monotonic() - killed_at
            watch.poll()  # once more: a final record must not change afterwards

        by_id = dict(zip(ids, keys, strict=True))
        not_completed = {
            i: t["status"] for i, t in watch.latest.items() if t["status"] != "COMPLETED"
        }
        # A COMPLETED record must carry the result of a run that really finished.
        unbacked = [
            i
            for i, t in watch.latest.items()
            if t["status"] == "COMPLETED"
            and (
                not isinstance(t["result"], dict)
                or t["result"].get("run") not in run_log.run_ids(by_id[i])
            )
        ]
        result = ScenarioResult.observed(
            "1. worker SIGKILLed mid-task",
            backend,
            watch,
            run_log,
            keys,
            recover_seconds=recover if finished else None,
            notes=f"{running_at_kill} running at the kill",
        )
        result.lost += len(unbacked)
        assert finished, f"not final: {watch.not_final()}\n{procs.logs()}"
        assert not not_completed, not_completed
        assert not watch.violations, watch.violations
        assert not unbacked, unbacked
        return result


def _running(run_log: RunLog) -> int:
    """Handler runs started and not finished (cut short by a kill: until restarted)."""
    return sum(run_log.starts().values()) - sum(run_log.completions().values())


def test_sqlite_worker_killed_mid_task_loses_nothing(tmp_path: Path) -> None:
    result = run_worker_kill(tmp_path, sqlite_env(tmp_path), backend="sqlite")
    print(result)
    result.check()


@pytest.mark.aws
def test_aws_worker_killed_mid_task_loses_nothing(tmp_path: Path) -> None:
    result = on_moto(
        tmp_path, lambda env: run_worker_kill(tmp_path, env, backend="aws (moto)"), visibility=3
    )
    print(result)
    result.check()
