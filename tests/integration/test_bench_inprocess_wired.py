"""``benchmarks/inprocess_wired.py`` runs the engine as serve wires it, on each local
backend, to the last task (a smoke test: how fast is for ``make bench``, not a test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import inprocess_wired


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_every_submitted_task_completes(tmp_path: Path, backend: str) -> None:
    figures = await inprocess_wired.run(backend, 70, tmp_path)
    assert figures["backend"] == backend
    assert figures["tasks"] == 64  # 32 submitters, two tasks each
    assert isinstance(figures["tasks_per_second"], int) and figures["tasks_per_second"] > 0
