"""POST /tasks/{id}/cancel, POST /tasks/{id}/retry, and run_at on POST /tasks."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bootstrap.container import Container
from domain.models import TaskStatus
from entrypoints.http.schemas import TaskOut
from tests.support.http_app import completed, created, failed, processing

# -- cancel ------------------------------------------------------------------------------


async def test_cancel_answers_200_with_the_cancelled_task(
    http_client: httpx.AsyncClient,
) -> None:
    task = await created(http_client)

    response = await http_client.post(f"/tasks/{task['id']}/cancel")

    assert response.status_code == 200, response.text
    body = response.json()
    TaskOut.model_validate(body)
    assert body["status"] == "CANCELLED" and body["finished_at"] is not None
    assert body["cancel_requested"] is False
    assert (await http_client.get(f"/tasks/{task['id']}")).json() == body


@pytest.mark.parametrize(
    ("action", "move_to", "status"),
    [("cancel", completed, "COMPLETED"), ("retry", processing, "PROCESSING")],
)
async def test_an_action_the_status_does_not_allow_is_409_naming_the_status(
    http_container: Container,
    http_client: httpx.AsyncClient,
    action: str,
    move_to: Callable[[Container, str], Awaitable[object]],
    status: str,
) -> None:
    """A finished task cannot be cancelled, nor one that has not failed retried."""
    task = await created(http_client)
    await move_to(http_container, task["id"])

    response = await http_client.post(f"/tasks/{task['id']}/{action}")

    assert response.status_code == 409
    assert set(response.json()) == {"error"} and status in response.json()["error"]


@pytest.mark.parametrize("action", ["cancel", "retry"])
async def test_actions_on_an_unknown_or_malformed_id_are_404(
    http_client: httpx.AsyncClient, action: str
) -> None:
    unknown = str(uuid.uuid4())

    missing = await http_client.post(f"/tasks/{unknown}/{action}")
    malformed = await http_client.post(f"/tasks/not-a-uuid/{action}")

    assert missing.status_code == 404 and unknown in missing.json()["error"]
    assert malformed.status_code == 404 and "not found" in malformed.json()["error"]


@pytest.mark.parametrize("action", ["cancel", "retry"])
async def test_actions_are_post_only(http_client: httpx.AsyncClient, action: str) -> None:
    response = await http_client.get(f"/tasks/{uuid.uuid4()}/{action}")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# -- retry -------------------------------------------------------------------------------


async def test_retry_answers_200_with_the_task_pending_again(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    task = await created(http_client)
    await failed(http_container, task["id"], "smtp down")

    response = await http_client.post(f"/tasks/{task['id']}/retry")

    assert response.status_code == 200, response.text
    body = response.json()
    TaskOut.model_validate(body)
    assert (body["id"], body["status"], body["error"]) == (task["id"], "PENDING", "smtp down")
    assert (await http_client.get(f"/tasks/{task['id']}")).json() == body


@pytest.fixture
async def failed_task(http_container: Container, http_client: httpx.AsyncClient) -> dict[str, Any]:
    """A task created over HTTP whose attempts all failed."""
    task = await created(http_client)
    await failed(http_container, task["id"])
    return task


async def test_retry_takes_the_number_of_further_attempts(
    http_client: httpx.AsyncClient, failed_task: dict[str, Any]
) -> None:
    task = failed_task

    response = await http_client.post(f"/tasks/{task['id']}/retry", json={"max_attempts": 5})

    assert response.status_code == 200
    assert response.json()["max_attempts"] == 1 + 5


@pytest.mark.parametrize(
    ("content", "status", "error_starts"),
    [
        (b'{"max_attempts": 0}', 422, "max_attempts:"),  # a bad budget
        (b'{"max_attempts": "2"}', 422, "max_attempts:"),
        (b"{", 400, ""),  # a body that is not a JSON object
        (b"[]", 400, ""),
        (b"3", 400, ""),
    ],
)
async def test_a_retry_with_a_bad_body_is_refused_and_changes_nothing(
    http_client: httpx.AsyncClient,
    failed_task: dict[str, Any],
    content: bytes,
    status: int,
    error_starts: str,
) -> None:
    task_url = f"/tasks/{failed_task['id']}"

    response = await http_client.post(f"{task_url}/retry", content=content)

    assert response.status_code == status
    assert response.json()["error"].startswith(error_starts)
    assert (await http_client.get(task_url)).json()["status"] == "FAILED"


# -- run_at: RFC 3339 in, UTC out (its rules: tests/unit/services/test_submit.py) ----------


async def test_run_at_with_an_offset_is_shown_in_utc(http_client: httpx.AsyncClient) -> None:
    due = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    text = due.astimezone(pytest.importorskip("zoneinfo").ZoneInfo("Asia/Kolkata")).isoformat()

    task = await created(http_client, run_at=text)

    assert task["run_at"] == due.isoformat().replace("+00:00", "Z")
    assert (await http_client.get("/metrics")).json()["queue_delayed"] == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"run_at": "2026-01-01T09:30:00"}, "run_at"),  # no timezone
        ({"run_at": "2026-01-01"}, "run_at"),
        ({"run_at": "tomorrow"}, "run_at"),
        ({"run_at": ""}, "run_at"),
        ({"run_at": 1767225600}, "run_at"),
        ({"run_at": "0001-01-01T00:00:00+05:00"}, "run_at"),
        ({"run_at": "9999-12-31T23:59:59-05:00"}, "run_at"),
    ],
)
async def test_bad_run_at_is_422_naming_the_field(
    http_client: httpx.AsyncClient, fields: dict[str, Any], field: str
) -> None:
    response = await http_client.post(
        "/tasks", json={"type": "email", "payload": "a@b.io", **fields}
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"{field}:")
    assert (await http_client.get("/metrics")).json()["total_tasks"] == 0


async def test_task_json_shows_cancel_requested(
    http_client: httpx.AsyncClient,
) -> None:
    task = await created(http_client)

    assert task["cancel_requested"] is False
    assert TaskStatus(task["status"]) is TaskStatus.PENDING
