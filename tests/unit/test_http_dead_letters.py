"""GET /dead-letters and POST /dead-letters/redrive."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bootstrap.container import Container
from entrypoints.http.schemas import DeadLetterPage
from tests.support.http_app import created, failed


async def failed_tasks(
    container: Container, client: httpx.AsyncClient, count: int, task_type: str = "email"
) -> list[str]:
    payload = "a@b.io" if task_type == "email" else "users"
    ids = []
    for i in range(count):
        task = await created(client, type=task_type, payload=payload)
        await failed(container, task["id"], f"error {i}")
        ids.append(task["id"])
    return ids


async def test_dead_letters_are_pages_of_the_failed_tasks_turned_with_a_cursor(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    ids = await failed_tasks(http_container, http_client, 2)
    await created(http_client)  # PENDING: not a dead letter

    first = await http_client.get("/dead-letters", params={"limit": "1"})
    cursor = first.json()["next_cursor"]
    rest = await http_client.get("/dead-letters", params={"limit": "1", "cursor": cursor})

    assert (first.status_code, rest.status_code) == (200, 200)
    pages = [DeadLetterPage.model_validate(r.json()) for r in (first, rest)]
    assert sorted(task.id for page in pages for task in page.tasks) == sorted(ids)
    assert isinstance(cursor, str) and pages[1].next_cursor is None
    assert {task.status for page in pages for task in page.tasks} == {"FAILED"}
    assert pages[0].dead_letter_queue_depth == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"cursor": "nope"}, "cursor")],
)
async def test_bad_dead_letter_queries_are_422(
    http_client: httpx.AsyncClient, query: dict[str, str], field: str
) -> None:
    response = await http_client.get("/dead-letters", params=query)

    assert response.status_code == 422
    assert response.json()["error"].startswith(f"{field}:")


async def test_redrive_with_no_body_uses_the_defaults(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    [task_id] = await failed_tasks(http_container, http_client, 1)

    response = await http_client.post("/dead-letters/redrive")

    assert response.status_code == 200
    assert response.json() == {"retried": [task_id], "count": 1}


async def test_redrive_passes_on_its_type_and_limit(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    await failed_tasks(http_container, http_client, 1, "email")
    exports = await failed_tasks(http_container, http_client, 2, "data-export")

    response = await http_client.post(
        "/dead-letters/redrive", json={"type": "data-export", "limit": 1, "per_second": 1000}
    )

    assert response.status_code == 200, response.text
    assert response.json()["count"] == 1 and set(response.json()["retried"]) <= set(exports)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"limit": None}, "limit"),
        ({"type": ""}, "type"),
        ({"type": 3}, "type"),
        ({"per_second": 0}, "per_second"),
        ({"per_second": -1}, "per_second"),
        ({"per_second": 1e9}, "per_second"),
        ({"per_second": "fast"}, "per_second"),
    ],
)
async def test_bad_redrive_bodies_are_422_and_retry_nothing(
    http_container: Container, http_client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    await failed_tasks(http_container, http_client, 1)

    response = await http_client.post("/dead-letters/redrive", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"{field}:")
    assert len((await http_client.get("/dead-letters")).json()["tasks"]) == 1


async def test_redrive_body_must_be_an_object(http_client: httpx.AsyncClient) -> None:
    response = await http_client.post("/dead-letters/redrive", content=b"[1]")

    assert response.status_code == 400
