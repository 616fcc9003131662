"""Task types for the end-to-end tests, loaded with ``TASKQ_HANDLERS``."""

from __future__ import annotations

from typing import Any

from domain.task_types import task_type


@task_type("always-fails", timeout_seconds=10)
def always_fails(payload: Any) -> Any:
    raise RuntimeError("the downstream service said no")
