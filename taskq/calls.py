"""Every API request the client makes, described once for the sync and async clients:
its method, path, query, body and headers, whether sending it twice is harmless, how
long the server may hold it, and how its answer is read into a model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from taskq.config import (
    MESSAGE_SEARCH_SECONDS,
    REDRIVE_DEFAULT_LIMIT,
    REDRIVE_PER_SECOND,
    RESENT_PER_SECOND,
)
from taskq.errors import ServerUnreachable, error_for
from taskq.models import (
    BatchResult,
    BatchResults,
    DeadLetterMessage,
    DeadLetterMessages,
    DeadLetterPage,
    Health,
    MessagesRedriven,
    Metrics,
    NewTask,
    Redriven,
    Schedule,
    ScheduleOptions,
    Schedules,
    TaskInfo,
    TaskPage,
    TaskTypeInfo,
    TaskTypes,
    Workers,
)

T = TypeVar("T")
Outcome = httpx.Response | httpx.TransportError
"""What sending a request gives: an answer, or the transport's error."""
Query = dict[str, str | int | float]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how its answer is read."""

    method: str
    path: str
    read: Callable[[Any], T]
    params: Query = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = True
    """Sending it twice does what sending it once does: safe to resend after a
    connection error that may have happened after the server got it."""
    held_seconds: float = 0.0
    """How long the server may take over it by design (a wait, a paced redrive): added
    to the read timeout."""

    def request(self, timeout: float) -> dict[str, Any]:
        """Keyword arguments of ``httpx.Client.request``."""
        return {
            "method": self.method,
            "url": self.path,
            "params": self.params or None,
            "json": self.json,
            "headers": dict(self.headers),
            "timeout": httpx.Timeout(timeout, read=timeout + self.held_seconds),
        }

    def answer(self, outcome: Outcome, base_url: str) -> T:
        """The model the answer holds; the ``TaskqError`` for anything else."""
        if isinstance(outcome, httpx.TransportError):
            raise ServerUnreachable(base_url, outcome) from outcome
        if not outcome.is_success:
            raise error_for(outcome)
        return self.read(None if outcome.status_code == 204 else outcome.json())


def _task_path(task_id: str, action: str = "") -> str:
    return f"/tasks/{quote(task_id, safe='')}{action}"


def _message_path(message_id: str, action: str = "") -> str:
    return f"/dead-letters/messages/{quote(message_id, safe='')}{action}"


def _page(limit: int | None, cursor: str | None, **params: str) -> Query:
    query: Query = dict(params)
    if limit is not None:
        query["limit"] = limit
    if cursor:
        query["cursor"] = cursor
    return query


def _with_key(task: NewTask) -> NewTask:
    """The task with an idempotency key: its own, or a new uuid4, so that resending the
    request cannot create the task twice."""
    if task.idempotency_key is not None:
        return task
    return task.model_copy(update={"idempotency_key": str(uuid.uuid4())})


def submit(task: NewTask) -> Call[TaskInfo]:
    keyed = _with_key(task)
    assert keyed.idempotency_key is not None
    return Call(
        "POST",
        "/tasks",
        TaskInfo.model_validate,
        json=keyed.body(with_key=False),
        headers={"Idempotency-Key": keyed.idempotency_key},
    )


def _results(data: Any) -> list[BatchResult]:
    return BatchResults.model_validate(data).results


def submit_batch(tasks: Sequence[NewTask]) -> Call[list[BatchResult]]:
    """Each item carries its idempotency key (the batch route reads them there)."""
    items = [_with_key(task).body(with_key=True) for task in tasks]
    return Call("POST", "/tasks/batch", _results, json={"tasks": items})


def get_task(task_id: str, wait: int | None = None) -> Call[TaskInfo]:
    """``wait``: seconds the server may hold the answer until the task is finished."""
    params: Query = {"wait": wait} if wait else {}
    return Call("GET", _task_path(task_id), TaskInfo.model_validate, params, held_seconds=wait or 0)


def list_tasks(status: str, limit: int | None, cursor: str | None) -> Call[TaskPage]:
    params = _page(limit, cursor, status=str(status))
    return Call("GET", "/tasks", TaskPage.model_validate, params)


def cancel(task_id: str) -> Call[TaskInfo]:
    # Not idempotent in its answer: cancelling a CANCELLED task is a 409.
    return Call("POST", _task_path(task_id, "/cancel"), TaskInfo.model_validate, idempotent=False)


def retry(task_id: str, max_attempts: int | None) -> Call[TaskInfo]:
    body = {} if max_attempts is None else {"max_attempts": max_attempts}
    path = _task_path(task_id, "/retry")
    return Call("POST", path, TaskInfo.model_validate, json=body, idempotent=False)


def dead_letters(limit: int | None, cursor: str | None) -> Call[DeadLetterPage]:
    return Call("GET", "/dead-letters", DeadLetterPage.model_validate, _page(limit, cursor))


def redrive(task_type: str | None, limit: int | None, per_second: float | None) -> Call[Redriven]:
    body: dict[str, Any] = {"type": task_type, "limit": limit, "per_second": per_second}
    # The server paces the retries, so the answer of a large redrive takes a while.
    paced = (limit or REDRIVE_DEFAULT_LIMIT) / (per_second or REDRIVE_PER_SECOND)
    return Call(
        "POST",
        "/dead-letters/redrive",
        Redriven.model_validate,
        json={k: v for k, v in body.items() if v is not None},
        idempotent=False,
        held_seconds=paced,
    )


def dead_letter_messages(limit: int | None) -> Call[DeadLetterMessages]:
    params: Query = {} if limit is None else {"limit": limit}
    return Call("GET", "/dead-letters/messages", DeadLetterMessages.model_validate, params)


def drop_dead_letter(message_id: str) -> Call[DeadLetterMessage]:
    return _one_message("DELETE", _message_path(message_id))


def resend_dead_letter(message_id: str) -> Call[DeadLetterMessage]:
    return _one_message("POST", _message_path(message_id, "/redrive"))


def _one_message(method: str, path: str) -> Call[DeadLetterMessage]:
    # On SQS the server looks for the message among many: it takes a while.
    read = DeadLetterMessage.model_validate
    return Call(method, path, read, idempotent=False, held_seconds=MESSAGE_SEARCH_SECONDS)


def resend_dead_letters(limit: int | None) -> Call[MessagesRedriven]:
    paced = (limit or REDRIVE_DEFAULT_LIMIT) / RESENT_PER_SECOND
    return Call(
        "POST",
        "/dead-letters/messages/redrive",
        MessagesRedriven.model_validate,
        json={} if limit is None else {"limit": limit},
        idempotent=False,
        held_seconds=paced,
    )


def metrics() -> Call[Metrics]:
    # JSON, not the Prometheus exposition a scraper's Accept gets.
    headers = {"Accept": "application/json"}
    return Call("GET", "/metrics", Metrics.model_validate, headers=headers)


def workers() -> Call[Workers]:
    return Call("GET", "/workers", Workers.model_validate)


def health() -> Call[Health]:
    return Call("GET", "/health", Health.model_validate)


def put_schedule(
    name: str, task_type: str, cron: str, payload: Any, options: ScheduleOptions
) -> Call[Schedule]:
    # Putting the same schedule twice leaves what putting it once does.
    body = {"name": name, "type": task_type, "cron": cron, "payload": payload, **options}
    return Call("POST", "/schedules", Schedule.model_validate, json=body)


def schedules() -> Call[Schedules]:
    return Call("GET", "/schedules", Schedules.model_validate)


def _schedule_path(name: str) -> str:
    return f"/schedules/{quote(name, safe='')}"


def schedule(name: str) -> Call[Schedule]:
    return Call("GET", _schedule_path(name), Schedule.model_validate)


def delete_schedule(name: str) -> Call[None]:
    return Call("DELETE", _schedule_path(name), lambda _: None, idempotent=False)


def task_types() -> Call[TaskTypes]:
    return Call("GET", "/task-types", TaskTypes.model_validate)


def change_task_type(task_type: str, changes: Mapping[str, Any]) -> Call[TaskTypeInfo]:
    # The same change twice leaves the type as once: safe to resend.
    path = f"/task-types/{quote(task_type, safe='')}"
    return Call("PUT", path, TaskTypeInfo.model_validate, json=dict(changes))
