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


async def test_dead_letters_lists_failed_tasks_with_attempts_and_error(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    ids = await failed_tasks(http_container, http_client, 2)
    await created(http_client)  # PENDING: not a dead letter

    response = await http_client.get("/dead-letters")

    assert response.status_code == 200, response.text
    page = response.json()
    DeadLetterPage.model_validate(page)
    assert sorted(t["id"] for t in page["tasks"]) == sorted(ids)
    assert {(t["status"], t["attempts"]) for t in page["tasks"]} == {("FAILED", 1)}
    assert {t["error"] for t in page["tasks"]} == {"error 0", "error 1"}
    assert page["next_cursor"] is None
    assert page["dead_letter_queue_depth"] == 0


async def test_dead_letters_pages_with_a_cursor(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    ids = await failed_tasks(http_container, http_client, 5)

    seen: list[str] = []
    params = {"limit": "2"}
    while True:
        page = (await http_client.get("/dead-letters", params=params)).json()
        seen += [t["id"] for t in page["tasks"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]

    assert sorted(seen) == sorted(ids) and len(seen) == 5


async def test_dead_letter_queue_depth_counts_the_queue_dead_letters(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    await created(http_client)
    queue = http_container.queue()
    [delivery] = await queue.receive(max_messages=1, visibility_timeout=30, wait_seconds=0)
    await queue.dead_letter(delivery, reason="poison")

    page = (await http_client.get("/dead-letters")).json()

    assert page["dead_letter_queue_depth"] == 1
    assert page["tasks"] == []


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


async def test_redrive_retries_every_failed_task(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    ids = await failed_tasks(http_container, http_client, 3)

    response = await http_client.post("/dead-letters/redrive", json={"per_second": 1000})

    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body["retried"]) == sorted(ids) and body["count"] == 3
    for task_id in ids:
        task = (await http_client.get(f"/tasks/{task_id}")).json()
        assert task["status"] == "PENDING" and task["error"] is not None
    assert (await http_client.get("/dead-letters")).json()["tasks"] == []


async def test_redrive_with_no_body_uses_the_defaults(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    [task_id] = await failed_tasks(http_container, http_client, 1)

    response = await http_client.post("/dead-letters/redrive")

    assert response.status_code == 200
    assert response.json() == {"retried": [task_id], "count": 1}


async def test_redrive_filters_by_type_and_stops_at_the_limit(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    emails = await failed_tasks(http_container, http_client, 3, "email")
    exports = await failed_tasks(http_container, http_client, 2, "data-export")

    by_type = await http_client.post(
        "/dead-letters/redrive", json={"type": "data-export", "per_second": 1000}
    )
    limited = await http_client.post("/dead-letters/redrive", json={"limit": 2, "per_second": 1000})

    assert sorted(by_type.json()["retried"]) == sorted(exports)
    assert limited.json()["count"] == 2 and set(limited.json()["retried"]) <= set(emails)
    assert len((await http_client.get("/dead-letters")).json()["tasks"]) == 1


async def test_redrive_with_nothing_failed_retries_nothing(
    http_client: httpx.AsyncClient,
) -> None:
    response = await http_client.post("/dead-letters/redrive", json={})

    assert response.json() == {"retried": [], "count": 0}


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
