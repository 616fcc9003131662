"""Tracing is optional: without the otel extra, or with tracing switched off, nothing
of OpenTelemetry is imported; switched on, spans go where the ``OTEL_*`` variables
say. Each case is a fresh interpreter (what is imported is per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.trace_context import TRACE_ID, TRACEPARENT

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import asyncio, json, sys
if sys.argv[1] == "absent":
    sys.modules["opentelemetry"] = None  # as if the extra were not installed
from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from tests.support.http_app import serve_app

async def main():
    container = build_container(Settings(backend="memory"))
    async with serve_app(create_app(container)) as client:
        response = await client.post(
            "/tasks", json={"type": "email", "payload": "a@b.io"},
            headers={"traceparent": sys.argv[2]},
        )
        assert response.status_code == 201, response.text
        [delivery] = await container.queue().receive(
            max_messages=1, visibility_timeout=30, wait_seconds=0
        )
        outcome = await container.processor().process(delivery)
    loaded = [m for m, module in sys.modules.items()
              if m.split(".")[0] == "opentelemetry" and module is not None]
    print(json.dumps({"outcome": outcome, "opentelemetry": sorted(loaded)}))

asyncio.run(main())
"""


def run_probe(case: str, **env: str) -> tuple[dict[str, object], str, str]:
    """Build the app, submit a task over HTTP and run it, in a fresh interpreter with
    ``env`` (and no other ``OTEL_*`` variable): what it reported, its stdout, stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, case, TRACEPARENT],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "completed"
    return report, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("case", "env"),
    [
        ("unset", {}),  # the extra installed, no exporter named: off
        ("off", {"OTEL_TRACES_EXPORTER": "none"}),
        ("disabled", {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}),
        ("absent", {"OTEL_TRACES_EXPORTER": "console"}),  # named, but not installed
    ],
)
def test_without_tracing_nothing_of_opentelemetry_is_imported(
    case: str, env: dict[str, str]
) -> None:
    report, _, stderr = run_probe(case, **env)
    assert report["opentelemetry"] == []
    if case == "absent":
        assert "opentelemetry-sdk" in stderr and "tracing is off" in stderr


def test_the_otel_environment_variables_configure_the_export() -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra")
    report, stdout, _ = run_probe(
        "on", OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="taskq-under-test"
    )
    assert "opentelemetry.sdk.trace" in report["opentelemetry"]  # type: ignore[operator]
    # the console exporter prints each span as an indented JSON object
    spans = json.loads("[" + stdout[: stdout.rindex("}\n{")].replace("}\n{", "},{") + "}]")
    by_name = {span["name"]: span for span in spans}
    run = by_name["run email"]
    request = by_name["POST /tasks"]
    assert run["context"]["trace_id"] == request["context"]["trace_id"] == f"0x{TRACE_ID}"
    assert run["parent_id"] == request["context"]["span_id"]
    assert run["resource"]["attributes"]["service.name"] == "taskq-under-test"


def test_an_exporter_that_is_not_installed_is_named_in_the_error() -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra")
    from adapters.observability.tracing import exporter

    with pytest.raises(ValueError, match=r"OTEL_TRACES_EXPORTER names 'jaeger'.*console"):
        exporter("jaeger")
