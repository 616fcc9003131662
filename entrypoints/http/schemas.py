"""The API's wire shapes: pydantic models for requests and responses.

They validate what comes in, shape what goes out, and are the source of the component
schemas in ``/openapi.json``, so the document and the server cannot drift apart.

Unknown fields in a request body are refused (422 naming the field): a misspelt
option must not be dropped silently. The original service's clients send only ``type``
and ``payload``, which stay as they were.

Ranges are enforced by the domain (``TaskService``), the one place that knows them; the
models check types, and state the ranges in the schema (``json_schema_extra``) from the
same constants, so the document says what the server enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    RootModel,
    WithJsonSchema,
)

from domain.flow_settings import TypeFlow
from domain.limits import (
    DEFAULT_REDRIVE,
    DEFAULT_REDRIVE_PER_SECOND,
    MAX_BATCH_SIZE,
    MAX_DELAY_SECONDS,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_REDRIVE,
    MAX_REDRIVE_PER_SECOND,
    MAX_TIMEOUT_SECONDS,
)
from domain.models import COUNTS_NOTE, MetricsSnapshot, Page, Task, TaskStatus, WorkerInfo
from domain.services import SubmitRequest
from entrypoints.http.flow_schemas import TaskTypeFlowOut
from entrypoints.http.parsing import rfc3339_param

NON_BLANK = r"\S"
"""A string with at least one character that is not white space."""


def rfc3339(moment: datetime) -> str:
    """UTC with a trailing ``Z``, e.g. ``2026-01-01T09:30:00.123456Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _whole_number(value: Any) -> Any:
    """JSON Schema counts ``3.0`` as an integer; so does the API (``3.5`` stays an error)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_whole_number)]
"""An integer in a request: strict (``"3"`` is not one), but ``3.0`` is."""

Timestamp = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class SubmitTask(BaseModel):
    """Body of ``POST /tasks``. Strict types: ``"3"`` is not an integer."""

    model_config = ConfigDict(strict=True, extra="forbid")

    type: str = Field(
        description="A registered task type, e.g. `email`.",
        json_schema_extra={"minLength": 1, "pattern": NON_BLANK},
    )
    payload: Any = Field(
        None,
        description="Any JSON value the task type accepts (existing clients send a string); "
        "nested at most 32 levels, and strings hold no lone surrogates.",
    )
    max_attempts: Integer | None = Field(
        None,
        description="Attempts before the task fails (default 3; at least 1, at most the "
        "configured limit).",
        json_schema_extra={"minimum": 1},  # the maximum is the server's: see openapi.py
    )
    timeout_seconds: float | None = Field(
        None,
        description="Per-attempt timeout in seconds; defaults to the task type's.",
        json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_TIMEOUT_SECONDS},
    )
    delay_seconds: float = Field(
        0,
        description="Seconds before the task is first delivered (rounded up; at most about "
        "a year). Delays past the queue's 15 minutes are held by the engine.",
        json_schema_extra={"minimum": 0, "maximum": MAX_DELAY_SECONDS},
    )
    run_at: str | None = Field(
        None,
        description="When the task becomes due: an RFC 3339 timestamp with a timezone "
        "(e.g. `2026-01-01T09:30:00Z`), at most a year ahead; a past time means now. "
        "Give either `run_at` or `delay_seconds`.",
        json_schema_extra={"format": "date-time"},
    )
    priority: Literal["high", "default", "low"] | None = Field(
        None,
        description="`high`, `default` or `low`: high tasks start before the others, low "
        "ones after (by weight: low still progresses). Unset: the task type's priority. "
        "On aws anything but `default` needs `TASKQ_PRIORITIES=true` (else 422).",
    )

    def to_request(self, traceparent: str | None = None) -> SubmitRequest:
        fields = self.model_dump(exclude={"run_at", "idempotency_key"})
        run_at = rfc3339_param("run_at", self.run_at)
        return SubmitRequest(**fields, run_at=run_at, traceparent=traceparent)


class BatchItem(SubmitTask):
    """One task of ``POST /tasks/batch``: the fields of ``POST /tasks``, plus an
    optional idempotency key (the ``Idempotency-Key`` header of a single submit)."""

    idempotency_key: str | None = Field(
        None,
        description="Like the `Idempotency-Key` header of `POST /tasks` (printable "
        "characters): the same key with the same task answers 200 with the task it "
        "created; with a different task, 409.",
        json_schema_extra={"minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH},
    )


class SubmitBatch(BaseModel):
    """Body of ``POST /tasks/batch``. Each item is validated on its own."""

    model_config = ConfigDict(strict=True, extra="forbid")

    tasks: list[Any] = Field(
        description="Tasks, each with the fields of `POST /tasks` (see `BatchItem`). Each "
        "is validated on its own: an invalid one is reported in its result.",
        json_schema_extra={
            # Any item is accepted here and answered in its own result; BatchItem is
            # what a valid one holds.
            "items": {"anyOf": [{"$ref": "#/components/schemas/BatchItem"}, {}]},
            "minItems": 1,
            "maxItems": MAX_BATCH_SIZE,
        },
    )


class BatchResult(BaseModel):
    status: int = Field(
        description="201 created; 200 the task an idempotency key already created; "
        "409 the key was used with a different request; 422 invalid (nothing stored); "
        "503 a dependency failed (the task was not created: submit it again later)."
    )
    task: TaskOut | None = Field(None, description="Set with 200 and 201.")
    error: str | None = Field(None, description="Set with 4xx and 5xx: what is wrong.")
    task_id: str | None = Field(
        None, description="No longer set: a task that could not be enqueued is not stored."
    )


class BatchResults(BaseModel):
    results: list[BatchResult] = Field(description="One per submitted task, in input order.")


class RetryTask(BaseModel):
    """Optional body of ``POST /tasks/{task_id}/retry``."""

    model_config = ConfigDict(strict=True, extra="forbid")

    max_attempts: Integer | None = Field(
        None,
        description="Further attempts the task gets (default 3; at least 1, at most the "
        "configured limit). Attempts so far are kept.",
        json_schema_extra={"minimum": 1},  # the maximum is the server's: see openapi.py
    )


class Redrive(BaseModel):
    """Body of ``POST /dead-letters/redrive`` (every field optional)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    type: str | None = Field(
        None,
        description="Only FAILED tasks of this type.",
        json_schema_extra={"minLength": 1, "pattern": NON_BLANK},
    )
    limit: Integer = Field(
        DEFAULT_REDRIVE,
        description="At most this many tasks.",
        json_schema_extra={"minimum": 1, "maximum": MAX_REDRIVE},
    )
    per_second: float | None = Field(
        None,
        description=f"Retry at most this many tasks a second (default "
        f"{DEFAULT_REDRIVE_PER_SECOND:g}), so a redrive does not flood the workers.",
        json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_REDRIVE_PER_SECOND},
    )


class Redriven(BaseModel):
    retried: list[str] = Field(description="Ids of the tasks retried (now PENDING).")
    count: int


class ProgressOut(BaseModel):
    """What the task's handler last reported of its progress."""

    percent: float = Field(ge=0, le=100)
    message: str | None
    updated_at: Timestamp = Field(description="When the handler reported it.")


class TaskOut(BaseModel):
    """A task as the API shows it. Lease tokens and versions stay internal."""

    id: str
    type: str
    payload: Any
    status: TaskStatus
    attempts: int
    max_attempts: int
    retry_count: int = Field(description="Failed attempts so far.")
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    error: str | None = Field(description="The last error, truncated.")
    traceback: str | None = Field(
        description="Where the last failed attempt's handler raised (or was when its time "
        "ran out), truncated to its last 4 KiB; null when there is none.",
    )
    result: Any = Field(description="What the handler returned, once COMPLETED.")
    timeout_seconds: float | None
    run_at: Timestamp | None = Field(description="When a delayed task becomes due.")
    cancel_requested: bool = Field(
        description="A PROCESSING task asked to cancel: its worker stops the handler and the "
        "task ends CANCELLED."
    )
    isolated: bool = Field(
        description="An attempt of this task was lost (its worker process crashed or was "
        "killed): its later attempts each run alone in a child process, so a crash is "
        "attributed to the task that caused it."
    )
    progress: ProgressOut | None = Field(
        description="What the handler last reported of its progress (at most one write a "
        "second is kept, the latest report wins); null if it never reported.",
    )
    priority: Literal["high", "default", "low"] = Field(
        description="The queue priority its messages go to (set at submit, else its type's)."
    )

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        return cls(
            id=task.id,
            type=task.type,
            payload=task.payload,
            status=task.status,
            attempts=task.attempts,
            max_attempts=task.max_attempts,
            retry_count=task.retry_count,
            created_at=task.created_at,
            updated_at=task.updated_at,
            started_at=task.started_at,
            finished_at=task.finished_at,
            error=task.error,
            traceback=task.traceback,
            result=task.result,
            timeout_seconds=task.timeout_seconds,
            run_at=task.run_at,
            cancel_requested=task.cancel_requested,
            isolated=task.isolated,
            priority=task.priority.value,
            progress=None
            if task.progress is None
            else ProgressOut(
                percent=task.progress.percent,
                message=task.progress.message,
                updated_at=task.progress.updated_at,
            ),
        )


class TaskPage(BaseModel):
    tasks: list[TaskOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )

    @classmethod
    def of(cls, page: Page) -> TaskPage:
        return cls(tasks=[TaskOut.of(t) for t in page.items], next_cursor=page.next_cursor)


class DeadLetterPage(BaseModel):
    tasks: list[TaskOut] = Field(
        description="FAILED tasks, newest first, each with its `attempts` and last `error`."
    )
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
    dead_letter_queue_depth: int = Field(
        description="Messages in the queue's dead-letter queue (poison messages included)."
    )

    @classmethod
    def of(cls, page: Page, depth: int) -> DeadLetterPage:
        return cls(
            tasks=[TaskOut.of(t) for t in page.items],
            next_cursor=page.next_cursor,
            dead_letter_queue_depth=depth,
        )


class Metrics(BaseModel):
    """Counts per status (see each count for how exact it is), queue depth, workers."""

    total_tasks: int = Field(description=COUNTS_NOTE)
    pending_tasks: int = Field(description=COUNTS_NOTE)
    processing_tasks: int = Field(description=COUNTS_NOTE)
    completed_tasks: int = Field(description=COUNTS_NOTE)
    failed_tasks: int = Field(description=COUNTS_NOTE)
    cancelled_tasks: int = Field(description=COUNTS_NOTE)
    dead_letter_tasks: int = Field(
        description="FAILED tasks: the tasks `GET /dead-letters` lists (a retry takes one "
        "out). Equal to `failed_tasks`; kept under the original service's name."
    )
    dead_letter_queue_depth: int = Field(
        description="Messages in the queue's dead-letter queue, poison messages included."
    )
    active_workers: int = Field(description="Handler slots of the workers alive now.")
    queue_depth: int = Field(description="Messages visible on the queue, ready to deliver.")
    queue_in_flight: int = Field(description="Messages leased by a worker.")
    queue_delayed: int = Field(description="Messages not yet due (delay or retry backoff).")
    oldest_due_task_age_seconds: float = Field(
        description="Seconds the oldest PENDING task that is due has waited to start "
        "(due at its `run_at`, else its creation; a retried task from its failed attempt); "
        "0 when none is due. The signal to page and autoscale on."
    )
    max_backlog: int | None = Field(
        description="PENDING tasks beyond which `POST /tasks` answers 503 with Retry-After "
        "(`TASKQ_MAX_BACKLOG`); null: unbounded."
    )
    backlog_refusals: int = Field(
        description="Submissions this API process refused (503) since it started because "
        "the backlog was full."
    )

    task_types: dict[str, TaskTypeFlowOut] = Field(
        default_factory=dict,
        description="The task types with a concurrency or rate limit, or paused, by name.",
    )

    @classmethod
    def of(
        cls,
        snapshot: MetricsSnapshot,
        flows: Mapping[str, TypeFlow] | None = None,
        deferred: Mapping[tuple[str, str], int] | None = None,
    ) -> Metrics:
        """``flows``: the types' flow state; ``deferred``: this process's deferrals by
        (type, reason)."""
        counts = snapshot.counts
        limited = {
            name: TaskTypeFlowOut.of(flow, deferred or {})
            for name, flow in (flows or {}).items()
            if not flow.limits.free
        }
        return cls(
            task_types=limited,
            total_tasks=snapshot.total,
            pending_tasks=counts.get(TaskStatus.PENDING, 0),
            processing_tasks=counts.get(TaskStatus.PROCESSING, 0),
            completed_tasks=counts.get(TaskStatus.COMPLETED, 0),
            failed_tasks=counts.get(TaskStatus.FAILED, 0),
            cancelled_tasks=counts.get(TaskStatus.CANCELLED, 0),
            dead_letter_tasks=snapshot.dead_letter_tasks,
            dead_letter_queue_depth=snapshot.dead_letter_queue_depth,
            active_workers=snapshot.active_workers,
            queue_depth=snapshot.depth.visible,
            queue_in_flight=snapshot.depth.in_flight,
            queue_delayed=snapshot.depth.delayed,
            oldest_due_task_age_seconds=snapshot.oldest_due_age_seconds,
            max_backlog=snapshot.max_backlog,
            backlog_refusals=snapshot.backlog_refusals,
        )


class WorkerOut(BaseModel):
    worker_id: str
    host: str
    pid: int
    concurrency: int = Field(description="Tasks it runs at once.")
    in_flight: int = Field(description="Tasks it was running at its last heartbeat.")
    started_at: Timestamp
    last_seen: Timestamp

    @classmethod
    def of(cls, info: WorkerInfo) -> WorkerOut:
        return cls(
            worker_id=info.worker_id,
            host=info.host,
            pid=info.pid,
            concurrency=info.concurrency,
            in_flight=info.in_flight,
            started_at=info.started_at,
            last_seen=info.last_seen,
        )


class Workers(BaseModel):
    workers: list[WorkerOut] = Field(description="Workers alive now, in every process.")
    active_workers: int = Field(description="Their concurrency, summed (as in /metrics).")


class Health(BaseModel):
    status: Literal["healthy"]
    timestamp: Timestamp


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(description='Each dependency: "ok", or what is wrong with it.')
    error: str | None = Field(None, description="Set when not ready: the failing dependencies.")


class Error(BaseModel):
    error: str = Field(description="What is wrong, naming the offending field.")
    task_id: str | None = Field(
        None, description="No longer set: a task that could not be enqueued is not stored."
    )


class OpenApiDocument(RootModel[dict[str, Any]]):
    """An OpenAPI 3.1 document."""


def dump(model: BaseModel) -> Any:
    """JSON-ready data, without fields that are unset and optional (``Error.task_id``)."""
    return model.model_dump(mode="json", exclude_unset=True)
