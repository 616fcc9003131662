from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.coordination_ports import FlowControlStore
from tests.support.backends import (
    FLOW_BACKENDS,
    QUEUE_BACKENDS,
    REPO_BACKENDS,
    QueueHarness,
    RepoHarness,
)


@pytest.fixture(params=sorted(QUEUE_BACKENDS))
async def queue_harness(request: pytest.FixtureRequest) -> AsyncIterator[QueueHarness]:
    async with QUEUE_BACKENDS[request.param]() as harness:
        yield harness


@pytest.fixture(params=sorted(REPO_BACKENDS))
async def repo_harness(request: pytest.FixtureRequest) -> AsyncIterator[RepoHarness]:
    async with REPO_BACKENDS[request.param]() as harness:
        yield harness


@pytest.fixture(params=sorted(FLOW_BACKENDS))
async def flow_store(request: pytest.FixtureRequest) -> AsyncIterator[FlowControlStore]:
    async with FLOW_BACKENDS[request.param]() as store:
        yield store
