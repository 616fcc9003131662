"""The API's operator features end to end through the app on every backend: memory,
sqlite, and aws on the local AWS endpoint (tests/support/aws.py)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from tests.support.http_app import Serve

EMAIL = {"type": "email", "payload": "a@b.io"}


@pytest.fixture(params=["memory", "sqlite", pytest.param("aws", marks=pytest.mark.aws)])
def backend_container(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    if request.param != "aws":
        yield build_container(
            Settings(backend=request.param, sqlite_path=str(tmp_path / "taskq.db"), api_keys="k")
        )
        return

    from tests.support.aws import aws_endpoint, fresh_resources, use_shared_clients

    endpoint = aws_endpoint()
    with fresh_resources(endpoint, max_receive_count=5) as aws:
        container = build_container(
            Settings(
                backend="aws",
                aws_endpoint_url=endpoint,
                sqs_queue_url=aws.provisioned.queue_url,
                sqs_dlq_url=aws.provisioned.dlq_url,
                dynamodb_table=aws.table_name,
                api_keys="k",
            )
        )
        use_shared_clients(container, endpoint)
        yield container


@pytest.fixture
async def client(backend_container: Container, serve: Serve) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(backend_container)) as client:
        client.headers["Authorization"] = "Bearer k"
        yield client


async def metrics_when(
    client: httpx.AsyncClient, settled: Any, timeout: float = 15.0
) -> dict[str, Any]:
    """``GET /metrics`` once ``settled(answer)`` holds: on aws the status counts come
    from the table's stream and trail the writes by a second or two."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        answer: dict[str, Any] = (await client.get("/metrics")).json()
        if settled(answer) or asyncio.get_running_loop().time() > deadline:
            return answer
        await asyncio.sleep(0.2)


async def fail(container: Container, task_id: str) -> None:
    repository = container.repository()
    task = await repository.get(task_id)
    now = datetime.now(UTC)
    claimed = task.claim("lease", now, 30)
    await repository.transition(claimed, expected=task)
    await repository.transition(claimed.fail("boom", now), expected=claimed)


async def test_cancel_retry_dead_letters_and_redrive(
    backend_container: Container, client: httpx.AsyncClient
) -> None:
    pending = (await client.post("/tasks", json=EMAIL)).json()
    failing = [(await client.post("/tasks", json=EMAIL)).json()["id"] for _ in range(3)]
    for task_id in failing:
        await fail(backend_container, task_id)

    cancelled = await client.post(f"/tasks/{pending['id']}/cancel")
    listed = (await client.get("/dead-letters")).json()
    retried = await client.post(f"/tasks/{failing[0]}/retry", json={"max_attempts": 2})
    redriven = (await client.post("/dead-letters/redrive", json={"per_second": 1000})).json()

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert sorted(t["id"] for t in listed["tasks"]) == sorted(failing)
    assert retried.status_code == 200 and retried.json()["max_attempts"] == 3
    assert sorted(redriven["retried"]) == sorted(failing[1:])
    assert (await client.get("/dead-letters")).json()["tasks"] == []


async def test_batch_run_at_and_idempotency(client: httpx.AsyncClient) -> None:
    run_at = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    items = [EMAIL, {**EMAIL, "run_at": run_at}, {"type": "sms"}, {**EMAIL, "idempotency_key": "b"}]

    batch = (await client.post("/tasks/batch", json={"tasks": items})).json()["results"]
    racers = await asyncio.gather(
        *(client.post("/tasks", json=EMAIL, headers={"Idempotency-Key": "r"}) for _ in range(20))
    )

    assert [r["status"] for r in batch] == [201, 201, 422, 201]
    assert batch[1]["task"]["run_at"] is not None
    assert sorted(r.status_code for r in racers) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in racers}) == 1
    metrics = await metrics_when(client, lambda m: m["total_tasks"] == 4)
    assert metrics["total_tasks"] == 4


# -- hostile input: 422 naming the problem, on every backend ------------------------------


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def raw_json(body: str) -> dict[str, Any]:
    """A body sent byte for byte, so that JSON escapes such as \\ud800 reach the server."""
    return {"content": body.encode(), "headers": {"content-type": "application/json"}}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/tasks", r'{"type": "email", "payload": {"to": "a@b.io", "n": "\ud800"}}', "payload.n"),
        ("/tasks", r'{"type": "email", "payload": {"to": "a@b.io", "\udc00": 1}}', "payload["),
        ("/tasks", r'{"type": "email\ud800", "payload": "a@b.io"}', "type"),
        ("/tasks", r'{"type": "email", "payload": "a@b.io", "run_at": "\ud800"}', "run_at"),
        ("/tasks/batch", r'{"tasks": [], "x\ud800": 1}', '["x\\ud800"]'),
        ("/dead-letters/redrive", r'{"type": "\udfff"}', "type"),
    ],
)
async def test_a_lone_surrogate_in_a_body_is_422_naming_its_path(
    client: httpx.AsyncClient, path: str, body: str, field: str
) -> None:
    response = await client.post(path, **raw_json(body))

    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(field)
    assert "lone surrogate" in response.json()["error"]
    assert (await client.get("/metrics")).json()["total_tasks"] == 0


async def test_a_batch_with_a_lone_surrogate_answers_each_item_and_queues_the_valid_one(
    client: httpx.AsyncClient,
) -> None:
    body = r'{"tasks": [{"type": "email", "payload": "a@b.io"},'
    body += r' {"type": "email", "payload": {"to": "a@b.io", "note": "\ud800"}}]}'

    response = await client.post("/tasks/batch", **raw_json(body))

    assert response.status_code == 200, response.text
    created, refused = response.json()["results"]
    assert created["status"] == 201
    assert refused["status"] == 422 and refused["error"].startswith("payload.note:")
    metrics = await metrics_when(client, lambda m: m["total_tasks"] == 1)
    assert metrics["total_tasks"] == 1
    assert metrics["queue_depth"] == 1, "the valid task has its message"


@pytest.mark.parametrize("path", ["/tasks?status=PENDING", "/dead-letters?limit=5"])
@pytest.mark.parametrize(
    "cursor",
    [
        b64(b"[" * 5000),
        b64(b"[" * 700),
        b64(b'{"c": "\\ud800", "i": "\\udfff", "k": "\\ud800"}'),
        b64(b'{"c": 1, "i": 2, "k": 3}'),
    ],
)
async def test_a_hostile_cursor_is_422(client: httpx.AsyncClient, path: str, cursor: str) -> None:
    await client.post("/tasks", json=EMAIL)

    response = await client.get(f"{path}&cursor={cursor}")

    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("cursor: invalid or expired pagination cursor")
