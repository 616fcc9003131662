"""What the templates show: domain objects turned into text, nothing else.

Every value here is plain text; the templates escape it (Jinja autoescape), so a
payload, an error or a type name renders as what it is, never as markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.models import MetricsSnapshot, Task, TaskStatus
from entrypoints.http.schemas import Metrics, dump

STATUSES = [status.value for status in TaskStatus]
CANCELLABLE = frozenset({TaskStatus.PENDING, TaskStatus.PROCESSING})

NOTICES = {
    "cancelled": "Cancellation done (a running task stops at its worker).",
    "retried": "Retried: the task is PENDING again.",
    "redriven": "Redrive done.",
    "message-redriven": "The message went back to the queue.",
    "message-dropped": "The message was deleted.",
    "logged-out": "Logged out.",
    "paused": "Paused: its tasks wait, spending no attempt (every worker within seconds).",
    "resumed": "Resumed: its waiting tasks start within a few seconds.",
}
"""The only texts a redirect's ``?notice=`` can show: a URL cannot inject any."""


def when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def overview_numbers(snapshot: MetricsSnapshot) -> dict[str, Any]:
    """The overview's figures: ``GET /metrics``'s, and the live workers' load."""
    numbers: dict[str, Any] = dump(Metrics.of(snapshot))
    numbers["live_workers"] = snapshot.live_workers
    numbers["busy_slots"] = snapshot.busy_slots
    numbers["oldest_due_task_age_seconds"] = round(snapshot.oldest_due_age_seconds, 1)
    return numbers


@dataclass(frozen=True)
class Progress:
    percent: float | None
    message: str
    updated_at: str


def progress_of(task: Task) -> Progress | None:
    """The task's reported progress, where the model carries one (``progress`` with
    ``percent``, ``message``, ``updated_at``); None when there is none."""
    raw = getattr(task, "progress", None)
    if raw is None:
        return None

    def field(name: str) -> Any:
        return raw.get(name) if isinstance(raw, dict) else getattr(raw, name, None)

    percent = field("percent")
    updated = field("updated_at")
    return Progress(
        percent=float(percent) if isinstance(percent, int | float) else None,
        message=str(field("message") or ""),
        updated_at=when(updated) if isinstance(updated, datetime) else str(updated or "—"),
    )


def task_fields(task: Task) -> list[tuple[str, str]]:
    """Every field an operator may want, as label and text."""
    return [
        ("id", task.id),
        ("type", task.type),
        ("status", task.status.value + (" (cancel requested)" if task.cancel_requested else "")),
        ("attempts", f"{task.attempts} of {task.max_attempts}"),
        ("failed attempts", str(task.retry_count)),
        (
            "timeout",
            "type default" if task.timeout_seconds is None else f"{task.timeout_seconds:g} s",
        ),
        ("created", when(task.created_at)),
        ("updated", when(task.updated_at)),
        ("due", when(task.run_at) if task.run_at else "at once"),
        ("started", when(task.started_at)),
        ("finished", when(task.finished_at)),
        ("lease expires", when(task.lease_expires_at)),
        ("isolated", "yes: each attempt runs alone" if task.isolated else "no"),
        ("held for the reconciler", "yes" if task.held else "no"),
        ("trace", task.traceparent or "—"),
    ]
