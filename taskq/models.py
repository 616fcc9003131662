"""The API's answers as typed models, and what a submit sends.

Answers allow fields they do not declare (``extra="allow"``): a newer server's fields
reach an older client as attributes instead of breaking it. Fields a server of any age
sends are required; the rest have defaults.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FINISHED = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class Answer(BaseModel):
    """Base of every answer: unknown fields are kept, not refused."""

    model_config = ConfigDict(extra="allow")


class Progress(Answer):
    percent: float
    message: str | None = None
    updated_at: datetime | None = None


class TaskInfo(Answer):
    """A task as ``GET /tasks/{id}`` shows it. ``status`` is a string (compare it with
    ``TaskStatus``), so a status a newer server adds does not break this client."""

    id: str
    type: str
    payload: Any = None
    status: str
    attempts: int = 0
    max_attempts: int = 0
    retry_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    traceback: str | None = None
    result: Any = None
    timeout_seconds: float | None = None
    run_at: datetime | None = None
    cancel_requested: bool = False
    isolated: bool = False
    progress: Progress | None = None
    priority: str = "default"
    """``high``, ``default`` or ``low``: which of the queue's priorities it runs from."""

    @property
    def finished(self) -> bool:
        """COMPLETED, FAILED or CANCELLED: it will not change by itself any more."""
        return self.status in FINISHED


class TaskPage(Answer):
    tasks: list[TaskInfo]
    next_cursor: str | None = None


class BatchResult(Answer):
    """One item of a batch: ``status`` is what ``POST /tasks`` would have answered for
    it (201 created, 200 the task its idempotency key already created, else an error)."""

    status: int
    task: TaskInfo | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.task is not None and 200 <= self.status < 300


class BatchResults(Answer):
    results: list[BatchResult]


class DeadLetterPage(Answer):
    """FAILED tasks, newest first, and the dead-letter queue's depth."""

    tasks: list[TaskInfo]
    next_cursor: str | None = None
    dead_letter_queue_depth: int = 0


class Redriven(Answer):
    retried: list[str]
    count: int


class DeadLetterMessage(Answer):
    """A message on the dead-letter queue, as it is (``task_id`` None: poison)."""

    message_id: str
    task_id: str | None = None
    reason: str | None = None
    receive_count: int = 0
    body: str = ""
    body_truncated: bool = False
    body_length: int = 0


class DeadLetterMessages(Answer):
    messages: list[DeadLetterMessage]
    dead_letter_queue_depth: int = 0


class MessagesRedriven(Answer):
    count: int
    dead_letter_queue_depth: int = 0


class Metrics(Answer):
    total_tasks: int
    pending_tasks: int
    processing_tasks: int
    completed_tasks: int
    failed_tasks: int
    cancelled_tasks: int = 0
    dead_letter_tasks: int = 0
    dead_letter_queue_depth: int = 0
    active_workers: int = 0
    queue_depth: int = 0
    queue_in_flight: int = 0
    queue_delayed: int = 0
    oldest_due_task_age_seconds: float = 0.0


class WorkerInfo(Answer):
    worker_id: str
    host: str = ""
    pid: int = 0
    concurrency: int = 0
    in_flight: int = 0
    started_at: datetime | None = None
    last_seen: datetime | None = None


class TaskTypeInfo(Answer):
    """A task type the server runs (``GET /task-types``), with its flow limits."""

    type: str
    timeout_seconds: float
    max_attempts: int
    max_concurrency: int | None = None
    rate: float | None = None
    burst: int | None = None
    paused: bool = False
    running: int | None = None


class TaskTypes(Answer):
    task_types: list[TaskTypeInfo]


class TaskTypeChange(TypedDict, total=False):
    """A change of a task type's flow settings (``PUT /task-types/{type}``): any
    subset; ``None`` removes that limit."""

    max_concurrency: int | None
    rate: float | None
    burst: int | None
    paused: bool


class Workers(Answer):
    workers: list[WorkerInfo]
    active_workers: int = 0


class Schedule(Answer):
    """A periodic schedule (``POST /schedules``): a task of ``type`` with ``payload`` at
    each fire of ``cron`` in ``timezone``; ``next_fire_at`` None while disabled."""

    name: str
    type: str
    cron: str
    payload: Any = None
    timezone: str = "UTC"
    missed: str = "skip"
    enabled: bool = True
    declared: bool = False
    created_at: datetime | None = None
    next_fire_at: datetime | None = None


class Schedules(Answer):
    schedules: list[Schedule]


class ScheduleOptions(TypedDict, total=False):
    """What a schedule may say besides its name, type, cron and payload (``POST
    /schedules``); the server's defaults apply to what it leaves out."""

    timezone: str
    """The IANA timezone ``cron`` is read in (default ``UTC``)."""
    missed: Literal["skip", "run_once"]
    """Fires missed while no worker process ran: ``skip`` them (default), or
    ``run_once``: one task for all of them."""
    enabled: bool


class Health(Answer):
    status: str
    timestamp: datetime | None = None


Priority = Literal["high", "default", "low"]
"""A task's priority (high tasks start first; low ones still progress)."""


class SubmitOptions(TypedDict, total=False):
    """What a submit may say besides the type and payload (``POST /tasks``)."""

    idempotency_key: str
    """Submit at most once per key: a repeat answers with the first task. Without one
    the client makes one up, so its own retries never submit twice."""
    max_attempts: int
    timeout_seconds: float
    delay_seconds: float
    run_at: datetime | str
    """When the task becomes due: an aware datetime or an RFC 3339 string."""
    priority: Priority
    """``high``, ``default`` or ``low`` (unset: the task type's). On aws, anything but
    ``default`` needs the server's ``TASKQ_PRIORITIES=true``."""


class NewTask(BaseModel):
    """A task to submit: the fields of ``POST /tasks`` (an item of a batch)."""

    model_config = ConfigDict(extra="forbid")

    type: str
    payload: Any = None
    idempotency_key: str | None = None
    max_attempts: int | None = None
    timeout_seconds: float | None = None
    delay_seconds: float | None = None
    run_at: datetime | str | None = Field(None, union_mode="left_to_right")
    priority: Priority | None = None

    @field_validator("run_at")
    @classmethod
    def _aware(cls, value: datetime | str | None) -> datetime | str | None:
        if isinstance(value, datetime) and value.utcoffset() is None:
            raise ValueError("run_at needs a timezone (a naive datetime is ambiguous)")
        return value

    @field_serializer("run_at")
    def _rfc3339(self, value: datetime | str | None) -> str | None:
        return value.isoformat() if isinstance(value, datetime) else value

    def body(self, *, with_key: bool) -> dict[str, Any]:
        """The JSON body: unset options left out (the server's defaults apply);
        ``with_key`` keeps the idempotency key in it (a batch item carries its own)."""
        exclude = set() if with_key else {"idempotency_key"}
        data = self.model_dump(mode="json", exclude_none=True, exclude=exclude)
        data.setdefault("payload", None)  # a null payload is still the payload
        return data
