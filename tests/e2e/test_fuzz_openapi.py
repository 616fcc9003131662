"""Scenario 10: schema-driven fuzz of every endpoint (schemathesis, from /openapi.json).

Every operation the app documents is called with generated requests, valid and invalid,
against the in-process app on the memory backend. schemathesis's checks: no 500, every
status code, header and response body as documented, invalid requests refused, a
documented content type. The body
property tests of POST /tasks are in tests/unit/test_http_properties.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from tests.support.processes import running_server

schemathesis = pytest.importorskip("schemathesis")
_checks = pytest.importorskip("schemathesis.specs.openapi.checks")
EXCLUDED_CHECKS = [
    # A schema-valid request may still be refused (422), in two ways no static schema
    # can say: a payload must pass its task type's validator, and a pagination cursor is
    # opaque (only one the server made is valid).
    _checks.positive_data_acceptance,
]

pytestmark = pytest.mark.e2e

API_KEY = "fuzz-key"  # the app is fuzzed as deployed: with keys (the auth checks also call
# each operation without one, or with a wrong one, expecting a 401 or 403)
AUTH = {"Authorization": f"Bearer {API_KEY}"}
FAILURE_BURST = 1_000_000
"""The auth checks send wrong keys on purpose: the throttle of failed authentication
(tested in test_http_auth_throttle.py) would answer them 429 instead of 401/403."""
EXAMPLES = 30
"""Per operation: about 10 s in all."""


def _operations() -> list[Any]:
    app = create_app(
        build_container(
            Settings(backend="memory", api_keys=API_KEY, auth_failure_burst=FAILURE_BURST)
        )
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_endpoint_answers_as_documented_and_never_500(mode: str) -> None:
    # Driven by hand: schemathesis's pytest plugin does not load on this pytest.
    operations = _operations()
    assert len(operations) >= 8, [o.label for o in operations]
    generation_mode = schemathesis.GenerationMode(mode)
    checked = 0
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            case.call_and_validate(headers=AUTH, excluded_checks=EXCLUDED_CHECKS)

        try:
            call()
        except Unsatisfiable:  # an operation without input has no invalid request
            assert mode == "negative", operation.label
            continue
        checked += 1
    assert checked >= (8 if mode == "positive" else 5)


@pytest.mark.slow
def test_the_schemathesis_cli_finds_nothing_with_all_checks(tmp_path: Path) -> None:
    """``schemathesis run --checks all`` (coverage, fuzzing and stateful phases, links from
    a created task to its operations) against a real server."""
    cli = Path(sys.executable).with_name("schemathesis")
    env = {"TASKQ_API_KEYS": API_KEY, "TASKQ_AUTH_FAILURE_BURST": str(FAILURE_BURST)}
    hooks = {"SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("fuzz_hooks.py"))}
    with running_server(tmp_path, "--backend", "memory", env=env, command="api") as server:
        run = subprocess.run(
            [str(cli), "run", f"{server.url}/openapi.json", "--checks", "all"]
            + ["--exclude-checks", ",".join(c.__name__ for c in EXCLUDED_CHECKS)]
            + ["-H", f"Authorization: Bearer {API_KEY}", "--max-examples", "30", "-w", "1"]
            + ["--seed", "1", "--no-color"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **hooks},
        )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
