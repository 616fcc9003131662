"""What happens to tasks, told to whoever observes it (metrics, logs).

The use cases (``TaskService``, ``TaskProcessor``, ``Reconciler``) record a
``TaskEvent`` at each state change through the ``TaskEvents`` port; adapters turn them
into Prometheus counters and histograms and into structured log lines. Recording is
synchronous and must be cheap: it happens on the request and delivery paths.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.models import Task
from domain.slot_copy import slot_maker

log = logging.getLogger("taskq.events")


class TaskEventKind(enum.StrEnum):
    SUBMITTED = "submitted"
    STARTED = "started"
    COMPLETED = "completed"
    RETRIED = "retried"
    """An attempt failed with budget left: PENDING again, redelivered after a delay."""
    FAILED = "failed"
    """The task became FAILED (its last attempt failed, or a permanent error)."""
    DEAD_LETTERED = "dead_lettered"
    """Its message went to the dead-letter queue."""
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    """A handler ran past its timeout (the attempt is then retried or failed too)."""
    LEASE_LOST = "lease_lost"
    """A worker lost its lease on the task before it could record the attempt."""
    RECOVERED = "recovered"
    """The reconciler settled a PROCESSING task abandoned by a dead worker."""


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One state change of ``task`` (the task as it is after the change) at ``at``."""

    kind: TaskEventKind
    task: Task
    at: datetime
    worker_id: str | None = None
    error: str | None = None
    traceback: str | None = None
    """The handler's traceback (a failed attempt), or where it was when its time ran
    out (a timeout), when known."""
    delay_seconds: float | None = None
    """A retry: how long until the task is delivered again."""

    @property
    def queue_wait_seconds(self) -> float | None:
        """A start: from when the task was due (``run_at``, else its creation) to this
        start. Only for a task's first attempt: a retry's due time is not stored."""
        task = self.task
        if self.kind is not TaskEventKind.STARTED or task.retry_count or task.started_at is None:
            return None
        due = task.run_at or task.created_at
        return max(0.0, (task.started_at - due).total_seconds())

    @property
    def run_seconds(self) -> float | None:
        """An attempt's end (completed, retried, failed): from its start to ``at``. (A
        timeout is followed by its attempt's retry or failure, which carries it.)"""
        if self.kind not in _ATTEMPT_ENDS or self.task.started_at is None:
            return None
        return max(0.0, (self.at - self.task.started_at).total_seconds())

    @property
    def total_seconds(self) -> float | None:
        """A final state (completed, failed, cancelled): from creation to ``at``."""
        if not self.task.status.is_final or self.kind not in _FINAL_KINDS:
            return None
        return max(0.0, (self.at - self.task.created_at).total_seconds())


new_event: Callable[..., TaskEvent] = slot_maker(TaskEvent)
"""``TaskEvent(...)``, the same parameters, at a third of the cost (domain/slot_copy.py):
for the request and delivery paths, which make one per state change."""

_ATTEMPT_ENDS = frozenset({TaskEventKind.COMPLETED, TaskEventKind.RETRIED, TaskEventKind.FAILED})
_FINAL_KINDS = frozenset({TaskEventKind.COMPLETED, TaskEventKind.FAILED, TaskEventKind.CANCELLED})


class TaskEvents(Protocol):
    """Observes what happens to tasks. ``record`` is called on the request and delivery
    paths, so it must be quick and must not block; it should not raise (``FanOut``
    logs and swallows what one observer raises, so the task's own work goes on)."""

    def record(self, event: TaskEvent) -> None: ...


class NoTaskEvents:
    """Observes nothing: the default of every use case."""

    def record(self, event: TaskEvent) -> None:
        return None


class FanOut:
    """Tells each of ``observers`` every event; one that raises is logged, not passed on."""

    def __init__(self, observers: Sequence[TaskEvents]) -> None:
        self.observers = tuple(observers)

    def record(self, event: TaskEvent) -> None:
        for observer in self.observers:
            try:
                observer.record(event)
            except Exception:
                log.exception("recording a %s event of task %s failed", event.kind, event.task.id)


NO_EVENTS: TaskEvents = NoTaskEvents()
