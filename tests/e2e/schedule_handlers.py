"""A task type with a schedule declared on it, for the scheduler's multi-process
tests (loaded with ``TASKQ_HANDLERS``): a task every second."""

from __future__ import annotations

from typing import Any

from domain.task_types import task_type


@task_type("every-second", timeout_seconds=10, schedule="* * * * * *")
def every_second(payload: Any) -> Any:
    return payload
