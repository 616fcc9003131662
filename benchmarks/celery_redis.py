"""Benchmark 15: no-op tasks through Celery on Redis, beside the engine's in-process
figure (issue 18 asks for the engine "beside Celery+Redis if the benchmark can start
one").

A ``redis-server`` (Debian's package) on a free loopback port, without persistence; a
Celery worker (``benchmarks/celery_app.py``) on it as its broker and result backend;
this process submits ``n`` no-op tasks with ``delay()`` and the run ends when every
task's result is stored. tasks/s is first submit to last result, as the engine's
in-process figure is first submit to last completion. Two workers: ``--pool=solo`` (one
process, like the engine's one event loop) and ``--pool=prefork`` with one child per
core. Celery's side has more of the machine than the engine's: the submitting process,
the worker and Redis are three processes on the two cores, where the engine's
submitting, running and recording share one.

Skipped, with the reason, when ``redis-server`` or the ``celery`` and ``redis``
packages are missing (``make bench`` installs them).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, ROOT, free_port

RESULT_PREFIX = "celery-task-meta-"
READY_TIMEOUT = 60.0
RUN_TIMEOUT = 300.0


def unavailable() -> str | None:
    """Why Celery on Redis cannot run here; None when it can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian's redis-server package)"
    missing = [name for name in ("celery", "redis") if importlib.util.find_spec(name) is None]
    if missing:
        return f"the Python package(s) {', '.join(missing)} are not installed"
    return None


@contextlib.contextmanager
def _process(command: list[str], log_path: Path, env: dict[str, str]) -> Iterator[int]:
    """Run ``command`` (its output in ``log_path``); SIGTERM it by its pid on exit."""
    with log_path.open("wb") as log:
        popen = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield popen.pid
    finally:
        if popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=10)


def _wait(ready: Any, what: str, log_path: Path, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if ready():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready in {timeout}s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)


def _run_one(redis_url: str, pool: list[str], n: int, work: Path) -> dict[str, Any]:
    import redis

    env = {**os.environ, "BENCH_REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    os.environ["BENCH_REDIS_URL"] = redis_url  # read when celery_app is first imported
    from benchmarks import celery_app

    celery_app.app.conf.broker_url = celery_app.app.conf.result_backend = redis_url
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    log_path = work / f"celery-worker-{pool[0].split('=')[1]}-{free_port()}.log"
    command = [PYTHON, "-m", "celery", "-A", "benchmarks.celery_app", "worker", *pool]
    command += ["--loglevel=WARNING", "--without-gossip", "--without-mingle"]
    command += ["--without-heartbeat"]
    with _process(command, log_path, env):
        warm = celery_app.noop.delay()
        _wait(lambda: warm.ready(), "the celery worker", log_path)
        client.flushdb()
        started = time.perf_counter()
        last = None
        for _ in range(n):
            last = celery_app.noop.delay()
        submitted = time.perf_counter() - started
        assert last is not None
        _wait(lambda: last.ready(), "the last task", log_path, RUN_TIMEOUT)
        _wait(lambda: _results(client) >= n, "every task's result", log_path, RUN_TIMEOUT)
        elapsed = time.perf_counter() - started
    return {
        "pool": " ".join(pool),
        "tasks": n,
        "seconds": round(elapsed, 3),
        "tasks_per_second": round(n / elapsed),
        "submits_per_second": round(n / submitted),
    }


def _results(client: Any) -> int:
    """How many task results Redis holds (a scan: run once the last result is in)."""
    return sum(1 for _ in client.scan_iter(match=f"{RESULT_PREFIX}*", count=5000))


def run(n: int, work: Path) -> dict[str, Any]:
    """tasks/s of Celery on Redis with a solo and a prefork worker, or why it did not run."""
    reason = unavailable()
    if reason is not None:
        return {"skipped": reason}
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    redis_log = work / f"redis-{port}.log"
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(work)]
    cores = os.cpu_count() or 1
    pools = (["--pool=solo"], ["--pool=prefork", f"--concurrency={cores}"])
    with _process(command, redis_log, dict(os.environ)):
        import redis

        _wait(lambda: redis.Redis(port=port).ping(), "redis-server", redis_log)
        version = redis.Redis(port=port).info()["redis_version"]
        runs = [_run_one(redis_url, pool, n, work) for pool in pools]
    from celery import __version__ as celery_version

    return {"celery": celery_version, "redis": version, "runs": runs}


def main() -> None:
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="celery-bench-") as directory:
        print(json.dumps(run(args.tasks, Path(directory)), indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
