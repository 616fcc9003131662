"""Bench 1 beside the engine as it was when issue 18 was filed, in the same run.

Issue 18 asks for 25,000 no-op tasks/s in-process, "about 12,000 now", a figure from
another machine. So that the gain reads as a ratio measured on one machine at one time,
this checks out the commit before issue 18's work (``BASELINE_COMMIT``) into a
temporary git worktree and runs that commit's own ``benchmarks/inprocess.py``
alternately with today's, each in a fresh process. The old benchmark observes less
(no metrics, event log, flow gate or backlog bound), so the ratio understates the gain.

Where the history is missing (a shallow clone, no git), the baseline is reported as
not measured and today's runs stand alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, ROOT

BASELINE_COMMIT = "44ce3d81cb3e157c244072fbdc28b8a3db4a22fe"
"""``Merge prio17``: main just before ``Merge perf18``, issue 18's first change."""
ISSUE_TARGET_RATIO = round(25_000 / 12_000, 2)
"""The issue's 25,000 tasks/s over its "about 12,000 now"."""


def _git(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def available() -> bool:
    """Whether git and the baseline commit are here to check out."""
    if shutil.which("git") is None:
        return False
    return _git("cat-file", "-e", BASELINE_COMMIT).returncode == 0


@contextlib.contextmanager
def baseline_tree() -> Iterator[Path | None]:
    """A worktree of the baseline commit, removed afterwards; None where there is none."""
    if not available():
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="taskq-baseline-") as parent:
        tree = Path(parent) / "tree"
        if _git("worktree", "add", "--detach", str(tree), BASELINE_COMMIT).returncode:
            yield None
            return
        try:
            yield tree
        finally:
            _git("worktree", "remove", "--force", str(tree))


def run_in(tree: Path, tasks: int, concurrency: int = 50) -> dict[str, Any]:
    """``python -m benchmarks.inprocess`` of the code in ``tree``, in its own process."""
    done = subprocess.run(
        [PYTHON, "-m", "benchmarks.inprocess", "--tasks", str(tasks)]
        + ["--concurrency", str(concurrency)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def alternated(tasks: int, repeats: int) -> dict[str, Any]:
    """Today's in-process runs and, where the baseline can be checked out, the
    baseline's, alternated; medians, every run, and today's over the baseline's."""
    today: list[int] = []
    before: list[int] = []
    with baseline_tree() as tree:
        for _ in range(repeats):
            today.append(int(run_in(ROOT, tasks)["tasks_per_second"]))
            if tree is not None:
                before.append(int(run_in(tree, tasks)["tasks_per_second"]))
    middle = statistics.median_high(today)  # a run's own figure, as run.py's _median
    result: dict[str, Any] = {
        "tasks": tasks,
        "tasks_per_second": middle,
        "runs": today,
        "baseline_commit": BASELINE_COMMIT[:7],
        "target_ratio": ISSUE_TARGET_RATIO,
    }
    if before:
        baseline = statistics.median_high(before)
        result["baseline_tasks_per_second"] = baseline
        result["baseline_runs"] = before
        result["over_baseline"] = round(middle / baseline, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(alternated(args.tasks, args.repeats)))


if __name__ == "__main__":
    main()
