"""GET /dead-letters and POST /dead-letters/redrive (FAILED tasks), and the messages of
the dead-letter queue under /dead-letters/messages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bootstrap.container import Container
from domain.limits import MAX_DEAD_LETTER_BODY_CHARS, MAX_DEAD_LETTER_LIST, MAX_MESSAGE_ID_LENGTH
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


# -- the dead-letter queue's messages ------------------------------------------------------


async def dead_messages(container: Container, *bodies: str) -> list[str]:
    """Put ``bodies`` on the queue as they are and dead-letter each as a worker does; the
    message ids."""
    queue = container.backend_queue()
    ids = []
    for body in bodies:
        await queue.send_raw(body)
        [delivery] = await queue.receive(max_messages=1, visibility_timeout=30, wait_seconds=0)
        await queue.dead_letter(delivery, reason="undecodable message body")
        ids.append(delivery.message_id)
    return ids


async def test_the_messages_are_listed_as_they_are_with_the_depth(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    long_body = "é" * (MAX_DEAD_LETTER_BODY_CHARS + 5)
    first, second = await dead_messages(http_container, "{not json", long_body)

    response = await http_client.get("/dead-letters/messages", params={"limit": "5"})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "messages": [
            {
                "message_id": first,
                "task_id": None,
                "reason": "undecodable message body",
                "receive_count": 1,
                "body": "{not json",
                "body_truncated": False,
                "body_length": 9,
            },
            {
                "message_id": second,
                "task_id": None,
                "reason": "undecodable message body",
                "receive_count": 1,
                "body": "é" * MAX_DEAD_LETTER_BODY_CHARS,
                "body_truncated": True,
                "body_length": MAX_DEAD_LETTER_BODY_CHARS + 5,
            },
        ],
        "dead_letter_queue_depth": 2,
    }


@pytest.mark.parametrize("limit", ["0", "x", str(MAX_DEAD_LETTER_LIST + 1)])
async def test_a_bad_message_limit_is_422_naming_its_range(
    http_client: httpx.AsyncClient, limit: str
) -> None:
    response = await http_client.get("/dead-letters/messages", params={"limit": limit})

    assert response.status_code == 422
    assert response.json()["error"].startswith("limit:")
    assert str(MAX_DEAD_LETTER_LIST) in response.json()["error"]


async def test_drop_answers_the_message_dropped_then_404(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    dropped, kept = await dead_messages(http_container, "poison", "other")

    response = await http_client.delete(f"/dead-letters/messages/{dropped}")
    again = await http_client.delete(f"/dead-letters/messages/{dropped}")

    assert response.status_code == 200, response.text
    assert (response.json()["message_id"], response.json()["body"]) == (dropped, "poison")
    assert again.status_code == 404
    assert again.json()["error"] == f"dead letter {dropped!r} not found"
    listed = (await http_client.get("/dead-letters/messages")).json()
    assert [m["message_id"] for m in listed["messages"]] == [kept]


async def test_redrive_one_answers_the_message_and_puts_it_on_the_queue(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    [message_id] = await dead_messages(http_container, "poison")

    response = await http_client.post(f"/dead-letters/messages/{message_id}/redrive")

    assert response.status_code == 200, response.text
    assert response.json()["message_id"] == message_id
    assert (await http_client.get("/metrics")).json()["dead_letter_queue_depth"] == 0
    [back] = await http_container.backend_queue().receive(
        max_messages=1, visibility_timeout=30, wait_seconds=0
    )
    assert back.raw_body == "poison"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/dead-letters/messages/m-404"),
        ("POST", "/dead-letters/messages/m-404/redrive"),
        ("DELETE", f"/dead-letters/messages/{'x' * (MAX_MESSAGE_ID_LENGTH + 1)}"),
    ],
)
async def test_an_unknown_message_is_404(
    http_client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await http_client.request(method, path)

    assert response.status_code == 404
    assert response.json()["error"].startswith("dead letter ")


async def test_redrive_all_messages_takes_an_optional_limit(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    await dead_messages(http_container, "a", "b", "c")

    limited = await http_client.post("/dead-letters/messages/redrive", json={"limit": 2})
    rest = await http_client.post("/dead-letters/messages/redrive")

    assert limited.status_code == rest.status_code == 200
    assert limited.json() == {"count": 2, "dead_letter_queue_depth": 1}
    assert rest.json() == {"count": 1, "dead_letter_queue_depth": 0}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"limit": 0}, "limit"), ({"limit": "5"}, "limit"), ({"type": "email"}, "type")],
)
async def test_bad_message_redrive_bodies_are_422_and_move_nothing(
    http_container: Container, http_client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    await dead_messages(http_container, "a")

    response = await http_client.post("/dead-letters/messages/redrive", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"{field}:")
    assert await http_container.queue().dead_letter_count() == 1
