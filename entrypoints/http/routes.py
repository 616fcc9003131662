"""The endpoints. Each one parses, calls one use case, and serialises.

Errors are raised, never answered here: ``errors.py`` maps them to responses.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bootstrap.container import Container
from domain.errors import InfrastructureError, InvalidInput
from domain.limits import MAX_REDRIVE, MAX_REDRIVE_PER_SECOND
from domain.models import TaskStatus
from domain.services import TaskService
from entrypoints.http.auth import ANONYMOUS, CALLER
from entrypoints.http.batch import read_item, result
from entrypoints.http.errors import RETRY_AFTER_SECONDS, MalformedTaskId
from entrypoints.http.negotiation import JSON, METRICS_TYPES, preferred
from entrypoints.http.operation import (
    CURSOR,
    IDEMPOTENCY_KEY,
    LIMIT,
    STATUS,
    TASK_ID,
    TRACEPARENT,
    WAIT,
    by_method,
    operation,
)
from entrypoints.http.parsing import (
    idempotency_key,
    json_object,
    limit_param,
    may_hold_lone_surrogate,
    optional_json_object,
    status_param,
    wait_param,
)
from entrypoints.http.responses import JSONResponse
from entrypoints.http.schemas import (
    BatchResults,
    DeadLetterPage,
    Health,
    Metrics,
    OpenApiDocument,
    Readiness,
    Redrive,
    Redriven,
    RetryTask,
    SubmitBatch,
    SubmitTask,
    TaskOut,
    TaskPage,
    WorkerOut,
    Workers,
    dump,
)
from entrypoints.http.submit_body import submit_request
from entrypoints.http.task_json import task_json
from entrypoints.worker_first import WorkerFirst

logger = logging.getLogger("taskq.http")

READY_TIMEOUT_SECONDS = 2.0
"""How long /ready waits for each dependency's ping."""

_NO_TASK = {
    404: "No task has this id (or it is not a UUID).",
    503: "The task store is unavailable.",
}
"""The answers of every operation on one task."""


class Endpoints:
    """The handlers, each documented beside its code (``@operation`` and its docstring,
    from which ``openapi.py`` builds ``/openapi.json``)."""

    def __init__(
        self,
        container: Container,
        ready_timeout: float = READY_TIMEOUT_SECONDS,
        first: WorkerFirst | None = None,
    ) -> None:
        self._container = container
        self._ready_timeout = ready_timeout
        self._first = first
        self._task_service: TaskService | None = None

    def _service(self) -> TaskService:
        """The container's singleton, resolved on first use rather than per request."""
        if self._task_service is None:
            self._task_service = self._container.task_service()
        return self._task_service

    @operation(
        "submitTask",
        body=SubmitTask,
        params=[IDEMPOTENCY_KEY, TRACEPARENT],
        responses={
            200: (TaskOut, "The task this Idempotency-Key already created."),
            201: (TaskOut, "Stored (PENDING) and enqueued."),
            409: "The Idempotency-Key was used with a different body, or a conflicting "
            "write (the task id is already in use).",
            422: "Failed validation, naming the field: missing, empty or unknown type, an "
            "unknown field, a bad payload, an out-of-range option, a bad Idempotency-Key.",
            503: "A dependency is down: the task was not created; submit it again later "
            "(with the same Idempotency-Key to be safe).",
        },
    )
    async def submit_task(self, request: Request) -> Response:
        """Submit a task"""
        headers = request.headers
        submit = submit_request(await json_object(request), headers.get("traceparent"))
        raw_key = headers.get("idempotency-key")
        new = True
        first = self._first
        if first is not None:
            await first.wait_turn()
        if raw_key is None:
            task = await self._service().submit(submit)
        else:
            key = idempotency_key("Idempotency-Key", raw_key, caller(request))
            task, new = await self._service().submit_idempotent(submit, key)
        if first is not None and new and not task.held:
            first.accepted()
        return JSONResponse(
            task_json(task),
            status_code=201 if new else 200,
            headers={"Location": f"/tasks/{task.id}"},
        )

    @operation(
        "submitTasks",
        body=SubmitBatch,
        params=[TRACEPARENT],
        responses={
            200: (BatchResults, "One result per task, in input order."),
            422: "`tasks` is missing, not an array, has no items or too many, or the body "
            "has an unknown field. Invalid items are reported in their result instead.",
        },
    )
    async def submit_batch(self, request: Request) -> Response:
        """Submit many tasks, one result per task

        Each task is validated on its own, and all before any is stored: valid tasks are
        created even when others are not. `results` has one entry per task, in input
        order, with the status `POST /tasks` would have answered for it (201 with `task`,
        or an error). The tasks due now are sent to the queue in batches, before they are
        stored: a 503 item was not created, submit it again later.
        """
        body = SubmitBatch.model_validate(await json_object(request, items="tasks"))
        trace = request.headers.get("traceparent")
        suspect = may_hold_lone_surrogate(await request.body())  # the body is cached
        items = [
            read_item(raw, caller(request), trace, check_strings=suspect) for raw in body.tasks
        ]
        first = self._first
        if first is not None:
            await first.wait_turn()
        outcomes = await self._service().submit_batch(items)
        if first is not None:
            first.accepted(sum(1 for o in outcomes if o.task is not None and not o.task.held))
        return JSONResponse(dump(BatchResults(results=[result(o) for o in outcomes])))

    @operation(
        "getTask",
        params=[TASK_ID, WAIT],
        responses={
            200: (TaskOut, "The task (with `wait`: once finished, or when the time is up)."),
            422: "`wait` is not a number of seconds in range.",
            **_NO_TASK,
        },
    )
    async def get_task(self, request: Request) -> Response:
        """One task, at once or once it is finished

        With `wait`, the answer waits up to that many seconds for the task to be
        COMPLETED, FAILED or CANCELLED: a client gets its result in one request instead
        of polling.
        """
        task_id = task_id_param(request)
        wait = wait_param(request.query_params.get("wait"))
        if wait is None:
            task = await self._service().get(task_id)
        else:
            task = await self._container.task_waiting().wait(task_id, wait)
        return JSONResponse(task_json(task))

    @operation(
        "cancelTask",
        params=[TASK_ID],
        responses={
            200: (TaskOut, "CANCELLED, or PROCESSING with cancel_requested."),
            409: "The task is finished; the error names its status.",
            **_NO_TASK,
        },
    )
    async def cancel_task(self, request: Request) -> Response:
        """Cancel a task

        A PENDING (or delayed) task becomes CANCELLED and never runs. A PROCESSING task is
        flagged (`cancel_requested`): its worker cancels the handler cooperatively and the
        task ends CANCELLED. Cancelling twice answers the same.
        """
        task = await self._service().cancel(task_id_param(request))
        return JSONResponse(task_json(task))

    @operation(
        "retryTask",
        body=RetryTask,
        body_required=False,
        params=[TASK_ID],
        responses={
            200: (TaskOut, "The task, PENDING again."),
            404: _NO_TASK[404],
            409: "The task is not FAILED; the error names its status.",
            422: "max_attempts is not an integer in range, or the body has an unknown field.",
            503: "A dependency is down: the task was not changed (still FAILED); retry later.",
        },
    )
    async def retry_task(self, request: Request) -> Response:
        """Retry a FAILED task

        The task goes back to PENDING with a new attempt budget and is enqueued; its
        attempts so far and its last error are kept.
        """
        task_id = task_id_param(request)
        body = RetryTask.model_validate(await optional_json_object(request))
        task = await self._service().retry(task_id, extra_attempts=body.max_attempts)
        return JSONResponse(task_json(task))

    @operation(
        "listTasks",
        params=[STATUS, LIMIT, CURSOR],
        responses={
            200: (TaskPage, "One page of tasks."),
            422: "Missing or invalid status, limit or cursor.",
            503: "The task store is unavailable.",
        },
    )
    async def list_tasks(self, request: Request) -> Response:
        """List tasks with a status, newest first"""
        query = request.query_params
        status = status_param(query.get("status"))
        limit = limit_param(query.get("limit"))
        page = await self._service().list(status, limit=limit, cursor=query.get("cursor") or None)
        return JSONResponse(dump(TaskPage.of(page)))

    @operation(
        "listDeadLetters",
        params=[LIMIT, CURSOR],
        responses={
            200: (DeadLetterPage, "One page of FAILED tasks."),
            422: "Invalid limit or cursor.",
            503: "A dependency is unavailable.",
        },
    )
    async def dead_letters(self, request: Request) -> Response:
        """FAILED tasks (attempts and last error), newest first

        A task that used up its attempts (or failed permanently) is FAILED and its message
        went to the dead-letter queue. `dead_letter_queue_depth` counts the messages there,
        poison messages (with no readable task) included.
        """
        query = request.query_params
        limit = limit_param(query.get("limit"))
        service = self._service()
        page = await service.list(
            TaskStatus.FAILED, limit=limit, cursor=query.get("cursor") or None
        )
        depth = await service.dead_letter_count()
        return JSONResponse(dump(DeadLetterPage.of(page, depth)))

    @operation(
        "redrive",
        body=Redrive,
        body_required=False,
        responses={
            200: (Redriven, "The ids of the tasks retried."),
            422: "Invalid type, limit or per_second, or an unknown field.",
            503: "A dependency failed part way: the tasks retried so far stay retried; send "
            "the request again for the rest.",
        },
    )
    async def redrive(self, request: Request) -> Response:
        """Retry FAILED tasks, all or of one type, at a bounded rate

        Each FAILED task (of `type` if given; up to `limit`) is retried as by
        `POST /tasks/{task_id}/retry` with the default budget, at most `per_second` a
        second, so the answer of a large redrive takes a while. It works on FAILED tasks:
        messages in the queue's dead-letter queue are not moved (a FAILED task's message is
        no longer needed; the retry sends a new one).
        """
        body = Redrive.model_validate(await optional_json_object(request))
        if body.type is not None and not body.type.strip():
            raise InvalidInput("type", "must be a non-empty string when given")
        if not 1 <= body.limit <= MAX_REDRIVE:
            raise InvalidInput("limit", f"must be between 1 and {MAX_REDRIVE}")
        per_second = body.per_second
        if per_second is not None and not (
            math.isfinite(per_second) and 0 < per_second <= MAX_REDRIVE_PER_SECOND
        ):
            raise InvalidInput("per_second", f"must be a number in (0, {MAX_REDRIVE_PER_SECOND:g}]")
        service = self._service()
        if per_second is None:
            retried = await service.retry_failed(task_type=body.type, limit=body.limit)
        else:
            retried = await service.retry_failed(
                task_type=body.type, limit=body.limit, per_second=per_second
            )
        return JSONResponse(dump(Redriven(retried=retried, count=len(retried))))

    @operation(
        "metrics",
        responses={200: (Metrics, "A snapshot."), 503: "A dependency is unavailable."},
    )
    async def metrics(self, request: Request) -> Response:
        """Counts per status, queue depth, live workers

        JSON by default and for `Accept: application/json` or `*/*`. A request whose
        `Accept` prefers `text/plain; version=0.0.4` or `application/openmetrics-text`
        (a Prometheus scraper) gets the Prometheus or OpenMetrics exposition instead.
        On aws the status counts trail writes by up to about 2 s (from the table's stream).
        """
        wanted = preferred(request.headers.get("accept"), METRICS_TYPES)
        snapshot = await self._service().metrics()
        flows = await self._container.task_type_limits().all()  # the store's, now
        if wanted == JSON:
            deferred = self._container.flow_gate().deferred
            return JSONResponse(dump(Metrics.of(snapshot, flows, deferred)))
        self._container.process_metrics()  # registered on first use
        body, content_type = self._container.api_metrics().render(wanted, snapshot)
        return Response(body, headers={"Content-Type": content_type})

    @operation(
        "workers",
        responses={200: (Workers, "Live workers."), 503: "A dependency is unavailable."},
    )
    async def workers(self, request: Request) -> Response:
        """The workers alive now, in every process, with their load"""
        live = await self._service().live_workers()
        body = Workers(
            workers=[WorkerOut.of(w) for w in live],
            active_workers=sum(w.concurrency for w in live),
        )
        return JSONResponse(dump(body))

    @operation("health", responses={200: (Health, "Alive.")})
    async def health(self, request: Request) -> Response:
        """Liveness: the process answers (no dependency is called)"""
        now = self._container.clock().now()
        return JSONResponse(dump(Health(status="healthy", timestamp=now)))

    @operation(
        "ready",
        responses={
            200: (Readiness, "Every dependency answered."),
            503: (Readiness, "A dependency failed; `checks` names it."),
        },
    )
    async def ready(self, request: Request) -> Response:
        """Readiness: the task store and the queue answer and take writes

        Every dependency must answer a ping within the timeout, and the recent writes to
        it must not all have failed (a full disk, a throttled table: see domain/health.py).
        """
        names = ("repository", "queue")
        outcomes = await asyncio.gather(
            self._check(self._container.repository().ping),
            self._check(self._container.queue().ping),
        )
        checks = dict(zip(names, outcomes, strict=True))
        for name, problem in (await self._container.write_health().check()).items():
            checks[name] = f"unavailable: {problem}"
        failing = [f"{name} {outcome}" for name, outcome in checks.items() if outcome != "ok"]
        if not failing:
            return JSONResponse(dump(Readiness(status="ready", checks=checks)))
        readiness = Readiness(
            status="unavailable", checks=checks, error="not ready: " + "; ".join(failing)
        )
        return JSONResponse(
            dump(readiness),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    async def _check(self, ping: Callable[[], Awaitable[None]]) -> str:
        try:
            await asyncio.wait_for(ping(), timeout=self._ready_timeout)
        except InfrastructureError as exc:
            return f"unavailable: {exc.detail}"
        except TimeoutError:
            return f"unavailable: no answer within {self._ready_timeout:g} s"
        except Exception as exc:  # a readiness probe reports, it does not crash
            logger.warning("readiness check raised %s", type(exc).__name__)
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    @operation("openapi", responses={200: (OpenApiDocument, "OpenAPI 3.1")})
    async def openapi(self, request: Request) -> Response:
        """This document"""
        return JSONResponse(request.app.state.openapi)

    def routes(self) -> list[Route]:
        return [
            # One endpoint for both methods, so a wrong method gets a 405 naming both.
            Route("/tasks", by_method(get=self.list_tasks, post=self.submit_task), name="tasks"),
            # An endpoint, not a POST-only route: GET /tasks/batch is a 405, not a task id.
            Route("/tasks/batch", by_method(post=self.submit_batch), name="submit_batch"),
            Route("/tasks/{task_id}", self.get_task, methods=["GET"], name="get_task"),
            Route(
                "/tasks/{task_id}/cancel", self.cancel_task, methods=["POST"], name="cancel_task"
            ),
            Route("/tasks/{task_id}/retry", self.retry_task, methods=["POST"], name="retry_task"),
            Route("/dead-letters", self.dead_letters, methods=["GET"], name="dead_letters"),
            Route("/dead-letters/redrive", self.redrive, methods=["POST"], name="redrive"),
            Route("/metrics", self.metrics, methods=["GET"], name="metrics"),
            Route("/workers", self.workers, methods=["GET"], name="workers"),
            Route("/health", self.health, methods=["GET"], name="health"),
            Route("/ready", self.ready, methods=["GET"], name="ready"),
            Route("/openapi.json", self.openapi, methods=["GET"], name="openapi"),
        ]


def caller(request: Request) -> str:
    """Who is calling, for scoping idempotency keys: set by the auth middleware."""
    return str(request.scope.get(CALLER, ANONYMOUS))


def task_id_param(request: Request) -> str:
    """The path's task id, normalised: every form of a UUID (upper-case, without dashes)
    names the same task. One that is not a UUID cannot exist (404)."""
    task_id: str = request.path_params["task_id"]
    try:
        return str(uuid.UUID(task_id))
    except ValueError:
        raise MalformedTaskId(task_id) from None
