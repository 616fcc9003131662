"""Scenario 9: a steady load of submissions over HTTP while workers run.

Loopback only, bounded in rate and time. Zero 5xx, zero lost tasks, every task final.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ProcessGroup, sqlite_env
from tests.support.scenarios import RunLog, ScenarioResult, StatusWatch

pytestmark = pytest.mark.e2e


def run_load(
    tmp_path: Path,
    env: dict[str, str],
    *,
    backend: str,
    seconds: float = 10.0,
    rate: float = 20.0,
    workers: int = 2,
    drain_timeout: float = 60.0,
) -> ScenarioResult:
    """Submit ``rate`` tasks a second for ``seconds`` to ``taskq api`` while ``workers``
    worker processes run them."""
    env = {**env, "WORKER_COUNT": "10", "TASKQ_POLL_WAIT_SECONDS": "1"}
    run_log = RunLog(Path(env["TASKQ_TEST_RUN_LOG"]))
    statuses: dict[int, int] = {}
    errors = 0
    ids: list[str] = []
    keys: list[str] = []
    with ProcessGroup(tmp_path, env) as procs:
        api = procs.start("api", wait=True)
        for _ in range(workers):
            procs.start("worker")
        with api.client() as client:
            started = time.monotonic()
            n = 0
            while (elapsed := time.monotonic() - started) < seconds:
                due = started + n / rate
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                key = uuid.uuid4().hex
                try:
                    response = client.post(
                        "/tasks", json={"type": "sleepy", "payload": {"key": key, "seconds": 0.05}}
                    )
                except httpx.HTTPError:
                    errors += 1
                    continue
                finally:
                    n += 1
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 201:
                    ids.append(response.json()["id"])
                    keys.append(key)
            submitted_for = elapsed
            drain_started = time.monotonic()
            watch = StatusWatch(client, ids)
            finished = watch.wait_all_final(timeout=drain_timeout, interval=0.5)
            drained = time.monotonic() - drain_started
        server_errors = sum(c for s, c in statuses.items() if s >= 500)
        result = ScenarioResult.observed(
            f"9. load {rate:g}/s for {seconds:g} s",
            backend,
            watch,
            run_log,
            keys,
            recover_seconds=drained if finished else None,
            notes=f"{n} requests in {submitted_for:.1f} s: {dict(sorted(statuses.items()))}, "
            f"{errors} transport errors; {workers} workers x 10",
        )
        assert errors == 0 and server_errors == 0, result.notes
        assert statuses == {201: n}, result.notes
        assert finished, f"not final: {len(watch.not_final())}\n{procs.logs()[-5000:]}"
        assert {t["status"] for t in watch.latest.values()} == {"COMPLETED"}
        return result


def test_sqlite_steady_load_no_5xx_nothing_lost(tmp_path: Path) -> None:
    result = run_load(tmp_path, sqlite_env(tmp_path), backend="sqlite")
    print(result)
    result.check()
