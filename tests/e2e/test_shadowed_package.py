"""A team's application with its own top-level ``domain`` package: ``taskq serve`` and
``taskq worker`` started with its handlers refuse at once, in one line naming the
package and its path (not a ModuleNotFoundError from deep inside the import)."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support.processes import taskq_command, with_repo_on_path

pytestmark = pytest.mark.e2e

APP_TASKS = """
    from domain.pricing import price

    from taskq import task


    @task("quote")
    def quote(amount: int) -> int:
        return price(amount)
"""


def sample_app(root: Path) -> Path:
    """An application whose task module imports its own ``domain`` package."""
    (root / "domain").mkdir(parents=True)
    (root / "domain" / "__init__.py").write_text("")
    (root / "domain" / "pricing.py").write_text(
        "def price(amount: int) -> int:\n    return amount\n"
    )
    (root / "app_tasks.py").write_text(textwrap.dedent(APP_TASKS))
    return root


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_shadowed_engine_package_stops_the_start_with_its_name_and_path(
    tmp_path: Path, command: str
) -> None:
    app = sample_app(tmp_path / "app")
    env = {"TASKQ_BACKEND": "memory", "TASKQ_HANDLERS": "app_tasks", "PORT": "0"}

    done = subprocess.run(
        taskq_command(command),
        cwd=app,
        env={**os.environ, **with_repo_on_path(env)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    output = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2, output
    assert len(output) == 1, output
    assert output[0].startswith(
        "taskq: the application of TASKQ_HANDLERS (app_tasks) has its own top-level package "
        f"'domain' at {(app / 'domain').resolve()}, named like one of the engine's"
    )
    assert "ModuleNotFoundError" not in done.stderr
