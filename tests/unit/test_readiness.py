"""/ready reflects whether the service can accept tasks: judged from the outcome of the
writes it makes anyway, with a probe write only while a dependency is failing."""

from __future__ import annotations

from typing import Any

import httpx
from dependency_injector import providers

from adapters.clock import ManualClock
from adapters.memory import InMemoryTaskRepository, InMemoryWorkerRegistry
from bootstrap.container import Container
from domain.errors import InfrastructureError
from domain.health import PROBE_INTERVAL_SECONDS, WriteHealth
from domain.models import WorkerInfo
from entrypoints.http.app import create_app
from tests.support.http_app import Serve


class Disk:
    """A disk that can fill up: every write to the store fails while it is full."""

    def __init__(self) -> None:
        self.full = False
        self.writes = 0

    def write(self) -> None:
        self.writes += 1
        if self.full:
            raise InfrastructureError("memory", "database or disk is full")


class DiskRepository(InMemoryTaskRepository):
    def __init__(self, disk: Disk) -> None:
        super().__init__()
        self.disk = disk

    async def add(self, task: Any) -> None:
        self.disk.write()
        await super().add(task)

    async def transition(self, new: Any, *, expected: Any) -> None:
        self.disk.write()
        await super().transition(new, expected=expected)


class DiskWorkers(InMemoryWorkerRegistry):
    def __init__(self, disk: Disk) -> None:
        super().__init__()
        self.disk = disk

    async def beat(self, info: WorkerInfo, *, ttl_seconds: float) -> None:
        self.disk.write()
        await super().beat(info, ttl_seconds=ttl_seconds)


def on_disk(container: Container, disk: Disk) -> ManualClock:
    clock = ManualClock()
    container.clock.override(providers.Object(clock))
    container.backend_repository.override(providers.Object(DiskRepository(disk)))
    container.workers.override(providers.Object(DiskWorkers(disk)))
    return clock


async def submit(client: httpx.AsyncClient) -> int:
    response = await client.post("/tasks", json={"type": "email", "payload": "a@b.io"})
    return response.status_code


async def test_ready_answers_503_naming_the_store_while_every_write_fails(
    http_container: Container, serve: Serve
) -> None:
    disk = Disk()
    clock = on_disk(http_container, disk)
    async with serve(create_app(http_container)) as client:
        assert await submit(client) == 201
        assert (await client.get("/ready")).status_code == 200
        writes_before_probes = disk.writes
        for _ in range(5):
            assert (await client.get("/ready")).status_code == 200
        assert disk.writes == writes_before_probes, "a healthy service writes nothing to probe"

        disk.full = True
        assert [await submit(client) for _ in range(3)] == [503, 503, 503]
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.headers["Retry-After"]
        body = ready.json()
        assert body["checks"]["queue"] == "ok"
        assert "the last 3 writes failed" in body["checks"]["repository"]
        assert "disk is full" in body["checks"]["repository"]
        assert "repository" in body["error"]

        # No traffic reaches a service that is not ready: /ready probes with one write
        # at most every PROBE_INTERVAL_SECONDS, and recovers when it succeeds.
        probes = disk.writes
        assert (await client.get("/ready")).status_code == 503
        assert disk.writes == probes, "the next probe is not due yet"
        disk.full = False
        assert (await client.get("/ready")).status_code == 503
        await clock.advance(PROBE_INTERVAL_SECONDS)
        assert (await client.get("/ready")).status_code == 200
        assert disk.writes == probes + 1
        assert (await client.get("/workers")).json()["workers"] == [], "the probe leaves"
        assert await submit(client) == 201


async def test_one_failed_write_among_successes_is_not_a_failing_store() -> None:
    health = WriteHealth(ManualClock())
    for _ in range(5):
        health.failed("repository", "throttled")
        health.failed("repository", "throttled")
        health.succeeded("repository")
    assert await health.check() == {}
    health.failed("queue", "unreachable")
    health.failed("queue", "unreachable")
    health.failed("queue", "unreachable")
    assert await health.check() == {"queue": "the last 3 writes failed: unreachable"}


async def test_probes_come_one_interval_apart_and_a_success_half_opens() -> None:
    clock = ManualClock()
    calls: list[float] = []
    disk = Disk()
    disk.full = True

    async def probe() -> None:
        calls.append(clock.monotonic())
        disk.write()

    health = WriteHealth(clock, {"repository": probe})
    for _ in range(3):
        health.failed("repository", "database or disk is full")
    assert "repository" in await health.check()
    assert calls == [], "the first probe comes one interval after the trip"
    await clock.advance(PROBE_INTERVAL_SECONDS)
    assert "repository" in await health.check()
    assert "repository" in await health.check()
    assert len(calls) == 1, "one probe per interval"

    disk.full = False
    await clock.advance(PROBE_INTERVAL_SECONDS)
    assert await health.check() == {}
    health.failed("repository", "database or disk is full")
    assert "repository" in await health.check(), "after a probe, one failure trips again"
    await clock.advance(PROBE_INTERVAL_SECONDS)
    assert await health.check() == {}
    health.succeeded("repository")
    health.failed("repository", "database or disk is full")
    assert await health.check() == {}, "a real write's success clears the record"
