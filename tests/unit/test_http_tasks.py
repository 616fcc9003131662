"""POST /tasks, GET /tasks/{id}, GET /tasks: the happy paths and validation."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from bootstrap.container import Container
from entrypoints.http.schemas import TaskOut, TaskPage

TASK_FIELDS = {
    "id",
    "type",
    "payload",
    "status",
    "attempts",
    "max_attempts",
    "retry_count",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "error",
    "traceback",
    "result",
    "timeout_seconds",
    "run_at",
    "cancel_requested",
    "isolated",
    "progress",
    "priority",
}


EMAIL = {"type": "email", "payload": "a@b.io"}


async def submit(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    # ASCII-escaped so that lone surrogates (valid JSON) can be sent too.
    content = json.dumps(body).encode()
    return await client.post(
        "/tasks", content=content, headers={"content-type": "application/json"}
    )


async def total_tasks(client: httpx.AsyncClient) -> int:
    response = await client.get("/metrics")
    assert response.status_code == 200
    total: int = response.json()["total_tasks"]
    return total


async def test_submit_returns_201_with_the_task_as_the_go_service_did(
    http_client: httpx.AsyncClient,
) -> None:
    response = await submit(http_client, {"type": "email", "payload": "user@example.com"})

    assert response.status_code == 201
    task = response.json()
    assert set(task) == TASK_FIELDS
    assert "lease_token" not in task and "version" not in task
    assert task["type"] == "email"
    assert task["payload"] == "user@example.com"
    assert task["status"] == "PENDING"
    assert (task["attempts"], task["max_attempts"], task["retry_count"]) == (0, 3, 0)
    assert uuid.UUID(task["id"]).version == 4
    assert task["created_at"].endswith("Z") and task["updated_at"].endswith("Z")
    assert task["started_at"] is None and task["finished_at"] is None and task["run_at"] is None
    assert response.headers["location"] == f"/tasks/{task['id']}"
    TaskOut.model_validate(task)  # the shape the OpenAPI document describes


async def test_submitted_task_is_readable_at_once(http_client: httpx.AsyncClient) -> None:
    created = (await submit(http_client, {"type": "data-export", "payload": "users"})).json()

    response = await http_client.get(f"/tasks/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created


async def test_submit_accepts_the_optional_fields(http_client: httpx.AsyncClient) -> None:
    response = await submit(
        http_client,
        {
            "type": "image-resize",
            "payload": {"image": "cat.png", "width": 64, "height": 48},
            "max_attempts": 5,
            "timeout_seconds": 12.5,
            "delay_seconds": 30,
        },
    )

    assert response.status_code == 201
    task = response.json()
    assert task["max_attempts"] == 5
    assert task["timeout_seconds"] == 12.5
    assert task["run_at"].endswith("Z") and task["run_at"] > task["created_at"]
    metrics = (await http_client.get("/metrics")).json()
    assert (metrics["queue_delayed"], metrics["queue_depth"]) == (1, 0)


async def test_an_integer_is_accepted_where_a_number_is_expected(
    http_client: httpx.AsyncClient,
) -> None:
    response = await submit(
        http_client, {"type": "email", "payload": "a@b.io", "timeout_seconds": 10}
    )

    assert response.status_code == 201
    assert response.json()["timeout_seconds"] == 10


async def test_unknown_fields_are_refused_naming_the_field(
    http_client: httpx.AsyncClient,
) -> None:
    response = await submit(http_client, {"type": "email", "payload": "a@b.io", "delay": 600})

    assert response.status_code == 422
    assert response.json()["error"] == "delay: unknown field"
    assert await total_tasks(http_client) == 0


async def test_payload_is_stored_exactly_including_unicode(
    http_client: httpx.AsyncClient,
) -> None:
    payload = {"to": "zoë@example.com", "note": "\U0001f600 a pair", "n": [1, 2.5, None]}

    response = await submit(http_client, {"type": "email", "payload": payload})

    assert response.status_code == 201
    fetched = await http_client.get(f"/tasks/{response.json()['id']}")
    assert fetched.json()["payload"] == payload


# -- validation: 422 naming the field --------------------------------------------------
# The ranges and the rules of each type are the service's (tests/unit/services/test_submit.py);
# here: the JSON types pydantic refuses, and how a refusal is answered.


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload": "a@b.io"}, "type"),
        ({"type": "", "payload": "a@b.io"}, "type"),
        ({"type": "   ", "payload": "a@b.io"}, "type"),
        ({"type": None, "payload": "a@b.io"}, "type"),
        ({"type": 7, "payload": "a@b.io"}, "type"),
        ({"type": "email", "payload": "a@b.io", "max_attempts": "3"}, "max_attempts"),
        ({"type": "email", "payload": "a@b.io", "max_attempts": 2.5}, "max_attempts"),
        ({"type": "email", "payload": "a@b.io", "max_attempts": True}, "max_attempts"),
        ({"type": "email", "payload": "a@b.io", "timeout_seconds": "10"}, "timeout_seconds"),
        ({"type": "email", "payload": "a@b.io", "timeout_seconds": 10**400}, "timeout_seconds"),
        ({"type": "email", "payload": "a@b.io", "delay_seconds": None}, "delay_seconds"),
        ({"type": "email", "payload": "a@b.io", "delay_seconds": [1]}, "delay_seconds"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    http_client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await submit(http_client, body)

    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"{field}:")
    assert await total_tasks(http_client) == 0


async def test_a_payload_the_type_refuses_is_422_naming_the_payload(
    http_client: httpx.AsyncClient,
) -> None:
    response = await submit(http_client, {"type": "email", "payload": "not-an-address"})

    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("payload: invalid payload for 'email': ")
    assert set(response.json()) == {"error"}


# -- get --------------------------------------------------------------------------------


async def test_unknown_id_is_404(http_client: httpx.AsyncClient) -> None:
    task_id = str(uuid.uuid4())

    response = await http_client.get(f"/tasks/{task_id}")

    assert response.status_code == 404
    assert task_id in response.json()["error"]


@pytest.mark.parametrize("task_id", ["abc", "1", "%00", "x" * 3000, "ünï", "{}"])
async def test_malformed_id_is_404_with_a_clear_error(
    http_client: httpx.AsyncClient, task_id: str
) -> None:
    response = await http_client.get(f"/tasks/{task_id}")

    assert response.status_code == 404
    assert "not found" in response.json()["error"]


# -- list -------------------------------------------------------------------------------


async def test_list_turns_a_page_with_the_cursor_it_answered(
    http_client: httpx.AsyncClient,
) -> None:
    ids = [(await submit(http_client, EMAIL)).json()["id"] for _ in range(3)]

    first = await http_client.get("/tasks", params={"status": "PENDING", "limit": "2"})
    cursor = first.json()["next_cursor"]
    rest = await http_client.get(
        "/tasks", params={"status": "PENDING", "limit": "2", "cursor": cursor}
    )

    assert (first.status_code, rest.status_code) == (200, 200)
    pages = [TaskPage.model_validate(r.json()).tasks for r in (first, rest)]
    assert [len(page) for page in pages] == [2, 1]
    assert isinstance(cursor, str) and rest.json()["next_cursor"] is None
    assert sorted(task.id for page in pages for task in page) == sorted(ids)


async def test_list_defaults_and_filters_by_status(http_client: httpx.AsyncClient) -> None:
    await submit(http_client, {"type": "email", "payload": "a@b.io"})

    pending = await http_client.get("/tasks", params={"status": "pending"})
    failed = await http_client.get("/tasks", params={"status": "FAILED"})

    assert pending.status_code == 200 and len(pending.json()["tasks"]) == 1
    assert pending.json()["next_cursor"] is None
    assert failed.json() == {"tasks": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "status"),
        ({"status": ""}, "status"),
        ({"status": "DONE"}, "status"),
        ({"status": "PENDING", "limit": "-1"}, "limit"),
        ({"status": "PENDING", "limit": "ten"}, "limit"),
        ({"status": "PENDING", "limit": "99999999999999999999"}, "limit"),
        ({"status": "PENDING", "cursor": "not-a-cursor"}, "cursor"),
    ],
)
async def test_bad_list_queries_are_422_naming_the_parameter(
    http_client: httpx.AsyncClient, query: dict[str, str], field: str
) -> None:
    response = await http_client.get("/tasks", params=query)

    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"{field}:")


async def test_missing_or_bad_status_names_the_valid_values(
    http_client: httpx.AsyncClient,
) -> None:
    for query in ({}, {"status": "DONE"}):
        error = (await http_client.get("/tasks", params=query)).json()["error"]
        for status in ("PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"):
            assert status in error


async def test_fresh_container_per_test_starts_empty(http_container: Container) -> None:
    service = http_container.task_service()
    assert (await service.metrics()).total == 0
