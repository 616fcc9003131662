"""Fixtures for the HTTP tests: a fresh memory container and app per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from tests.support.http_app import Serve, serve_app


@pytest.fixture
def serve() -> Serve:
    return serve_app


@pytest.fixture
def http_container() -> Container:
    return build_container(Settings(backend="memory"))


@pytest.fixture
async def http_client(http_container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(create_app(http_container)) as client:
        yield client
