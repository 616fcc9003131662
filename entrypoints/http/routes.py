"""The endpoints. Each one parses, calls one use case, and serialises.

Errors are raised, never answered here: ``errors.py`` maps them to responses.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bootstrap.container import Container
from domain.errors import InfrastructureError, ValidationError
from domain.models import TaskStatus
from domain.services import SubmitRequest, TaskService
from entrypoints.http.auth import ANONYMOUS, CALLER
from entrypoints.http.batch import BatchSubmit
from entrypoints.http.errors import RETRY_AFTER_SECONDS, MalformedTaskId
from entrypoints.http.parsing import (
    check_depth,
    idempotency_key,
    json_object,
    limit_param,
    optional_json_object,
    rfc3339_param,
    status_param,
)
from entrypoints.http.responses import JSONResponse
from entrypoints.http.schemas import (
    MAX_REDRIVE,
    MAX_REDRIVE_PER_SECOND,
    BatchResults,
    DeadLetterPage,
    Health,
    Metrics,
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

logger = logging.getLogger("taskq.http")

READY_TIMEOUT_SECONDS = 2.0
"""How long /ready waits for each dependency's ping."""


class Endpoints:
    def __init__(
        self,
        container: Container,
        openapi: dict[str, Any],
        ready_timeout: float = READY_TIMEOUT_SECONDS,
    ) -> None:
        self._container = container
        self._openapi = openapi
        self._ready_timeout = ready_timeout

    def _service(self) -> TaskService:
        service: TaskService = self._container.task_service()
        return service

    async def tasks(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.submit_task(request)
        return await self.list_tasks(request)

    async def submit_task(self, request: Request) -> Response:
        submit = submit_request(SubmitTask.model_validate(await json_object(request)))
        raw_key = request.headers.get("idempotency-key")
        new = True
        if raw_key is None:
            task = await self._service().submit(submit)
        else:
            key = idempotency_key("Idempotency-Key", raw_key, caller(request))
            task, new = await self._service().submit_idempotent(submit, key)
        return JSONResponse(
            dump(TaskOut.of(task)),
            status_code=201 if new else 200,
            headers={"Location": f"/tasks/{task.id}"},
        )

    async def submit_batch(self, request: Request) -> Response:
        body = SubmitBatch.model_validate(await json_object(request))
        results = await BatchSubmit(self._service(), submit_request, caller(request))(body.tasks)
        return JSONResponse(dump(BatchResults(results=results)))

    async def get_task(self, request: Request) -> Response:
        task = await self._service().get(task_id_param(request))
        return JSONResponse(dump(TaskOut.of(task)))

    async def cancel_task(self, request: Request) -> Response:
        task = await self._service().cancel(task_id_param(request))
        return JSONResponse(dump(TaskOut.of(task)))

    async def retry_task(self, request: Request) -> Response:
        task_id = task_id_param(request)
        body = RetryTask.model_validate(await optional_json_object(request))
        task = await self._service().retry(task_id, extra_attempts=body.max_attempts)
        return JSONResponse(dump(TaskOut.of(task)))

    async def list_tasks(self, request: Request) -> Response:
        query = request.query_params
        status = status_param(query.get("status"))
        limit = limit_param(query.get("limit"))
        page = await self._service().list(status, limit=limit, cursor=query.get("cursor") or None)
        return JSONResponse(dump(TaskPage.of(page)))

    async def dead_letters(self, request: Request) -> Response:
        """FAILED tasks, and how deep the queue's dead-letter queue is."""
        query = request.query_params
        limit = limit_param(query.get("limit"))
        service = self._service()
        page = await service.list(
            TaskStatus.FAILED, limit=limit, cursor=query.get("cursor") or None
        )
        depth = await service.dead_letter_count()
        return JSONResponse(dump(DeadLetterPage.of(page, depth)))

    async def redrive(self, request: Request) -> Response:
        """Retry FAILED tasks (not raw dead-letter queue messages), at a bounded rate."""
        body = Redrive.model_validate(await optional_json_object(request))
        if body.type is not None and not body.type.strip():
            raise ValidationError("type", "must be a non-empty string when given")
        if not 1 <= body.limit <= MAX_REDRIVE:
            raise ValidationError("limit", f"must be between 1 and {MAX_REDRIVE}")
        per_second = body.per_second
        if per_second is not None and not (
            math.isfinite(per_second) and 0 < per_second <= MAX_REDRIVE_PER_SECOND
        ):
            raise ValidationError(
                "per_second", f"must be a number in (0, {MAX_REDRIVE_PER_SECOND:g}]"
            )
        service = self._service()
        if per_second is None:
            retried = await service.retry_failed(task_type=body.type, limit=body.limit)
        else:
            retried = await service.retry_failed(
                task_type=body.type, limit=body.limit, per_second=per_second
            )
        return JSONResponse(dump(Redriven(retried=retried, count=len(retried))))

    async def metrics(self, request: Request) -> Response:
        return JSONResponse(dump(Metrics.of(await self._service().metrics())))

    async def workers(self, request: Request) -> Response:
        live = await self._service().live_workers()
        body = Workers(
            workers=[WorkerOut.of(w) for w in live],
            active_workers=sum(w.concurrency for w in live),
        )
        return JSONResponse(dump(body))

    async def health(self, request: Request) -> Response:
        """Liveness: answers without touching any dependency."""
        now = self._container.clock().now()
        return JSONResponse(dump(Health(status="healthy", timestamp=now)))

    async def ready(self, request: Request) -> Response:
        """Readiness: every dependency answers a ping within the timeout, and the recent
        writes to it did not all fail (``domain/health.py``)."""
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

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self._openapi)

    def routes(self) -> list[Route]:
        return [
            # One route for both methods, so a wrong method gets a 405 naming both.
            Route("/tasks", self.tasks, methods=["GET", "POST"], name="tasks"),
            Route("/tasks/batch", self.submit_batch, methods=["POST"], name="submit_batch"),
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
    """The path's task id; one that is not a UUID cannot exist (404)."""
    task_id: str = request.path_params["task_id"]
    try:
        uuid.UUID(task_id)
    except ValueError:
        raise MalformedTaskId(task_id) from None
    return task_id


def submit_request(body: SubmitTask) -> SubmitRequest:
    check_depth("payload", body.payload)
    return SubmitRequest(
        type=body.type,
        payload=body.payload,
        max_attempts=body.max_attempts,
        timeout_seconds=body.timeout_seconds,
        delay_seconds=body.delay_seconds,
        run_at=rfc3339_param("run_at", body.run_at),
    )
