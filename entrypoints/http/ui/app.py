"""The dashboard as its own small Starlette app, served at ``/ui`` by the API's app.

``UiDispatch`` sits in the API's middleware stack before the API-key check: requests
under ``/ui`` go to the dashboard, which authenticates with its session cookie
instead of an ``Authorization`` header; everything else goes on to the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from bootstrap.container import Container
from entrypoints.http.body_limit import BodyLimitMiddleware
from entrypoints.http.client_address import ClientAddress
from entrypoints.http.errors import HANDLED, problem
from entrypoints.http.throttle import TokenBuckets
from entrypoints.http.ui.actions import Actions
from entrypoints.http.ui.csrf import CsrfRejected, LoginRequired
from entrypoints.http.ui.flow import FlowPage
from entrypoints.http.ui.login import Login
from entrypoints.http.ui.pages import Pages
from entrypoints.http.ui.render import STATIC, Renderer
from entrypoints.http.ui.security import SessionGuard
from entrypoints.http.ui.session import SessionCodec, secret_from
from entrypoints.http.ui.workers import WorkerSightings

PREFIX = "/ui"
MAX_FORM_BYTES = 16 * 1024
"""A dashboard form holds a key, a token and a few numbers."""


def build_ui(
    container: Container,
    *,
    digests: Collection[bytes],
    failures: TokenBuckets | None,
    client_address: ClientAddress,
    now: Callable[[], float] = time.time,
) -> Starlette:
    settings = container.settings()
    codec = SessionCodec(secret_from(settings.session_secret))
    renderer = Renderer(codec, login_required=bool(digests))
    # Providers, not instances: each request gets the container's current ones.
    service, messages = container.task_service, container.dead_letter_messages
    pages = Pages(service, messages, renderer, WorkerSightings(), settings.ui_refresh_seconds)
    actions = Actions(service, messages, codec)
    login = Login(codec, renderer, digests, failures, client_address, now)
    flow = FlowPage(container.task_type_limits, container.schedule_service, renderer, codec)

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, LoginRequired):
            if request.url.path.endswith(".json"):
                return JSONResponse({"error": "log in first"}, status_code=401)
            return RedirectResponse(f"{PREFIX}/login", status_code=303)
        if isinstance(exc, CsrfRejected):
            status, message = 403, str(exc)
        elif isinstance(exc, HTTPException):
            status, message = exc.status_code, f"{request.method} {request.url.path}: {exc.detail}"
        else:
            found = problem(exc)
            if found.status == 500:
                raise exc
            status, message = found.status, found.message
        return renderer.page(
            request, "error.html", status_code=status, status=status, error=message
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        message = f"no page at {request.url.path}"
        return renderer.page(request, "error.html", status_code=404, status=404, error=message)

    task = f"{PREFIX}/tasks/{{task_id}}"
    message = f"{PREFIX}/dead-letters/messages/{{message_id}}"
    pages_at = {
        PREFIX: pages.overview,
        f"{PREFIX}/overview.json": pages.overview_json,
        f"{PREFIX}/login": login.form,
        f"{PREFIX}/tasks": pages.tasks,
        f"{PREFIX}/tasks/jump": pages.jump,
        task: pages.task,
        f"{PREFIX}/dead-letters": pages.dead_letters,
        f"{PREFIX}/workers": pages.workers,
        f"{PREFIX}/flow": flow.page,
    }
    actions_at = {
        f"{PREFIX}/login": login.submit,
        f"{PREFIX}/logout": login.logout,
        f"{task}/cancel": actions.cancel,
        f"{task}/retry": actions.retry,
        f"{PREFIX}/dead-letters/redrive": actions.redrive,
        f"{message}/redrive": actions.redrive_message,
        f"{message}/drop": actions.drop_message,
        f"{PREFIX}/task-types/{{type:path}}/pause": flow.pause,
        f"{PREFIX}/task-types/{{type:path}}/resume": flow.resume,
    }
    routes = [
        *(Route(path, page, methods=["GET"]) for path, page in pages_at.items()),
        *(Route(path, action, methods=["POST"]) for path, action in actions_at.items()),
        Mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handled = (*HANDLED, LoginRequired, CsrfRejected)
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SessionGuard, codec=codec, digests=digests, now=now),
            Middleware(BodyLimitMiddleware, max_body_bytes=MAX_FORM_BYTES),
        ],
        exception_handlers={404: not_found, **dict.fromkeys(handled, on_error)},
    )


class UiDispatch:
    """Sends ``/ui`` and everything under it to the dashboard, the rest to ``app``."""

    def __init__(self, app: ASGIApp, ui: ASGIApp) -> None:
        self.app = app
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.ui(scope, receive, send)
        else:
            await self.app(scope, receive, send)
