"""Idempotency-Key on POST /tasks, idempotency_key per item of POST /tasks/batch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.limits import MAX_IDEMPOTENCY_KEY_LENGTH
from entrypoints.http.app import create_app
from tests.support.http_app import Serve

EMAIL = {"type": "email", "payload": "a@b.io"}


async def submit(
    client: httpx.AsyncClient, body: dict[str, Any], key: str, **headers: str
) -> httpx.Response:
    return await client.post("/tasks", json=body, headers={"Idempotency-Key": key, **headers})


async def total(client: httpx.AsyncClient, **headers: str) -> int:
    count: int = (await client.get("/metrics", headers=headers)).json()["total_tasks"]
    return count


async def test_the_same_key_and_body_returns_the_original_task_with_200(
    http_client: httpx.AsyncClient,
) -> None:
    first = await submit(http_client, EMAIL, "order-42")
    again = await submit(http_client, EMAIL, "order-42")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["location"] == f"/tasks/{first.json()['id']}"
    assert await total(http_client) == 1


async def test_the_same_key_with_a_different_body_is_409(
    http_client: httpx.AsyncClient,
) -> None:
    await submit(http_client, EMAIL, "order-42")

    response = await submit(http_client, {**EMAIL, "payload": "c@d.io"}, "order-42")

    assert response.status_code == 409
    assert "Idempotency-Key" in response.json()["error"]
    assert await total(http_client) == 1


async def test_keys_are_scoped_per_api_key(serve: Serve) -> None:
    container = build_container(Settings(backend="memory", api_keys="alice,bob"))
    alice = {"Authorization": "Bearer alice"}
    bob = {"Authorization": "Bearer bob"}

    async with serve(create_app(container)) as client:
        first = await submit(client, EMAIL, "shared", **alice)
        other = await submit(client, {**EMAIL, "payload": "c@d.io"}, "shared", **bob)
        again = await submit(client, EMAIL, "shared", **alice)
        count = await total(client, **alice)

    assert (first.status_code, other.status_code, again.status_code) == (201, 201, 200)
    assert other.json()["id"] != first.json()["id"] == again.json()["id"]
    assert count == 2


@pytest.mark.parametrize("key", ["", "x" * (MAX_IDEMPOTENCY_KEY_LENGTH + 1), "tab\there"])
async def test_a_bad_key_is_422_naming_the_header(http_client: httpx.AsyncClient, key: str) -> None:
    response = await submit(http_client, EMAIL, key)

    assert response.status_code == 422
    assert response.json()["error"].startswith("Idempotency-Key:")
    assert await total(http_client) == 0


async def test_the_longest_key_is_accepted(http_client: httpx.AsyncClient) -> None:
    """The header is checked once, here: the use case takes the digest it is given."""
    key = "k" * MAX_IDEMPOTENCY_KEY_LENGTH

    first = await submit(http_client, EMAIL, key)
    again = await submit(http_client, EMAIL, key)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


# -- batch --------------------------------------------------------------------------------


async def test_batch_items_with_keys_are_submitted_once(http_client: httpx.AsyncClient) -> None:
    single = await submit(http_client, EMAIL, "k1")
    items = [
        {**EMAIL, "idempotency_key": "k1"},  # the single submit's key, same body
        {**EMAIL, "idempotency_key": "k2"},
        {**EMAIL, "idempotency_key": "k2"},  # a duplicate within the batch
        {**EMAIL, "payload": "c@d.io", "idempotency_key": "k1"},  # reused key
        {**EMAIL, "idempotency_key": ""},
        EMAIL,
    ]

    response = await http_client.post("/tasks/batch", json={"tasks": items})

    results = response.json()["results"]
    assert [r["status"] for r in results] == [200, 201, 200, 409, 422, 201]
    assert results[0]["task"]["id"] == single.json()["id"]
    assert results[2]["task"]["id"] == results[1]["task"]["id"]
    assert results[4]["error"].startswith("idempotency_key:")
    assert await total(http_client) == 3
