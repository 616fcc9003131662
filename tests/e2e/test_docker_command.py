"""The image's default command, run as the image would run it, without a Docker engine.

The Dockerfile's final-stage ENV, ENTRYPOINT and CMD are read and run as a real process
inside a private network namespace (``unshare -rn``: nothing is exposed outside this
test), where the loopback interface also carries a non-loopback address. A server that
listened on 127.0.0.1 only, as the image used to, cannot be reached on that address;
``docker run -p 8080:8080`` has the same problem.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.dockerfile import final_stage
from tests.support.processes import ROOT, taskq_command, with_repo_on_path

pytestmark = pytest.mark.e2e

OUTSIDE_ADDRESS = "10.77.0.1"
"""A non-loopback address, assigned inside the private namespace only."""


def private_network_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    done = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], check=False)
    return done.returncode == 0


needs_netns = pytest.mark.skipif(
    not private_network_available(), reason="needs unprivileged network namespaces (unshare -rn)"
)


def run_like_the_image(tmp_path: Path, **extra_env: str) -> dict[str, Any]:
    image = final_stage(ROOT / "Dockerfile")
    assert image.entrypoint == ["taskq"]
    env = {name: value for name, value in image.env.items() if name != "PATH"}
    # The volume's stand-in: the image's /data is not writable here.
    volume = tmp_path / "data"
    volume.mkdir()
    env["TASKQ_SQLITE_PATH"] = str(volume / Path(image.env["TASKQ_SQLITE_PATH"]).name)
    env = {**os.environ, **with_repo_on_path({**env, **extra_env})}

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    healthcheck = compose["services"]["api"]["healthcheck"]["test"]
    assert healthcheck[:2] == ["CMD", "python"]
    healthcheck = [sys.executable, *healthcheck[2:]]

    setup = f'ip link set lo up && ip addr add {OUTSIDE_ADDRESS}/32 dev lo && exec "$@"'
    probe = [sys.executable, "-m", "tests.e2e.container_probe"]
    done = subprocess.run(
        [
            "unshare",
            "-rn",
            "sh",
            "-c",
            setup,
            "sh",
            *probe,
            OUTSIDE_ADDRESS,
            image.env["PORT"],
            json.dumps(healthcheck),
            "--",
            *taskq_command(*image.cmd),
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@needs_netns
def test_the_image_command_with_keys_answers_on_a_non_loopback_address(tmp_path: Path) -> None:
    result = run_like_the_image(tmp_path, TASKQ_API_KEYS="container-key")

    assert result["health"] == 200, result["output"]
    assert result["healthcheck"] == 0, result["output"]
    assert result["unauthenticated"] == 401
    assert result["exit"] == 0, result["output"]
    assert "listening on http://0.0.0.0:8080" in result["output"]
    assert (tmp_path / "data" / "taskq.db").exists()  # SQLite data in the volume


@needs_netns
def test_the_image_command_without_keys_refuses_in_one_line(tmp_path: Path) -> None:
    result = run_like_the_image(tmp_path)

    assert result["health"] is None
    assert result["exit"] != 0
    output = result["output"].strip().splitlines()
    assert len(output) == 1, result["output"]
    assert "refusing to serve the API on 0.0.0.0 without authentication" in output[0]
    assert "TASKQ_API_KEYS" in output[0] and "--insecure" in output[0]


@needs_netns
def test_the_image_command_with_insecure_answers_openly(tmp_path: Path) -> None:
    result = run_like_the_image(tmp_path, TASKQ_INSECURE="true")

    assert result["health"] == 200, result["output"]
    assert result["unauthenticated"] == 200
    assert result["exit"] == 0, result["output"]
