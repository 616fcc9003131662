"""``taskq.AsyncClient``: the API over HTTP for async code, the twin of ``Client``
(whose docstrings say what each method does).

::

    async with taskq.AsyncClient("http://127.0.0.1:8080", api_key=key) as client:
        handle = await client.submit("email", "user@example.com")
        print(await handle.result(timeout=30))
"""

from __future__ import annotations

import builtins
import types
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar, Unpack, overload

import httpx

from taskq import calls, models
from taskq.calls import Call
from taskq.client import TaskLike, new_tasks
from taskq.connection import ClientOptions, Connection
from taskq.handles import TaskHandle, unparsed
from taskq.models import NewTask, SubmitOptions

T = TypeVar("T")
R = TypeVar("R")


class AsyncClient:
    """The Task Queue Engine API for async code; the arguments are ``Client``'s."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._connection = connection = Connection.of(base_url, **options)
        self.base_url, self.timing = connection.base_url, connection.timing
        self._http = httpx.AsyncClient(transport=transport, **connection.httpx_options())

    async def _run(self, call: Call[T]) -> T:
        retries = 0
        while True:
            outcome = await self._send(call)
            delay = self._connection.policy.delay(outcome, retries, call.idempotent)
            if delay is None:
                return call.answer(outcome, self.base_url)
            await self.timing.async_sleep(delay)
            retries += 1

    async def _send(self, call: Call[Any]) -> calls.Outcome:
        try:
            return await self._http.request(**call.request(self._connection.timeout))
        except httpx.TransportError as exc:
            return exc

    @overload
    async def submit(
        self, type: str, payload: Any = None, **options: Unpack[SubmitOptions]
    ) -> TaskHandle[Any]: ...

    @overload
    async def submit(
        self,
        type: str,
        payload: Any = None,
        *,
        parse: Callable[[Any], R],
        **options: Unpack[SubmitOptions],
    ) -> TaskHandle[R]: ...

    async def submit(
        self,
        type: str,
        payload: Any = None,
        *,
        parse: Callable[[Any], Any] = unparsed,
        **options: Unpack[SubmitOptions],
    ) -> TaskHandle[Any]:
        new = NewTask(type=type, payload=payload, **options)
        return TaskHandle(self, await self._run(calls.submit(new)), parse)

    async def submit_batch(self, tasks: Iterable[TaskLike]) -> builtins.list[models.BatchResult]:
        return await self._run(calls.submit_batch(new_tasks(tasks)))

    async def handle(self, task_id: str) -> TaskHandle[Any]:
        return TaskHandle(self, await self.get(task_id))

    async def get(self, task_id: str, *, wait: int | None = None) -> models.TaskInfo:
        return await self._run(calls.get_task(task_id, wait))

    async def cancel(self, task_id: str) -> models.TaskInfo:
        return await self._run(calls.cancel(task_id))

    async def retry(self, task_id: str, *, max_attempts: int | None = None) -> models.TaskInfo:
        return await self._run(calls.retry(task_id, max_attempts))

    async def list(
        self, status: str, *, limit: int | None = None, cursor: str | None = None
    ) -> models.TaskPage:
        return await self._run(calls.list_tasks(status, limit, cursor))

    async def iter_tasks(
        self, status: str, *, page_size: int | None = None
    ) -> AsyncIterator[models.TaskInfo]:
        cursor: str | None = None
        while True:
            page = await self.list(status, limit=page_size, cursor=cursor)
            for task in page.tasks:
                yield task
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def dead_letters(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> models.DeadLetterPage:
        return await self._run(calls.dead_letters(limit, cursor))

    async def redrive(
        self, *, type: str | None = None, limit: int | None = None, per_second: float | None = None
    ) -> models.Redriven:
        return await self._run(calls.redrive(type, limit, per_second))

    async def dead_letter_messages(self, *, limit: int | None = None) -> models.DeadLetterMessages:
        return await self._run(calls.dead_letter_messages(limit))

    async def drop_dead_letter(self, message_id: str) -> models.DeadLetterMessage:
        return await self._run(calls.drop_dead_letter(message_id))

    async def resend_dead_letter(self, message_id: str) -> models.DeadLetterMessage:
        return await self._run(calls.resend_dead_letter(message_id))

    async def resend_dead_letters(self, *, limit: int | None = None) -> models.MessagesRedriven:
        return await self._run(calls.resend_dead_letters(limit))

    async def put_schedule(
        self,
        name: str,
        type: str,
        cron: str,
        payload: Any = None,
        **options: Unpack[models.ScheduleOptions],
    ) -> models.Schedule:
        return await self._run(calls.put_schedule(name, type, cron, payload, options))

    async def schedules(self) -> builtins.list[models.Schedule]:
        return (await self._run(calls.schedules())).schedules

    async def schedule(self, name: str) -> models.Schedule:
        return await self._run(calls.schedule(name))

    async def delete_schedule(self, name: str) -> None:
        await self._run(calls.delete_schedule(name))

    async def task_types(self) -> models.TaskTypes:
        return await self._run(calls.task_types())

    async def change_task_type(
        self, task_type: str, **changes: Unpack[models.TaskTypeChange]
    ) -> models.TaskTypeInfo:
        return await self._run(calls.change_task_type(task_type, changes))

    async def metrics(self) -> models.Metrics:
        return await self._run(calls.metrics())

    async def workers(self) -> models.Workers:
        return await self._run(calls.workers())

    async def health(self) -> models.Health:
        return await self._run(calls.health())

    async def close(self) -> None:
        await self._http.aclose()

    aclose = close

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<taskq.AsyncClient {self.base_url}>"
