"""One error hierarchy for the whole engine.

Adapters translate low-level failures into these at the boundary; the HTTP layer maps
them to status codes in one place (``entrypoints/http/errors.py``).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING


class TaskQueueError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidInput(TaskQueueError):
    """Input that cannot be accepted (422). ``field`` names the offending input.

    Formerly ``ValidationError``: that name still works, with a ``DeprecationWarning``,
    and was renamed so that it is never confused with pydantic's ``ValidationError``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class UnknownTaskType(InvalidInput):
    def __init__(self, task_type: str, known: list[str]) -> None:
        self.task_type = task_type
        super().__init__(
            "type", f"unknown task type {task_type!r}; known types: {', '.join(sorted(known))}"
        )


class TaskNotFound(TaskQueueError):
    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id!r} not found")


class DeadLetterNotFound(TaskQueueError):
    """No message with this id is on the dead-letter queue (it never was, or it was
    dropped or redriven since). ``detail`` says how far a backend looked when it could
    not look at every message (SQS)."""

    def __init__(self, message_id: str, detail: str = "") -> None:
        self.message_id = message_id
        shown = message_id if len(message_id) <= 64 else message_id[:64] + "..."
        super().__init__(f"dead letter {shown!r} not found" + (f": {detail}" if detail else ""))


class ScheduleNotFound(TaskQueueError):
    """No schedule is stored under this name (404)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"schedule {name!r} not found")


class BlobNotFound(TaskQueueError):
    """No blob is stored under this key (404)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"blob {key!r} not found")


class BlobTooLarge(TaskQueueError):
    """A blob over the store's size limit (413): nothing was stored."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the blob is larger than the limit of {limit:,} bytes")


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


class TaskTypeNotFound(TaskQueueError):
    """No task type of this name is registered on this server (404)."""

    def __init__(self, task_type: str, known: list[str]) -> None:
        self.task_type = task_type
        shown = task_type if len(task_type) <= 64 else task_type[:64] + "..."
        super().__init__(
            f"task type {shown!r} is not registered; known types: {', '.join(sorted(known))}"
        )


class FlowRecordConflict(TaskQueueError):
    """A compare-and-set of a task type's flow record (domain/flow_control.py) lost a
    race: another process changed it first. Read it again and retry."""

    def __init__(self, task_type: str) -> None:
        self.task_type = task_type
        super().__init__(f"the flow record of task type {task_type!r} was changed concurrently")


class InfrastructureError(TaskQueueError):
    """A dependency (database, queue) failed or is unreachable. Safe to retry later."""

    def __init__(self, dependency: str, detail: str) -> None:
        self.dependency = dependency
        self.detail = detail
        super().__init__(f"{dependency} unavailable: {detail}")


class QueueSendFailed(InfrastructureError):
    """Tasks could not be enqueued. A message is sent before its task is written, so
    a submission that raises this created nothing, and an operator's retry changed
    nothing (the task stays FAILED): the request can be made again.

    ``task_ids`` are the unsent tasks in submission order; ``task_id`` is the first
    (the only one for a single submission)."""

    def __init__(self, task_ids: str | list[str], detail: str) -> None:
        self.task_ids = [task_ids] if isinstance(task_ids, str) else list(task_ids)
        self.task_id = self.task_ids[0] if self.task_ids else ""
        self.reason = detail
        """Why the send failed, without the ids."""
        which = ", ".join(self.task_ids)
        super().__init__("queue", f"task {which} not enqueued: {detail}")


class InvalidCursor(InvalidInput):
    """A pagination cursor the store did not make. ``reason`` says what gave it away."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        detail = f" ({reason})" if reason else ""
        super().__init__(
            "cursor", f"invalid or expired pagination cursor{detail}: pass next_cursor as given"
        )


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
    """A handler ran past its task type's timeout. ``stack`` is where it was when its
    time ran out, when Python can tell (an async handler's coroutine, a sync handler's
    thread); None otherwise (an isolated handler's child process)."""

    def __init__(self, message: str, stack: str | None = None) -> None:
        super().__init__(message)
        self.stack = stack


class HandlerCrashed(Exception):
    """A handler running isolated ended its process without a result (a signal such as
    SIGKILL or SIGSEGV, ``os._exit``): it crashed the worker process it ran in.
    ``exit_code`` is the process's exit status; ``signal`` is set when a signal ended it."""

    def __init__(self, task_type: str, exit_code: int | None, signal: str | None = None) -> None:
        self.task_type = task_type
        self.exit_code = exit_code
        self.signal = signal
        how = f"killed by signal {signal}" if signal else f"exit code {exit_code}"
        super().__init__(
            f"the {task_type!r} handler crashed its worker process ({how}) before returning "
            "a result"
        )


class HandlerNotIsolatable(PermanentTaskError):
    """A handler that cannot be sent to a child process (a lambda, a closure, a method):
    only a module-level function is found again by its name there."""

    def __init__(self, task_type: str, detail: str) -> None:
        self.task_type = task_type
        super().__init__(
            f"the {task_type!r} handler cannot run isolated in a child process ({detail}); "
            "register a module-level function"
        )


if TYPE_CHECKING:
    ValidationError = InvalidInput
    """Deprecated: the former name of ``InvalidInput``."""
else:

    def __getattr__(name: str) -> object:
        if name == "ValidationError":
            warnings.warn(
                "domain.errors.ValidationError is deprecated: use domain.errors.InvalidInput",
                DeprecationWarning,
                stacklevel=2,
            )
            return InvalidInput
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class BacklogFull(TaskQueueError):
    """A local backend's backlog (accepted tasks that have not started: PENDING) is at
    its bound (``TASKQ_MAX_BACKLOG``): nothing was created; submit again later."""

    def __init__(self, pending: int, limit: int, adding: int = 1) -> None:
        self.pending = pending
        self.limit = limit
        self.adding = adding
        super().__init__(
            f"the backlog is full: {pending:,} tasks wait to start and at most {limit:,} may "
            f"(TASKQ_MAX_BACKLOG); {adding} more not accepted, nothing was created: "
            "retry later"
        )
