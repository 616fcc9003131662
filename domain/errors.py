"""One error hierarchy for the whole engine.

Adapters translate low-level failures into these at the boundary; the HTTP layer maps
them to status codes in one place (``entrypoints/http/errors.py``).
"""

from __future__ import annotations


class TaskQueueError(Exception):
    """Base of every error the engine raises on purpose."""


class ValidationError(TaskQueueError):
    """Input that cannot be accepted. ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class UnknownTaskType(ValidationError):
    def __init__(self, task_type: str, known: list[str]) -> None:
        self.task_type = task_type
        super().__init__(
            "type", f"unknown task type {task_type!r}; known types: {', '.join(sorted(known))}"
        )


class TaskNotFound(TaskQueueError):
    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id!r} not found")


class TaskAlreadyExists(TaskQueueError):
    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id!r} already exists")


class IllegalTransition(TaskQueueError):
    """A state change the task's state machine does not allow."""

    def __init__(self, task_id: str, current: str, target: str) -> None:
        self.task_id = task_id
        self.current = current
        self.target = target
        super().__init__(f"task {task_id!r} cannot go from {current} to {target}")


class TaskStateConflict(TaskQueueError):
    """The task's status does not allow the operation (cancel a finished task, retry a
    task that has not failed)."""

    def __init__(self, task_id: str, status: str, action: str) -> None:
        self.task_id = task_id
        self.status = status
        super().__init__(f"task {task_id!r} is {status}: cannot {action}")


class IdempotencyKeyReused(TaskQueueError):
    """An idempotency key was used again with a different request."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            "the Idempotency-Key was already used with a different request; "
            "use a new key for a new task"
        )


class ConcurrencyConflict(TaskQueueError):
    """A conditional write lost a race: the stored task is not what the writer expected."""

    def __init__(self, task_id: str, detail: str = "") -> None:
        self.task_id = task_id
        super().__init__(
            f"task {task_id!r} was changed concurrently" + (f": {detail}" if detail else "")
        )


class InfrastructureError(TaskQueueError):
    """A dependency (database, queue) failed or is unreachable. Safe to retry later."""

    def __init__(self, dependency: str, detail: str) -> None:
        self.dependency = dependency
        self.detail = detail
        super().__init__(f"{dependency} unavailable: {detail}")


class QueueSendFailed(InfrastructureError):
    """Tasks were stored but could not be enqueued; the reconciler will re-send them.

    ``task_ids`` are the stored, unsent tasks in submission order; ``task_id`` is the
    first (the only one for a single submission)."""

    def __init__(self, task_ids: str | list[str], detail: str) -> None:
        self.task_ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
        self.task_id = self.task_ids[0] if self.task_ids else ""
        which = ", ".join(self.task_ids)
        super().__init__("queue", f"task {which} stored but not enqueued: {detail}")


class InvalidCursor(ValidationError):
    def __init__(self) -> None:
        super().__init__("cursor", "invalid or expired pagination cursor")


class PermanentTaskError(Exception):
    """Raised by a handler to fail the task at once, without further retries."""


class ResultTooLarge(PermanentTaskError):
    """A handler's result is larger than a task can store: the attempt fails at once,
    since running it again would produce the same result."""

    def __init__(self, size: int, limit: int, source: str) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the result is too large to store: {size:,} bytes as JSON, at most {limit:,} "
            f"({source}); store large data elsewhere and return a reference"
        )


class HandlerTimeout(Exception):
    """A handler ran past its task type's timeout."""
