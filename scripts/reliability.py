"""Run the delivery-guarantee scenarios against real processes and write the report.

    make reliability                       # every scenario, every backend, long runs
    python scripts/reliability.py --quick  # the make-test sizes, for a smoke run

Scenarios 1, 3, 4, 5, 8 and 9 of issue 5, and of issue 10: 11 (poison tasks among healthy
neighbours) and 12 (held tasks behind a backlog; no re-sends); see
tests/e2e/test_reliability_*.py, whose ``run_*`` functions these are, with larger
parameters. On sqlite and on aws (a moto server process on loopback). Writes
docs/reliability.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import cpu_model  # noqa: E402
from tests.e2e.test_reliability_backlog import run_backlog  # noqa: E402
from tests.e2e.test_reliability_crash import run_worker_kill  # noqa: E402
from tests.e2e.test_reliability_gap import run_write_send_gap  # noqa: E402
from tests.e2e.test_reliability_lease import run_long_task  # noqa: E402
from tests.e2e.test_reliability_load import run_load  # noqa: E402
from tests.e2e.test_reliability_poison import (  # noqa: E402
    _send_raw_sqlite,
    run_poison,
    run_poison_neighbours,
    send_raw_sqs,
)
from tests.e2e.test_reliability_shutdown import run_graceful_shutdown  # noqa: E402
from tests.support.processes import MotoServer, aws_env, sqlite_env  # noqa: E402
from tests.support.scenarios import ScenarioResult  # noqa: E402

Scenario = Callable[[Path, str], ScenarioResult]


def _env(tmp: Path, backend: str, moto: MotoServer | None, visibility: float) -> dict[str, str]:
    if backend == "sqlite":
        return sqlite_env(tmp)
    assert moto is not None
    return aws_env(tmp, moto.url, visibility=visibility)


def scenarios(quick: bool) -> list[tuple[str, set[str], Callable[..., ScenarioResult]]]:
    """(name, backends, run(tmp, backend, moto))."""
    big = not quick

    def worker_kill(tmp: Path, backend: str, moto: MotoServer | None) -> ScenarioResult:
        tasks = (200 if backend == "sqlite" else 100) if big else 40
        return run_worker_kill(
            tmp,
            _env(tmp, backend, moto, 3),
            backend=backend,
            tasks=tasks,
            concurrency=50 if big else 20,
            timeout=180,
        )

    def long_task(tmp: Path, backend: str, moto: MotoServer | None) -> ScenarioResult:
        return run_long_task(
            tmp,
            _env(tmp, backend, moto, 2),
            backend=backend,
            tasks=5 if big else 3,
            task_seconds=12.0 if big else 6.0,
        )

    def gap(tmp: Path, backend: str, moto: MotoServer | None) -> ScenarioResult:
        return run_write_send_gap(
            tmp, _env(tmp, backend, moto, 5), backend=backend, tasks=50 if big else 10
        )

    def backlog(tmp: Path, backend: str, moto: MotoServer | None) -> ScenarioResult:
        sizes = {"held": 50, "passes": 5} if big else {}
        if big:
            sizes["backlog"] = 2000 if backend == "sqlite" else 400
        return run_backlog(tmp, _env(tmp, backend, moto, 10), backend=backend, **sizes)

    def poison(tmp: Path, backend: str, moto: MotoServer | None) -> ScenarioResult:
        env = _env(tmp, backend, moto, 2)
        if backend == "sqlite":
            db = Path(env["TASKQ_SQLITE_PATH"])
            return run_poison(tmp, env, backend=backend, send_raw=lambda b: _send_raw_sqlite(db, b))
        return run_poison(tmp, env, backend=backend, send_raw=lambda b: send_raw_sqs(env, b))

    def neighbours(tmp: Path, backend: str, moto: MotoServer | None) -> ScenarioResult:
        return run_poison_neighbours(
            tmp,
            _env(tmp, backend, moto, 2),
            backend=backend,
            healthy=200 if big else 60,
            poison=4 if big else 2,
            timeout=300 if big else 90,
        )

    def shutdown(tmp: Path, backend: str, moto: MotoServer | None) -> ScenarioResult:
        env = _env(tmp, backend, moto, 60)
        if big:
            return run_graceful_shutdown(tmp, env, backend=backend, tasks=60, concurrency=40)
        return run_graceful_shutdown(tmp, env, backend=backend)

    def load(tmp: Path, backend: str, moto: MotoServer | None) -> ScenarioResult:
        rate = (30.0 if backend == "sqlite" else 10.0) if big else 20.0
        return run_load(
            tmp,
            _env(tmp, backend, moto, 30),
            backend=backend,
            seconds=60.0 if big else 10.0,
            rate=rate,
            drain_timeout=180,
        )

    both = {"sqlite", "aws (moto)"}
    return [
        ("1. worker SIGKILLed mid-task", both, worker_kill),
        ("3. long task, short lease", both, long_task),
        ("4. write/send gap (send first)", both, gap),
        ("5. poison messages", both, poison),
        ("8. SIGTERM under load, restart", both, shutdown),
        ("9. steady HTTP load", both, load),
        ("11. poison tasks among healthy neighbours", both, neighbours),
        ("12. held tasks behind a backlog; no re-sends", both, backlog),
    ]


def run_all(quick: bool, backends: set[str]) -> list[tuple[str, str, ScenarioResult | str, float]]:
    rows: list[tuple[str, str, ScenarioResult | str, float]] = []
    for name, supported, run in scenarios(quick):
        for backend in ("sqlite", "aws (moto)"):
            if backend not in backends:
                continue
            if backend not in supported:
                rows.append((name, backend, "not run: scenario not written for this backend", 0))
                continue
            print(f"== {name} [{backend}]", flush=True)
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="taskq-reliability-") as tmp_name:
                tmp = Path(tmp_name)
                moto = MotoServer(tmp) if backend != "sqlite" else None
                try:
                    if moto is not None:
                        moto.start()
                    outcome: ScenarioResult | str = run(tmp, backend, moto)
                except Exception as error:  # a failed scenario is a row, not the end
                    traceback.print_exc()
                    outcome = f"FAILED: {type(error).__name__}: {str(error)[:300]}"
                finally:
                    if moto is not None:
                        moto.stop()
            took = time.monotonic() - started
            print(f"   {outcome} ({took:.0f} s)", flush=True)
            rows.append((name, backend, outcome, took))
    return rows


def _machine() -> str:
    cpu = cpu_model(platform.processor() or platform.machine())
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Python {platform.python_version()}"
    )


def _counted(value: int | None) -> str:
    """A count, or a dash where the scenario does not count it."""
    return "-" if value is None else str(value)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def report(rows: list[tuple[str, str, ScenarioResult | str, float]], command: str) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability report",
        "",
        "Generated by `scripts/reliability.py`; do not edit by hand. Each scenario starts",
        "real `taskq` processes (API, workers) on loopback, kills or starves them, and",
        "checks every accepted task. See tests/e2e/test_reliability_*.py for what each",
        "one asserts; `make test` runs the same scenarios at a smaller size.",
        "",
        f"- Command: `{command}`",
        f"- Machine: {_machine()}",
        f"- Date: {now}",
        "",
        "| scenario | backend | tasks | lost | stuck | duplicated runs | double completions "
        "| healthy tasks failed | reconciler duplicate messages | time to recover (s) "
        "| wall (s) | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, backend, outcome, took in rows:
        if isinstance(outcome, str):
            lines.append(f"| {name} | {backend} | | | | | | | | | {took:.0f} | {_cell(outcome)} |")
            continue
        recover = "" if outcome.recover_seconds is None else f"{outcome.recover_seconds:g}"
        lines.append(
            f"| {name} | {backend} | {outcome.tasks} | {outcome.lost} | {outcome.stuck} "
            f"| {outcome.duplicated_runs} | {outcome.double_completions} "
            f"| {_counted(outcome.healthy_failed)} | {_counted(outcome.reconciler_duplicates)} "
            f"| {recover} | {took:.0f} | {_cell(outcome.notes)} |"
        )
    lines += [
        "",
        "## Columns",
        "",
        "- **lost**: accepted tasks the store no longer knows, or that ended FAILED or",
        "  CANCELLED though they should have completed (scenario 5: the worker-killer task",
        "  must end FAILED, so there lost counts it if it does not).",
        "- **stuck**: tasks not in a final state when the scenario's deadline passed.",
        "- **duplicated runs**: handler runs that finished beyond the first for a task",
        "  (from the handlers' run log). At-least-once delivery allows them; they are",
        "  reported, not failed. Runs cut short by a kill are not counted.",
        "  Scenario 8 on aws shows some: a sync handler cannot be interrupted, so one",
        "  released at the end of the grace period that returns before the process exits",
        "  (the releases take longer on SQS) has its result discarded and runs again.",
        "- **double completions**: a final record that changed after it was first seen",
        "  (a completion recorded twice). Must be 0.",
        "- **healthy tasks failed** (scenario 11): tasks that did nothing wrong but ended",
        "  FAILED because a poison neighbour crashed the process they shared. Must be 0.",
        "- **reconciler duplicate messages** (scenario 12): messages the reconciler sent for",
        "  tasks that already had one, over several passes on a backlog older than",
        "  `TASKQ_RECONCILE_STALE_AFTER_SECONDS`. Must be 0.",
        "- **time to recover**: 1: SIGKILL to every task final; 4: first send to every",
        "  task final; 5: the worker-killer task from submission to FAILED; 8: restart to",
        "  every task final; 9: end of the load to every task final; 11 and 12: workers'",
        "  start to every task final.",
        "- Scenario 11: lost counts a healthy task that did not complete and a poison",
        "  task that did not end FAILED with the crash error (its handler crashed its",
        "  worker process).",
        "",
        "## Engine bugs these scenarios found (fixed since)",
        "",
        "- A heartbeat whose lease extension had committed but not yet answered when the",
        "  handler returned was cancelled; the worker kept the stale version, lost its own",
        "  completion compare-and-set, re-ran the task and, at max_attempts, marked it",
        "  FAILED (scenario 1 showed 3-6 duplicated runs per 40 tasks, some FAILED). Test:",
        "  tests/e2e/test_reliability_lease.py::"
        "test_a_heartbeat_answer_in_flight_when_the_handler_ends_is_not_lost.",
        "- SIGTERM exited only when the longest sync handler returned (the interpreter",
        "  joined the handler threads), not within the grace period; the released tasks'",
        "  handlers ran on to the end, and ran again after the restart. Test:",
        "  tests/e2e/test_reliability_shutdown.py::"
        "test_sqlite_sigterm_exits_within_the_grace_period_despite_a_long_sync_handler.",
        "",
        "## In `make test` but not here",
        "",
        "Scenario 2 (lost lease: tests/unit/test_processing.py), 6 (transient AWS faults:",
        "tests/e2e/test_reliability_faults.py), 7 (endpoint down:",
        "tests/e2e/test_reliability_outage.py), 10 (API fuzz:",
        "tests/unit/test_http_properties.py and tests/e2e/test_fuzz_openapi.py).",
        "",
        "## Reading the aws rows",
        "",
        "moto is one Python process (DynamoDB requests serialised here, as its",
        "transactions are not isolated): its speed bounds the aws rows (fewer tasks, a",
        "lower load rate, longer recovery). They show the engine's guarantees on the",
        "SQS/DynamoDB adapters, not AWS's throughput.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the make-test sizes")
    parser.add_argument(
        "--backend", choices=["sqlite", "aws", "all"], default="all", help="default: all"
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "reliability.md"))
    args = parser.parse_args()
    backends = {"sqlite", "aws (moto)"}
    if args.backend == "sqlite":
        backends = {"sqlite"}
    elif args.backend == "aws":
        backends = {"aws (moto)"}
    rows = run_all(args.quick, backends)
    command = (
        "make reliability"
        if os.environ.get("MAKELEVEL")
        else " ".join(["python", "scripts/reliability.py", *sys.argv[1:]])
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(rows, command))
    print(f"wrote {out}")
    failed = [r for r in rows if isinstance(r[2], str) and r[2].startswith("FAILED")]
    bad = [
        r
        for r in rows
        if isinstance(r[2], ScenarioResult) and (r[2].lost or r[2].stuck or r[2].double_completions)
    ]
    return 1 if failed or bad else 0


if __name__ == "__main__":
    sys.exit(main())
