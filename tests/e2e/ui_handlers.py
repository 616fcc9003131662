"""Task types for the dashboard's browser tests, loaded with ``TASKQ_HANDLERS``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domain.errors import PermanentTaskError
from domain.task_types import task_type


@task_type("gated", timeout_seconds=10)
def gated(payload: Any) -> Any:
    """Fails for good until the file ``payload["gate"]`` exists, then completes: a task
    an operator can watch fail, fix, and retry."""
    if not Path(str(payload["gate"])).exists():
        raise PermanentTaskError(f"the gate {payload['gate']} is closed")
    return {"passed": payload["gate"]}


@task_type("declined", timeout_seconds=10)
def declined(payload: Any) -> Any:
    """Always fails for good: the failures a live chart shows next to completions."""
    raise PermanentTaskError(f"the card {payload} was declined")
