"""``taskq.Client``: the API over HTTP, for sync code (``AsyncClient`` is its twin).

::

    with taskq.Client("http://127.0.0.1:8080", api_key=key) as client:
        handle = client.submit("email", "user@example.com")
        print(handle.result(timeout=30))

One pooled ``httpx.Client``; each method is one request (``taskq/calls.py``), resent on
503, 429 and safe connection errors (``taskq/retry.py``). Errors raise the
``TaskqError`` for the server's answer (``taskq/errors.py``).
"""

from __future__ import annotations

import builtins
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar, Unpack, overload

import httpx

from taskq import calls, models
from taskq.calls import Call
from taskq.connection import ClientOptions, Connection
from taskq.handles import SyncTaskHandle, unparsed
from taskq.models import NewTask, SubmitOptions

T = TypeVar("T")
R = TypeVar("R")
TaskLike = NewTask | Mapping[str, Any]
"""An item of a batch: a ``NewTask``, or a mapping of its fields."""


def new_tasks(tasks: Iterable[TaskLike]) -> builtins.list[NewTask]:
    return [t if isinstance(t, NewTask) else NewTask.model_validate(t) for t in tasks]


class Client:
    """The Task Queue Engine API for sync code.

    ``base_url``: the server (``http(s)://host:port``, ``host:port`` or ``:port``); by
    default ``$TASKQ_URL``, else ``http://127.0.0.1:$PORT``. The options
    (``ClientOptions``): ``api_key`` (default ``$TASKQ_API_KEY``), sent as a Bearer
    token; ``timeout``, seconds one request may take (default 10); ``max_retries``,
    resends of a request answered 503 or 429 or lost where resending is safe (default
    3); ``timing``, for tests, like ``transport`` (an ``httpx`` transport).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._connection = connection = Connection.of(base_url, **options)
        self.base_url, self.timing = connection.base_url, connection.timing
        self._http = httpx.Client(transport=transport, **connection.httpx_options())

    def _run(self, call: Call[T]) -> T:
        retries = 0
        while True:
            outcome = self._send(call)
            delay = self._connection.policy.delay(outcome, retries, call.idempotent)
            if delay is None:
                return call.answer(outcome, self.base_url)
            self.timing.sleep(delay)
            retries += 1

    def _send(self, call: Call[Any]) -> calls.Outcome:
        try:
            return self._http.request(**call.request(self._connection.timeout))
        except httpx.TransportError as exc:
            return exc

    # -- tasks --------------------------------------------------------------------------

    @overload
    def submit(
        self, type: str, payload: Any = None, **options: Unpack[SubmitOptions]
    ) -> SyncTaskHandle[Any]: ...

    @overload
    def submit(
        self,
        type: str,
        payload: Any = None,
        *,
        parse: Callable[[Any], R],
        **options: Unpack[SubmitOptions],
    ) -> SyncTaskHandle[R]: ...

    def submit(
        self,
        type: str,
        payload: Any = None,
        *,
        parse: Callable[[Any], Any] = unparsed,
        **options: Unpack[SubmitOptions],
    ) -> SyncTaskHandle[Any]:
        """Submit a task of ``type`` with ``payload`` (any JSON value); its handle.
        ``parse`` turns the stored result into what ``handle.result()`` returns.
        Options: ``idempotency_key`` (else one is generated, so a resend is safe),
        ``max_attempts``, ``timeout_seconds``, ``delay_seconds``, ``run_at``, ``priority``."""
        task = self._run(calls.submit(NewTask(type=type, payload=payload, **options)))
        return SyncTaskHandle(self, task, parse)

    def submit_batch(self, tasks: Iterable[TaskLike]) -> builtins.list[models.BatchResult]:
        """Submit many tasks in one request; one result per task, in order (an invalid
        task gets its error there, the others are created)."""
        return self._run(calls.submit_batch(new_tasks(tasks)))

    def handle(self, task_id: str) -> SyncTaskHandle[Any]:
        """A handle on a task submitted earlier (read now)."""
        return SyncTaskHandle(self, self.get(task_id))

    def get(self, task_id: str, *, wait: int | None = None) -> models.TaskInfo:
        """The task; with ``wait``, the server answers as soon as it is finished or after
        ``wait`` seconds (at most 30)."""
        return self._run(calls.get_task(task_id, wait))

    def cancel(self, task_id: str) -> models.TaskInfo:
        return self._run(calls.cancel(task_id))

    def retry(self, task_id: str, *, max_attempts: int | None = None) -> models.TaskInfo:
        """Retry a FAILED task with ``max_attempts`` more attempts (server default 3)."""
        return self._run(calls.retry(task_id, max_attempts))

    def list(
        self, status: str, *, limit: int | None = None, cursor: str | None = None
    ) -> models.TaskPage:
        """One page of the tasks with ``status``, newest first."""
        return self._run(calls.list_tasks(status, limit, cursor))

    def iter_tasks(self, status: str, *, page_size: int | None = None) -> Iterator[models.TaskInfo]:
        """Every task with ``status``, newest first, page after page."""
        cursor: str | None = None
        while True:
            page = self.list(status, limit=page_size, cursor=cursor)
            yield from page.tasks
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # -- dead letters -------------------------------------------------------------------

    def dead_letters(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> models.DeadLetterPage:
        """FAILED tasks, newest first, and the dead-letter queue's depth."""
        return self._run(calls.dead_letters(limit, cursor))

    def redrive(
        self, *, type: str | None = None, limit: int | None = None, per_second: float | None = None
    ) -> models.Redriven:
        """Retry FAILED tasks (of ``type``, up to ``limit``) at ``per_second``."""
        return self._run(calls.redrive(type, limit, per_second))

    def dead_letter_messages(self, *, limit: int | None = None) -> models.DeadLetterMessages:
        """The dead-letter queue's messages, poison ones included."""
        return self._run(calls.dead_letter_messages(limit))

    def drop_dead_letter(self, message_id: str) -> models.DeadLetterMessage:
        return self._run(calls.drop_dead_letter(message_id))

    def resend_dead_letter(self, message_id: str) -> models.DeadLetterMessage:
        return self._run(calls.resend_dead_letter(message_id))

    def resend_dead_letters(self, *, limit: int | None = None) -> models.MessagesRedriven:
        return self._run(calls.resend_dead_letters(limit))

    # -- periodic schedules -------------------------------------------------------------

    def put_schedule(
        self,
        name: str,
        type: str,
        cron: str,
        payload: Any = None,
        **options: Unpack[models.ScheduleOptions],
    ) -> models.Schedule:
        """Create the schedule ``name`` (or replace it): a task of ``type`` with
        ``payload`` at each fire of ``cron`` (5 fields, or 6 with seconds first).
        Options: ``timezone`` (default UTC), ``missed`` (``skip`` or ``run_once``),
        ``enabled``."""
        return self._run(calls.put_schedule(name, type, cron, payload, options))

    def schedules(self) -> builtins.list[models.Schedule]:
        """Every schedule, with its next fire (``next_fire_at``)."""
        return self._run(calls.schedules()).schedules

    def schedule(self, name: str) -> models.Schedule:
        """The schedule ``name`` with its next fire; ``NotFound`` when there is none."""
        return self._run(calls.schedule(name))

    def delete_schedule(self, name: str) -> None:
        """Delete the schedule; ``NotFound`` when there is none."""
        self._run(calls.delete_schedule(name))

    # -- task types and their flow limits ------------------------------------------------

    def task_types(self) -> models.TaskTypes:
        """The task types the server runs, with their limits and pause."""
        return self._run(calls.task_types())

    def change_task_type(
        self, task_type: str, **changes: Unpack[models.TaskTypeChange]
    ) -> models.TaskTypeInfo:
        """Change ``max_concurrency``, ``rate``, ``burst`` or ``paused`` of a type
        (``None`` removes a limit), for every worker."""
        return self._run(calls.change_task_type(task_type, changes))

    # -- the service --------------------------------------------------------------------

    def metrics(self) -> models.Metrics:
        return self._run(calls.metrics())

    def workers(self) -> models.Workers:
        return self._run(calls.workers())

    def health(self) -> models.Health:
        return self._run(calls.health())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<taskq.Client {self.base_url}>"
