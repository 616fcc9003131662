"""What a client submits, what makes it valid, and the task it becomes.

``SubmissionRules.validate_and_build`` is the one place a submission is checked (type,
payload, attempts, timeout, delay or run_at) and turned into a ``Task`` with its queue
delay; it stores and sends nothing (``TaskService`` in domain/services.py does).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.errors import InvalidInput, TaskQueueError
from domain.json_values import check_storable, check_text
from domain.limits import STORED_IN_TASK, TaskDataLimit, check_payload
from domain.models import JSON, Task
from domain.priorities import Priority, needs_priority_queues
from domain.task_types import HandlerRegistry
from domain.tracing import parse_traceparent


@dataclass(frozen=True)
class SubmitRequest:
    type: str
    payload: JSON = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    delay_seconds: float = 0
    run_at: datetime | None = None
    priority: str | None = None
    """``high``, ``default`` or ``low``; None: the task type's (domain/priorities.py)."""
    traceparent: str | None = None
    """The W3C ``traceparent`` the client sent, as received: a malformed one is
    ignored. Not part of what the request asks for (a retry has another one)."""


def fingerprint(request: SubmitRequest) -> str:
    """A digest of what a submission asks for, to tell a retry from a new request."""
    asked = {
        "type": request.type,
        "payload": request.payload,
        "max_attempts": request.max_attempts,
        "timeout_seconds": _number(request.timeout_seconds),
        "delay_seconds": _number(request.delay_seconds),
        "run_at": _instant(request.run_at),
    }
    if request.priority is not None:  # absent: the digest of a request made before it
        asked["priority"] = request.priority
    canonical = json.dumps(
        asked,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _number(value: float | None) -> float | None:
    """Equal numbers written two ways (30 and 30.0) are one request."""
    return None if value is None else float(value)


def _instant(value: datetime | None) -> str | None:
    """One instant in any timezone is one request (a naive time is left as written)."""
    if value is None or value.tzinfo is None:
        return value.isoformat() if value else None
    return value.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class BatchEntry:
    """One task of a batch submission, with its (already scoped) idempotency key."""

    request: SubmitRequest
    idempotency_key: str | None = None


@dataclass(frozen=True)
class SubmitOutcome:
    """What became of one submission: its task (``new`` False when an idempotency key
    found the task it had created), or the domain error that stopped it."""

    task: Task | None = None
    new: bool = True
    error: TaskQueueError | None = None


@dataclass(frozen=True)
class ValidSubmission:
    """A submission that passed the rules: its task, not yet stored, and the delay of
    its queue message (None: held, due past the queue's horizon; the reconciler sends
    it when it comes close)."""

    task: Task
    queue_delay: int | None


@dataclass(frozen=True)
class SubmissionRules:
    """What a submission must satisfy, with the bounds in force."""

    task_types: HandlerRegistry
    default_max_attempts: int
    max_attempts_limit: int
    max_queue_delay_seconds: int
    max_timeout_seconds: float
    max_delay_seconds: float
    priorities: bool = True
    """Whether the queue keeps priorities apart; when not (aws without
    ``TASKQ_PRIORITIES``), any priority but ``default`` is refused."""
    task_data: TaskDataLimit = STORED_IN_TASK

    def validate_and_build(
        self, request: SubmitRequest, now: datetime, *, current_trace: str | None = None
    ) -> ValidSubmission:
        """Check ``request`` (``InvalidInput`` naming the first field that is
        wrong) and make its task, created ``now``.

        The task keeps the trace context it was submitted in: ``current_trace`` (the
        submitter's current span, a child of any header it received), else the
        request's own valid ``traceparent``, else none."""
        if not isinstance(request.type, str) or not request.type.strip():
            raise InvalidInput("type", "must be a non-empty string")
        check_text("type", request.type)
        check_storable("payload", request.payload)
        task_type = self.task_types.get(request.type)
        task_type.validate(request.payload)
        check_payload(request.payload, self.task_data)
        max_attempts = self.check_max_attempts(request.max_attempts, default=task_type.max_attempts)
        timeout = self._timeout(request.timeout_seconds)
        priority = self._priority(request.priority, default=task_type.priority)
        run_at = self._run_at(request, now)
        delay = self._queue_delay(run_at, now)
        task = Task.create(
            request.type,
            request.payload,
            now,
            max_attempts=max_attempts,
            timeout_seconds=timeout,
            run_at=run_at,
            held=delay is None,
            priority=priority,
            traceparent=parse_traceparent(current_trace) or parse_traceparent(request.traceparent),
        )
        return ValidSubmission(task, delay)

    def check_max_attempts(self, max_attempts: int | None, *, default: int | None = None) -> int:
        """The attempt budget asked for, within the limit. When None: ``default`` (the
        task type's), else the engine's default; a type's default above the limit is
        cut to it (the limit is a setting; the type does not know it)."""
        if max_attempts is None:
            if default is not None:
                return max(1, min(default, self.max_attempts_limit))
            max_attempts = self.default_max_attempts
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise InvalidInput("max_attempts", "must be an integer")
        if not 1 <= max_attempts <= self.max_attempts_limit:
            raise InvalidInput("max_attempts", f"must be between 1 and {self.max_attempts_limit}")
        return max_attempts

    def _priority(self, asked: str | None, *, default: Priority) -> Priority:
        """The priority asked for, else the type's. Without priority queues only
        ``default`` is possible: a type's other default is ignored, a request refused."""
        if asked is None:
            return default if self.priorities else Priority.DEFAULT
        priority = Priority.parse(asked)
        if priority is not Priority.DEFAULT and not self.priorities:
            raise needs_priority_queues(priority)
        return priority

    def _timeout(self, timeout: float | None) -> float | None:
        if timeout is None:
            return None
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or not 0 < timeout <= self.max_timeout_seconds
        ):
            raise InvalidInput(
                "timeout_seconds", f"must be a number in (0, {self.max_timeout_seconds}]"
            )
        return float(timeout)

    def _run_at(self, request: SubmitRequest, now: datetime) -> datetime | None:
        delay = request.delay_seconds
        limit = self.max_delay_seconds
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or not 0 <= delay <= limit
        ):
            raise InvalidInput(
                "delay_seconds", f"must be a number of seconds between 0 and {limit}"
            )
        if request.run_at is not None:
            if delay:
                raise InvalidInput("run_at", "give either run_at or delay_seconds, not both")
            if request.run_at.tzinfo is None:
                raise InvalidInput("run_at", "must include a timezone (e.g. Z)")
            run_at = request.run_at.astimezone(UTC)
            if (run_at - now).total_seconds() > limit:
                raise InvalidInput("run_at", "must be at most a year from now")
            return run_at if run_at > now else None
        if not delay:
            return None
        return now + timedelta(seconds=math.ceil(delay))

    def _queue_delay(self, run_at: datetime | None, now: datetime) -> int | None:
        """The message delay for a task due at ``run_at``; None when it is too far off
        for the queue, and the reconciler will enqueue it later."""
        if run_at is None:
            return 0
        seconds = math.ceil((run_at - now).total_seconds())
        return max(0, seconds) if seconds <= self.max_queue_delay_seconds else None
