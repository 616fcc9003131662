"""``make bench --quick``: every benchmark runs on tiny sizes and yields its figures.

A smoke test only: it asserts that the figures exist, never how fast anything is
(speed lives in ``make bench`` and docs/benchmarks.md, not in timed tests).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import baseline, celery_redis
from benchmarks.report import figures
from tests.support.processes import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECTIONS = [
    "## Figures against targets",
    "## 1. Engine overhead",
    "## 2. Requests per task on AWS",
    "## 3. Against the original algorithm",
    "## 4. Scale of reads",
    "## 5. Latency, submit → start",
    "## 6. I/O-bound handlers",
    "## 7. Memory",
    "## 13. One worker process against modelled AWS latency",
    "## 10. CPU-bound work beside no-op tasks",
    "## 11. data-export memory",
    "## 12. Flow control on a type without limits",
    "## 14. Outside check: the requests `taskq serve` makes on aws",
    "## 15. Beside Celery on Redis",
    "## Profile",
]


def test_quick_bench_produces_every_figure(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    raw = tmp_path / "benchmarks.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--output", str(report)]
        + ["--json", str(raw)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    results = json.loads(raw.read_text())
    named = figures(results)
    assert len(named) >= 20
    for name, value in named.items():
        assert isinstance(value, int | float), name
        assert math.isfinite(value), name
    assert {row["backend"] for row in results["http"]} == {"memory", "sqlite"}
    assert {row["backend"] for row in results["reads"]} == {"memory", "sqlite"}
    assert results["aws_engine"]["calls"], "no AWS call was counted"
    assert results["original"]["calls"], "no AWS call was counted"
    resize_runs = results["resize_latency"]["runs"]
    assert resize_runs[0]["resizes_completed"] > 0, "no image was resized beside the no-ops"
    assert {"resize_noop_p99_ratio", "export_rss_growth_mib"} <= set(named)
    assert "flow_no_limits_change_percent" in named
    assert results["aws_outside"]["engine"]["calls_per_task"], "taskq serve made no request"
    assert "aws_outside_cost_ratio" in named
    assert results["export_memory"]["rows"] == results["export_memory"]["tasks"]
    celery = results["celery_redis"]
    if celery_redis.unavailable() is None:  # make test installs redis-server when it can
        assert [run["tasks"] for run in celery["runs"]] == [30, 30], celery
        assert named["celery_solo_tasks_per_second"] > 0
        assert "inprocess_over_celery_solo" in named
    else:
        assert celery == {"skipped": celery_redis.unavailable()}

    inprocess = results["inprocess"]
    if baseline.available():  # a clone with main's history: the engine before issue 18 ran
        assert len(inprocess["baseline_runs"]) == len(inprocess["runs"]) == 3, inprocess
        assert min(inprocess["baseline_runs"]) > 0
        assert named["inprocess_over_baseline"] > 0
    else:
        assert "over_baseline" not in inprocess

    text = report.read_text()
    assert "QUICK MODE" in text
    for section in SECTIONS:
        assert section in text, section
