"""GET /metrics, /health, /ready, /openapi.json, and the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from dependency_injector import providers
from openapi_spec_validator import validate
from starlette.routing import Route

from adapters.clock import SystemClock
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository
from bootstrap.container import Container
from domain.errors import InfrastructureError
from entrypoints.http.app import create_app
from entrypoints.http.operation import openapi_path
from entrypoints.http.schemas import Health, Metrics, Readiness, SubmitTask, TaskOut
from tests.support.http_app import Serve

METRIC_FIELDS = {
    "total_tasks",
    "pending_tasks",
    "processing_tasks",
    "completed_tasks",
    "failed_tasks",
    "cancelled_tasks",
    "dead_letter_tasks",
    "dead_letter_queue_depth",
    "active_workers",
    "queue_depth",
    "queue_in_flight",
    "queue_delayed",
    "oldest_due_task_age_seconds",
    "max_backlog",
    "backlog_refusals",
    "task_types",
}


class DownRepository(InMemoryTaskRepository):
    async def ping(self) -> None:
        raise InfrastructureError("repository", "database is locked")


class DownQueue(InMemoryTaskQueue):
    def __init__(self) -> None:
        super().__init__(SystemClock())

    async def ping(self) -> None:
        raise InfrastructureError("queue", "connection refused")


class HangingQueue(InMemoryTaskQueue):
    def __init__(self) -> None:
        super().__init__(SystemClock())

    async def ping(self) -> None:
        await asyncio.sleep(3600)


# -- metrics ----------------------------------------------------------------------------


async def test_metrics_are_integers_from_the_snapshot(http_client: httpx.AsyncClient) -> None:
    await http_client.post("/tasks", json={"type": "email", "payload": "a@b.io"})

    response = await http_client.get("/metrics")

    assert response.status_code == 200
    metrics = response.json()
    Metrics.model_validate(metrics)
    assert set(metrics) == METRIC_FIELDS
    assert metrics.pop("oldest_due_task_age_seconds") >= 0
    # No built-in type has a limit or is paused (types other tests registered in this
    # process may have).
    assert not {"email", "image-resize", "data-export"} & set(metrics.pop("task_types"))
    assert all(type(v) is int for v in metrics.values())
    assert (metrics["total_tasks"], metrics["pending_tasks"], metrics["queue_depth"]) == (1, 1, 1)


async def test_workers_answers_each_live_worker_with_its_load(
    http_client: httpx.AsyncClient, http_container: Container
) -> None:
    from datetime import timedelta

    from domain.models import WorkerInfo

    assert (await http_client.get("/workers")).json() == {"workers": [], "active_workers": 0}
    now = http_container.clock().now()
    info = WorkerInfo("w-1", "b", 101, 5, 1, now - timedelta(hours=2), now)
    await http_container.workers().beat(info, ttl_seconds=30)

    response = await http_client.get("/workers")

    assert response.status_code == 200
    body = response.json()
    assert body["active_workers"] == 5
    [worker] = body["workers"]
    assert worker["last_seen"].endswith("Z") and worker["started_at"].endswith("Z")
    assert worker | {"last_seen": None, "started_at": None} == {
        "worker_id": "w-1",
        "host": "b",
        "pid": 101,
        "concurrency": 5,
        "in_flight": 1,
        "last_seen": None,
        "started_at": None,
    }


# -- health and readiness ---------------------------------------------------------------


async def test_health_is_200_with_an_rfc3339_utc_timestamp(
    http_client: httpx.AsyncClient,
) -> None:
    response = await http_client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["timestamp"].endswith("Z")
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() is not None
    Health.model_validate(body)


async def test_health_does_not_call_dependencies(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    http_container.repository.override(providers.Object(DownRepository()))
    http_container.queue.override(providers.Object(DownQueue()))

    response = await http_client.get("/health")

    assert response.status_code == 200


async def test_ready_when_every_dependency_answers(http_client: httpx.AsyncClient) -> None:
    response = await http_client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"repository": "ok", "queue": "ok"}}


@pytest.mark.parametrize(
    ("failing", "down", "reason", "working"),
    [
        ("queue", DownQueue, "connection refused", "repository"),
        ("repository", DownRepository, "database is locked", "queue"),
    ],
)
async def test_not_ready_names_the_failing_dependency(
    http_container: Container,
    http_client: httpx.AsyncClient,
    failing: str,
    down: Callable[[], object],
    reason: str,
    working: str,
) -> None:
    getattr(http_container, failing).override(providers.Object(down()))

    response = await http_client.get("/ready")

    assert response.status_code == 503
    assert response.headers["retry-after"]
    body = response.json()
    Readiness.model_validate(body)
    assert body["status"] == "unavailable"
    assert body["checks"] == {failing: f"unavailable: {reason}", working: "ok"}
    assert failing in body["error"] and working not in body["error"]


async def test_a_ping_that_hangs_is_not_ready_after_the_timeout(
    http_container: Container, serve: Serve
) -> None:
    http_container.queue.override(providers.Object(HangingQueue()))
    async with serve(create_app(http_container, ready_timeout=0.05)) as client:
        response = await asyncio.wait_for(client.get("/ready"), timeout=5)

    assert response.status_code == 503
    assert response.json()["checks"]["queue"] == "unavailable: no answer within 0.05 s"


# -- openapi ----------------------------------------------------------------------------


async def test_openapi_documents_exactly_the_routes_the_app_serves(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    document = (await http_client.get("/openapi.json")).json()
    app = create_app(http_container)

    served = {
        (openapi_path(route.path), method.lower())  # /blobs/{key:path} is /blobs/{key}
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or _endpoint_methods(route))
        if method != "HEAD"
    }
    documented = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }
    assert served == documented
    assert ("/tasks", "get") in served and ("/tasks", "post") in served
    assert document["openapi"].startswith("3.1")


def _endpoint_methods(route: Route) -> set[str]:
    """The methods an ``HTTPEndpoint`` class answers (a Route of one has no methods)."""
    return {m for m in ("get", "post", "put", "patch", "delete") if hasattr(route.endpoint, m)}


async def test_openapi_document_is_valid_openapi_3_1(http_client: httpx.AsyncClient) -> None:
    document = (await http_client.get("/openapi.json")).json()

    validate(document)  # raises, naming the first problem


async def test_each_method_of_tasks_has_its_own_description(
    http_client: httpx.AsyncClient,
) -> None:
    operations = (await http_client.get("/openapi.json")).json()["paths"]["/tasks"]

    assert operations["get"]["operationId"] == "listTasks"
    assert operations["post"]["operationId"] == "submitTask"
    assert operations["get"]["summary"] != operations["post"]["summary"]
    assert "requestBody" not in operations["get"]


async def test_openapi_schemas_come_from_the_models_the_server_uses(
    http_client: httpx.AsyncClient,
) -> None:
    document = (await http_client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]

    assert set(schemas["TaskOut"]["properties"]) == set(TaskOut.model_fields)
    assert set(schemas["TaskOut"]["required"]) == set(TaskOut.model_fields)
    assert set(schemas["SubmitTask"]["properties"]) == set(SubmitTask.model_fields)
    assert schemas["SubmitTask"]["required"] == ["type"]
    type_doc = schemas["SubmitTask"]["properties"]["type"]["description"]
    registered = type_doc.split("Registered on this server: ")[1].rstrip(".").split(", ")
    assert {"email", "image-resize", "data-export"} <= set(registered)
    assert set(schemas["Metrics"]["properties"]) == METRIC_FIELDS
    submit = document["paths"]["/tasks"]["post"]
    assert set(submit["responses"]) == {
        "200",
        "201",
        "400",
        "401",
        "403",
        "409",
        "413",
        "422",
        "429",
        "503",
    }
    refs = str(document)
    for name in schemas:
        assert f"#/components/schemas/{name}" in refs


async def test_every_response_of_a_documented_route_is_a_documented_status(
    http_client: httpx.AsyncClient,
) -> None:
    document = (await http_client.get("/openapi.json")).json()
    created = await http_client.post("/tasks", json={"type": "email", "payload": "a@b.io"})
    location = created.headers["location"]

    async def keyed(payload: str) -> httpx.Response:
        body = {"type": "email", "payload": payload}
        return await http_client.post("/tasks", json=body, headers={"Idempotency-Key": "k"})

    calls = [
        ("/tasks", "post", created),
        ("/tasks", "post", await http_client.post("/tasks", content=b"{")),
        ("/tasks", "post", await keyed("a@b.io")),  # created
        ("/tasks", "post", await keyed("a@b.io")),  # the same again
        ("/tasks", "post", await keyed("x@b.io")),  # the key reused
        ("/tasks", "post", await http_client.post("/tasks", json={"type": "x"})),
        ("/tasks", "get", await http_client.get("/tasks", params={"status": "PENDING"})),
        ("/tasks", "get", await http_client.get("/tasks")),
        ("/tasks/{task_id}", "get", await http_client.get(f"/tasks/{created.json()['id']}")),
        ("/tasks/{task_id}", "get", await http_client.get("/tasks/nope")),
        ("/tasks/{task_id}/retry", "post", await http_client.post(f"{location}/retry")),
        (
            "/tasks/{task_id}/retry",
            "post",
            await http_client.post(f"{location}/retry", content=b"["),
        ),
        ("/tasks/{task_id}/retry", "post", await http_client.post("/tasks/nope/retry")),
        (
            "/tasks/{task_id}/retry",
            "post",
            await http_client.post(f"{location}/retry", json={"max_attempts": 0}),
        ),
        ("/tasks/{task_id}/cancel", "post", await http_client.post(f"{location}/cancel")),
        ("/tasks/{task_id}/cancel", "post", await http_client.post(f"{location}/cancel")),
        ("/tasks/{task_id}/cancel", "post", await http_client.post("/tasks/nope/cancel")),
        ("/tasks/batch", "post", await http_client.post("/tasks/batch", json={"tasks": [{}]})),
        ("/tasks/batch", "post", await http_client.post("/tasks/batch", json={"tasks": []})),
        ("/tasks/batch", "post", await http_client.post("/tasks/batch", content=b"[")),
        ("/dead-letters", "get", await http_client.get("/dead-letters")),
        ("/dead-letters", "get", await http_client.get("/dead-letters?limit=0")),
        ("/dead-letters/redrive", "post", await http_client.post("/dead-letters/redrive")),
        (
            "/dead-letters/redrive",
            "post",
            await http_client.post("/dead-letters/redrive", json={"limit": 0}),
        ),
        (
            "/dead-letters/redrive",
            "post",
            await http_client.post("/dead-letters/redrive", content=b"["),
        ),
        ("/metrics", "get", await http_client.get("/metrics")),
        ("/health", "get", await http_client.get("/health")),
        ("/ready", "get", await http_client.get("/ready")),
        ("/openapi.json", "get", await http_client.get("/openapi.json")),
    ]
    for path, method, response in calls:
        assert str(response.status_code) in document["paths"][path][method]["responses"]


# -- app and lifespan ----------------------------------------------------------------


async def test_lifespan_initialises_and_shuts_down_the_container_resources(
    http_container: Container, serve: Serve
) -> None:
    app = create_app(http_container)
    assert not http_container.executor.initialized

    async with serve(app) as client:
        assert http_container.executor.initialized
        assert (await client.get("/health")).status_code == 200

    assert not http_container.executor.initialized


def test_create_app_builds_a_new_app_each_time(http_container: Container) -> None:
    assert create_app(http_container) is not create_app(http_container)


def test_importing_the_app_module_builds_nothing() -> None:
    import entrypoints.http.app as module

    assert not [name for name, value in vars(module).items() if type(value).__name__ == "Starlette"]
