"""The Starlette application factory. Nothing is built at import time."""

from __future__ import annotations

from typing import Any

from dependency_injector.ext.starlette import Lifespan
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from bootstrap.container import Container
from bootstrap.settings import Settings
from bootstrap.tracing import instrument_http
from domain.tracing import NoTracer
from entrypoints.http.auth import AuthMiddleware, load_key_digests
from entrypoints.http.blob_routes import UPLOAD, BlobEndpoints
from entrypoints.http.body_limit import BodyLimitMiddleware
from entrypoints.http.client_address import ClientAddress
from entrypoints.http.dead_letter_routes import DeadLetterEndpoints
from entrypoints.http.errors import CatchAllMiddleware, exception_handlers
from entrypoints.http.fast_path import FastPath
from entrypoints.http.observe import ObserveMiddleware
from entrypoints.http.openapi import build_openapi
from entrypoints.http.routes import READY_TIMEOUT_SECONDS, Endpoints
from entrypoints.http.schedule_routes import ScheduleEndpoints
from entrypoints.http.task_type_routes import TaskTypeEndpoints, registered
from entrypoints.http.throttle import TokenBuckets
from entrypoints.http.ui import UiDispatch, build_ui
from entrypoints.worker_first import WorkerFirst


class TaskqApp(Starlette):
    """The Starlette app, with ``POST /tasks`` and ``GET /tasks/{task_id}`` served by
    ``fast`` in front of its middleware stack (the routes stay registered: the stack
    serves what ``fast`` does not take, and the OpenAPI document lists them)."""

    fast: FastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast
        if fast is not None and fast.takes(scope):
            scope["app"] = self
            await fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    container: Container,
    *,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
    first: WorkerFirst | None = None,
) -> Starlette:
    """``first``: shared with a worker on the same event loop, which goes first."""
    settings: Settings = container.settings()
    endpoints = Endpoints(container, ready_timeout=ready_timeout, first=first)
    task_types = registered(container.task_types())
    limits = container.submission_limits()
    monotonic = container.clock().monotonic
    limiter = None
    if settings.rate_limit_per_second is not None:
        limiter = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst, monotonic)
    failures = TokenBuckets(
        settings.auth_failures_per_minute / 60, settings.auth_failure_burst, monotonic
    )
    digests = load_key_digests(settings)
    client_address = ClientAddress(settings.trusted_proxy_networks)
    ui = build_ui(container, digests=digests, failures=failures, client_address=client_address)
    observing: list[
        Middleware
    ] = []  # TASKQ_METRICS=false without an access log: no middleware at all
    observer = container.http_metrics() if settings.metrics else None
    if settings.metrics or settings.access_log:
        observing = [Middleware(ObserveMiddleware, observer=observer, access=settings.access_log)]
    auth = _auth(digests, limiter, failures, client_address)
    app = TaskqApp(
        routes=[
            *endpoints.routes(),
            *DeadLetterEndpoints(container.dead_letter_messages).routes(),
            *TaskTypeEndpoints(
                task_types, limits.default_max_attempts, container.task_type_limits
            ).routes(),
            *ScheduleEndpoints(container.schedule_service).routes(),
            *BlobEndpoints(container.blobs, max_blob_bytes=settings.max_blob_bytes).routes(),
        ],
        middleware=[
            *observing,
            Middleware(CatchAllMiddleware),
            Middleware(UiDispatch, ui=ui),  # /ui: the dashboard, its session instead of keys
            *([] if auth is None else [Middleware(AuthMiddleware, **auth)]),
            Middleware(
                BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes, exempt=[UPLOAD]
            ),
        ],
        exception_handlers=exception_handlers(),
        # The container's resources (the selected backend's) open on startup and close
        # on shutdown. `taskq serve` runs uvicorn with lifespan="off" and owns them.
        lifespan=Lifespan(container),
    )
    tracer = container.tracer()
    instrument_http(app, tracer)
    if isinstance(tracer, NoTracer):  # a traced request gets its span from the stack
        app.fast = FastPath(
            submit=endpoints.submit_task,
            get=endpoints.get_task,
            max_body_bytes=settings.max_body_bytes,
            # The same check as the stack's layer (and the same token buckets).
            admission=None if auth is None else AuthMiddleware(app, **auth),
            observer=observer,
            access=settings.access_log,
        )
    app.state.openapi = build_openapi(
        app.routes,
        task_types=task_types,
        max_attempts=limits.max_attempts_limit,
        max_body_bytes=settings.max_body_bytes,
    )
    return app


def _auth(
    digests: frozenset[bytes],
    limiter: TokenBuckets | None,
    failures: TokenBuckets,
    client_address: ClientAddress,
) -> dict[str, Any] | None:
    """The auth middleware's options; None without keys or a rate limit, where it would
    only name every caller anonymous (``caller`` does so when it is absent)."""
    if not digests and limiter is None:
        return None
    return {
        "digests": digests,
        "limiter": limiter,
        "failures": failures,
        "client_address": client_address,
    }
