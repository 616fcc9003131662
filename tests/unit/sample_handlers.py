"""A team's own task types, loaded through TASKQ_HANDLERS in tests."""

from __future__ import annotations

from typing import Any

from domain.task_types import task_type


@task_type("reverse", timeout_seconds=5)
def reverse(payload: Any) -> Any:
    if not isinstance(payload, str):
        raise ValueError("reverse needs a string")
    return payload[::-1]
