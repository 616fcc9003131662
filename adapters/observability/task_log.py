"""The ``TaskEvents`` port as structured log lines: one per state change, on the
``taskq.tasks`` logger, with the task's id, type, attempt, the worker, durations and
the error (never its payload or result).

Levels cost little at thousands of tasks a second: failures, retries, dead letters,
timeouts, lost leases and recoveries are always logged (WARNING, ERROR); submitted,
started and completed are DEBUG unless ``task_events_at_info`` (metrics count them).
"""

from __future__ import annotations

import logging
from typing import Any

from domain.events import TaskEvent, TaskEventKind

LOGGER_NAME = "taskq.tasks"

_ALWAYS = {
    TaskEventKind.RETRIED: logging.WARNING,
    TaskEventKind.FAILED: logging.ERROR,
    TaskEventKind.DEAD_LETTERED: logging.WARNING,
    TaskEventKind.TIMED_OUT: logging.ERROR,
    TaskEventKind.LEASE_LOST: logging.WARNING,
    TaskEventKind.RECOVERED: logging.WARNING,
    TaskEventKind.CANCELLED: logging.INFO,
}
_ROUTINE = (TaskEventKind.SUBMITTED, TaskEventKind.STARTED, TaskEventKind.COMPLETED)


class TaskEventLog:
    def __init__(
        self, *, task_events_at_info: bool = False, logger: logging.Logger | None = None
    ) -> None:
        routine = logging.INFO if task_events_at_info else logging.DEBUG
        self.levels = {**_ALWAYS, **dict.fromkeys(_ROUTINE, routine)}
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def record(self, event: TaskEvent) -> None:
        level = self.levels[event.kind]
        if not self.logger.isEnabledFor(level):
            return
        self.logger.log(level, "task %s", event.kind.value, extra=event_fields(event))


def event_fields(event: TaskEvent) -> dict[str, Any]:
    """What a log line says about ``event``: only the fields that have a value."""
    task = event.task
    fields: dict[str, Any] = {
        "event": event.kind.value,
        "task_id": task.id,
        "type": task.type,
        "attempt": task.attempts,
        "task_status": task.status.value,
    }
    optional = {
        "worker_id": event.worker_id,
        "queue_wait_seconds": event.queue_wait_seconds,
        "run_seconds": event.run_seconds,
        "total_seconds": event.total_seconds,
        "delay_seconds": event.delay_seconds,
        "error": event.error,
        "traceback": event.traceback,
    }
    fields.update((name, value) for name, value in optional.items() if value is not None)
    return fields
