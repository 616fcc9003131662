"""The README's Python section opens with an example that runs as written: its code
block, taken verbatim, is the handler module of a ``taskq serve`` and, run as a script,
the producer that prints the typed result."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT, running_server

pytestmark = pytest.mark.e2e


def python_example() -> str:
    """The first ``python`` code block of the README's "## Python" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found, "the Python section has no python code block"
    return found.group(1)


def test_the_python_example_runs_against_taskq_serve(tmp_path: Path) -> None:
    example = python_example()
    (tmp_path / "resize_example.py").write_text(example)
    env = {"TASKQ_BACKEND": "memory", "TASKQ_HANDLERS": "resize_example"}

    with running_server(tmp_path, env={**env, "PYTHONPATH": str(tmp_path)}) as server:
        done = subprocess.run(
            [sys.executable, "resize_example.py"],
            cwd=tmp_path,
            env={**os.environ, "TASKQ_URL": server.url, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert done.returncode == 0, done.stderr
    promised = re.search(r"print\(.*\)  # (.*)$", example, re.MULTILINE)
    assert promised is not None and done.stdout.strip() == promised.group(1)
