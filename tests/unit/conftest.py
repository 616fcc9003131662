"""Fixtures for the HTTP tests: a fresh memory container and app per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app


@asynccontextmanager
async def _serve(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client for ``app``, inside its lifespan (startup before, shutdown after)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


Serve = Callable[[Starlette], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def serve() -> Serve:
    return _serve


@pytest.fixture
def http_container() -> Container:
    return build_container(Settings(backend="memory"))


@pytest.fixture
async def http_client(http_container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with _serve(create_app(http_container)) as client:
        yield client
