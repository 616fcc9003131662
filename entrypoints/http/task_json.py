"""A task as the API shows it, as JSON-ready data built straight from the task.

The hot path (``POST /tasks``, ``GET /tasks/{id}``) skips the pydantic model
(``TaskOut.of`` then ``model_dump`` cost more than the rest of a submit's response).
``TaskOut`` stays the schema the OpenAPI document is generated from; a test holds the
two to the same output for every field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.models import Task
from entrypoints.http.schemas import rfc3339


def task_json(task: Task) -> dict[str, Any]:
    """What ``dump(TaskOut.of(task))`` gives, without building the model."""
    progress = task.progress
    return {
        "id": task.id,
        "type": task.type,
        "payload": task.payload,
        "status": task.status.value,
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "retry_count": task.retry_count,
        "created_at": rfc3339(task.created_at),
        "updated_at": rfc3339(task.updated_at),
        "started_at": _moment(task.started_at),
        "finished_at": _moment(task.finished_at),
        "error": task.error,
        "traceback": task.traceback,
        "result": task.result,
        "timeout_seconds": None if task.timeout_seconds is None else float(task.timeout_seconds),
        "run_at": _moment(task.run_at),
        "cancel_requested": task.cancel_requested,
        "isolated": task.isolated,
        "progress": None
        if progress is None
        else {
            "percent": float(progress.percent),
            "message": progress.message,
            "updated_at": rfc3339(progress.updated_at),
        },
        "priority": task.priority.value,
    }


def _moment(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)
