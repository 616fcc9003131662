"""The built wheel, installed in a fresh virtual environment, serves an application that
has its own top-level ``domain`` package: it submits a task through ``taskq.Client`` to
a ``taskq serve`` and reads the result.

The fresh environment gets the wheel (``--no-deps``) and a ``.pth`` line naming the
shared environment's site-packages for the dependencies (httpx, pydantic): a directory a
``.pth`` adds is not scanned for ``.pth`` files itself, so the shared environment's
editable install of this checkout stays out and ``taskq`` can only come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.processes import ROOT, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SOURCES = ("pyproject.toml", "README.md", "taskq", "domain", "adapters", "entrypoints", "bootstrap")
APPLICATION = """
import json

import domain
import taskq

with taskq.Client() as client:  # TASKQ_URL
    handle = client.submit("email", "app@example.com")
    print(json.dumps({
        "result": handle.result(timeout=30),
        "taskq": taskq.__file__,
        "domain": domain.__file__,
        "domain_says": domain.WHOSE,
    }))
"""


def run(*command: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(tmp_path: Path) -> Path:
    """The wheel, built from a copy of the sources (the build leaves files behind)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    pip = (sys.executable, "-m", "pip")
    run(*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist, source)
    (wheel,) = dist.glob("*.whl")
    return wheel


def fresh_environment(tmp_path: Path, wheel: Path) -> Path:
    """A virtual environment with the wheel and the shared dependencies; its python."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    pip = (sys.executable, "-m", "pip", "--python", python)
    run(*pip, "install", "--quiet", "--no-deps", "--no-index", wheel)
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    shared = sysconfig.get_paths()["purelib"]
    (Path(site.strip()) / "shared-dependencies.pth").write_text(shared + "\n")
    return python


def test_an_application_with_its_own_domain_package_uses_the_installed_client(
    tmp_path: Path,
) -> None:
    python = fresh_environment(tmp_path, build_wheel(tmp_path))
    app = tmp_path / "app"
    (app / "domain").mkdir(parents=True)
    (app / "domain" / "__init__.py").write_text('WHOSE = "the application\'s"\n')
    (app / "main.py").write_text(APPLICATION)
    clean = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}

    with running_server(tmp_path, env={"TASKQ_BACKEND": "memory"}) as server:
        out = run(python, "main.py", cwd=app, env={**clean, "TASKQ_URL": server.url})

    found = json.loads(out)
    assert found["result"]["accepted"] == ["app@example.com"]
    assert found["taskq"].startswith(str(tmp_path / "venv"))  # the wheel's, not this checkout's
    assert found["domain"] == str(app / "domain" / "__init__.py")
    assert found["domain_says"] == "the application's"
