"""The HTTP app under test: a client inside the app's lifespan, and tasks put into a
status the way the API and a worker would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette

from bootstrap.container import Container
from domain.models import Task


@asynccontextmanager
async def serve_app(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client for ``app``, inside its lifespan (startup before, shutdown after)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


Serve = Callable[[Starlette], AbstractAsyncContextManager[httpx.AsyncClient]]
"""The type of ``serve_app``, as the ``serve`` fixture hands it to a test."""


async def created(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A task submitted through the API (an email by default): its JSON."""
    response = await client.post("/tasks", json={"type": "email", "payload": "a@b.io", **fields})
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


async def processing(container: Container, task_id: str) -> Task:
    """Claim the task the way a worker does."""
    repository = container.repository()
    task: Task = await repository.get(task_id)
    claimed = task.claim("lease-1", datetime.now(UTC), 30)
    await repository.transition(claimed, expected=task)
    return claimed


async def failed(container: Container, task_id: str, error: str = "smtp down") -> Task:
    """Claim the task and fail it for good, as a worker does on a permanent error."""
    repository = container.repository()
    claimed = await processing(container, task_id)
    failed = claimed.fail(error, datetime.now(UTC))
    await repository.transition(failed, expected=claimed)
    return failed


async def completed(container: Container, task_id: str) -> Task:
    """Claim the task and complete it."""
    repository = container.repository()
    claimed = await processing(container, task_id)
    done = claimed.complete({"sent": True}, datetime.now(UTC))
    await repository.transition(done, expected=claimed)
    return done
