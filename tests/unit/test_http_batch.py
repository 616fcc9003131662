"""POST /tasks/batch: per-item results in input order, one batched send."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from adapters.clock import SystemClock
from adapters.memory import InMemoryTaskQueue
from bootstrap.container import Container
from domain.errors import InfrastructureError
from domain.priorities import Priority
from entrypoints.http.schemas import BatchResults


class CountingQueue(InMemoryTaskQueue):
    """Records how the tasks were sent."""

    def __init__(self) -> None:
        super().__init__(SystemClock())
        self.sends = 0
        self.batches: list[list[str]] = []

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        self.sends += 1
        await super().send(task_id, delay_seconds=delay_seconds, priority=priority)

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        self.batches.append([task_id for task_id, _ in items])
        await super().send_batch(items, priority=priority)


class FailingBatchQueue(InMemoryTaskQueue):
    def __init__(self) -> None:
        super().__init__(SystemClock())

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        raise InfrastructureError("queue", "connection refused")


async def batch(client: httpx.AsyncClient, tasks: Any) -> httpx.Response:
    return await client.post("/tasks/batch", json={"tasks": tasks})


EMAIL = {"type": "email", "payload": "a@b.io"}


async def test_valid_tasks_are_created_in_order_with_one_batched_send(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    queue = CountingQueue()
    http_container.queue.override(providers.Object(queue))
    tasks = [{"type": "email", "payload": f"user{i}@example.com"} for i in range(12)]

    response = await batch(http_client, tasks)

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    BatchResults.model_validate(response.json())
    assert [r["status"] for r in results] == [201] * 12
    assert [r["task"]["payload"] for r in results] == [t["payload"] for t in tasks]
    ids = [r["task"]["id"] for r in results]
    assert queue.batches == [ids] and queue.sends == 0
    for result in results:
        fetched = await http_client.get(f"/tasks/{result['task']['id']}")
        assert fetched.json() == result["task"]
    assert (await http_client.get("/metrics")).json()["queue_depth"] == 12


async def test_an_invalid_item_is_answered_422_in_its_place(
    http_client: httpx.AsyncClient,
) -> None:
    tasks = [
        EMAIL,
        {"type": "sms", "payload": "hi"},  # refused by the service
        "not an object",  # refused by the HTTP layer, as the other two
        {"type": "email", "payload": "a@b.io", "max_attempts": "3"},
        {"type": "email", "payload": "a@b.io", "run_at": "soon"},
    ]

    response = await batch(http_client, tasks)

    assert response.status_code == 200
    results = response.json()["results"]
    BatchResults.model_validate(response.json())
    assert [r["status"] for r in results] == [201, 422, 422, 422, 422]
    errors = [r["error"].split(":")[0] for r in results if r["status"] == 422]
    assert errors == ["type", "body", "max_attempts", "run_at"]
    assert all(set(r) == {"status", "error"} for r in results[1:])


async def test_when_the_send_fails_those_tasks_are_503_and_not_created(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    http_container.queue.override(providers.Object(FailingBatchQueue()))

    response = await batch(http_client, [EMAIL, {"type": "sms"}, EMAIL])

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [503, 422, 503]
    for result in (results[0], results[2]):
        assert "not created" in result["error"]
        assert "task_id" not in result
    assert (await http_client.get("/metrics")).json()["total_tasks"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tasks": []}, "tasks"),  # the service's refusal (its size rule: test_batch.py)
        ({"tasks": EMAIL}, "tasks"),
        ({"tasks": None}, "tasks"),
        ({}, "tasks"),
    ],
)
async def test_a_bad_task_list_is_422_naming_the_field_and_stores_nothing(
    http_client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await http_client.post("/tasks/batch", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"{field}:")
    assert (await http_client.get("/metrics")).json()["total_tasks"] == 0


@pytest.mark.parametrize("content", [b"[]", b"{", b'"tasks"'])
async def test_a_body_that_is_not_an_object_is_400(
    http_client: httpx.AsyncClient, content: bytes
) -> None:
    response = await http_client.post("/tasks/batch", content=content)

    assert response.status_code == 400


async def test_get_on_batch_is_not_a_route_to_a_task(http_client: httpx.AsyncClient) -> None:
    response = await http_client.get("/tasks/batch")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
