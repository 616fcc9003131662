"""Task types for the observability end-to-end tests, loaded with ``TASKQ_HANDLERS``."""

from __future__ import annotations

import time
from typing import Any

from domain.registry import task_type


@task_type("observe-ok", timeout_seconds=10)
def succeeds(payload: Any) -> Any:
    return {"ok": True}


@task_type("observe-fails", timeout_seconds=10)
def fails(payload: Any) -> Any:
    raise ValueError("observe-fails was told to fail")


@task_type("observe-stuck", timeout_seconds=0.5)
def stuck_in_a_loop(payload: Any) -> Any:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # past its timeout, in a frame of its own
        time.sleep(0.01)
    return None
