"""The dashboard's pages and actions over real HTTP through the app (memory backend,
no keys: an anonymous session), each through the same use cases as the API."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pydantic
import pytest

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.models import WorkerInfo
from entrypoints.http.app import create_app
from entrypoints.http.ui.workers import GONE_SHOWN_SECONDS, WorkerSightings
from tests.support.http_app import Serve, completed, created, failed
from tests.support.ui_forms import csrf_token


async def test_the_overview_shows_the_counts_and_feeds_them_as_json(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    done = await created(http_client)
    await completed(http_container, done["id"])
    await created(http_client)

    page = await http_client.get("/ui")
    feed = await http_client.get("/ui/overview.json")

    assert page.status_code == 200
    assert 'data-field="completed_tasks">1<' in page.text
    assert feed.json()["completed_tasks"] == 1
    assert feed.json()["pending_tasks"] == 1
    assert {"live_workers", "busy_slots", "oldest_due_task_age_seconds"} <= set(feed.json())


async def test_tasks_are_listed_by_status_newest_first_with_the_api_cursor(
    http_client: httpx.AsyncClient,
) -> None:
    ids = [(await created(http_client))["id"] for _ in range(51)]

    first = await http_client.get("/ui/tasks", params={"status": "PENDING"})
    cursor = first.text.split("cursor=")[1].split('"')[0]
    second = await http_client.get(f"/ui/tasks?status=PENDING&cursor={cursor}")

    assert first.text.index(ids[-1]) < first.text.index(ids[-2])
    assert ids[0] not in first.text
    assert ids[0] in second.text
    assert (await http_client.get("/ui/tasks?status=NOPE")).status_code == 422


async def test_jump_to_a_task_by_any_form_of_its_id(http_client: httpx.AsyncClient) -> None:
    task = await created(http_client)

    found = await http_client.get("/ui/tasks/jump", params={"id": task["id"].upper()})
    wrong = await http_client.get("/ui/tasks/jump", params={"id": "not-an-id"})

    assert found.status_code == 303
    assert found.headers["location"] == f"/ui/tasks/{task['id']}"
    assert wrong.status_code == 404
    assert "task ids are UUIDs" in wrong.text


async def retried_with(
    container: Container, client: httpx.AsyncClient, budget: str
) -> tuple[dict[str, Any], httpx.Response, httpx.Response]:
    """A task failed with "smtp down", its page, and the answer to its retry form."""
    task = await created(client)
    await failed(container, task["id"], error="smtp down")
    page = await client.get(f"/ui/tasks/{task['id']}")
    form = {"csrf": csrf_token(page), "max_attempts": budget}
    return task, page, await client.post(f"/ui/tasks/{task['id']}/retry", data=form)


async def test_a_failed_task_shows_its_error_and_is_retried_with_a_new_budget(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    task, page, retried = await retried_with(http_container, http_client, "5")
    after = (await http_client.get(f"/tasks/{task['id']}")).json()

    assert "smtp down" in page.text
    assert 'id="retry"' in page.text
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/ui/tasks/{task['id']}?notice=retried"
    assert (after["status"], after["max_attempts"]) == ("PENDING", 1 + 5)


async def test_a_bad_retry_budget_is_refused_naming_the_field(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    _, _, response = await retried_with(http_container, http_client, "x")

    assert response.status_code == 422
    assert "max_attempts: must be a whole number" in response.text


async def test_redrive_retries_the_failed_tasks_of_one_type(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    email = await created(http_client)
    export = await created(http_client, type="data-export", payload="users")
    for task in (email, export):
        await failed(http_container, task["id"])
    page = await http_client.get("/ui/dead-letters")

    response = await http_client.post(
        "/ui/dead-letters/redrive",
        data={"csrf": csrf_token(page), "type": "email", "per_second": "1000"},
    )
    statuses = [
        (await http_client.get(f"/tasks/{t['id']}")).json()["status"] for t in (email, export)
    ]

    assert email["id"] in page.text and export["id"] in page.text
    assert response.headers["location"] == "/ui/dead-letters?notice=redriven&count=1"
    assert statuses == ["PENDING", "FAILED"]


async def test_poison_messages_are_listed_and_can_be_deleted(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    queue = http_container.backend_queue()
    await queue.send_raw("<b>not a task</b>")
    [delivery] = await queue.receive(max_messages=1, visibility_timeout=30, wait_seconds=0)
    await queue.dead_letter(delivery, reason="undecodable message body")
    page = await http_client.get("/ui/dead-letters")

    dropped = await http_client.post(
        f"/ui/dead-letters/messages/{delivery.message_id}/drop", data={"csrf": csrf_token(page)}
    )

    assert "&lt;b&gt;not a task&lt;/b&gt;" in page.text
    assert "poison" in page.text
    assert dropped.status_code == 303
    assert await queue.dead_letter_count() == 0


async def test_the_workers_page_lists_live_workers(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    now = datetime.now(UTC)
    info = WorkerInfo("w-1", "host-a", 4242, 5, 2, now, now)
    await http_container.workers().beat(info, ttl_seconds=30)

    page = await http_client.get("/ui/workers")

    assert page.status_code == 200
    assert "host-a" in page.text and "4242" in page.text and "live" in page.text


def test_a_worker_that_stopped_beating_is_shown_gone_for_an_hour() -> None:
    now = datetime.now(UTC)
    sightings = WorkerSightings()
    one = WorkerInfo("w-1", "a", 1, 5, 0, now, now)
    two = WorkerInfo("w-2", "b", 2, 5, 0, now, now)
    sightings.update([one, two], now)

    later = now + timedelta(minutes=5)
    rows = sightings.update([replace(two, last_seen=later)], later)
    much_later = now + timedelta(seconds=GONE_SHOWN_SECONDS + 1)
    forgotten = sightings.update([], much_later)

    assert [(r.info.worker_id, r.live) for r in rows] == [("w-2", True), ("w-1", False)]
    assert [r.info.worker_id for r in forgotten] == ["w-2"]  # beat later: still shown


async def test_the_javascript_and_styles_are_served_from_the_package(
    http_client: httpx.AsyncClient,
) -> None:
    script = await http_client.get("/ui/static/ui.js")
    styles = await http_client.get("/ui/static/ui.css")

    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "visibilitychange" in script.text
    assert styles.status_code == 200
    assert (await http_client.get("/ui/nowhere")).status_code == 404


async def test_the_flow_page_shows_limits_and_schedules_and_pauses_a_type(
    http_client: httpx.AsyncClient,
) -> None:
    await http_client.put("/task-types/email", json={"max_concurrency": 3, "rate": 2.5})
    schedule = {"name": "nightly", "type": "email", "payload": "a@b.io", "cron": "0 3 * * *"}
    fire = (await http_client.post("/schedules", json=schedule)).json()["next_fire_at"]

    page = await http_client.get("/ui/flow")
    row = page.text.split('data-type="email"')[1].split("</tr>")[0]
    paused = await http_client.post("/ui/task-types/email/pause", data={"csrf": csrf_token(page)})
    types = (await http_client.get("/task-types")).json()["task_types"]
    after = await http_client.get(paused.headers["location"])
    forged = await http_client.post("/ui/task-types/email/resume", data={"csrf": "forged"})

    assert page.status_code == 200
    assert [cell.split("<")[0] for cell in row.split("<td>")[2:5]] == ["3", "0", "2.5"]
    assert ">running<" in row and ">Pause<" in row
    assert "nightly" in page.text and fire[:10] + " " + fire[11:19] + " UTC" in page.text
    assert paused.status_code == 303 and paused.headers["location"] == "/ui/flow?notice=paused"
    assert next(t for t in types if t["type"] == "email")["paused"] is True
    assert ">Resume<" in after.text.split('data-type="email"')[1].split("</tr>")[0]
    assert forged.status_code == 403
    assert (await http_client.get("/ui/flow")).text.count(">paused<") == 1


async def test_the_overview_refreshes_as_often_as_the_setting_says(serve: Serve) -> None:
    container = build_container(Settings(backend="memory", ui_refresh_seconds=0.5))
    async with serve(create_app(container)) as client:
        page = await client.get("/ui")
        icon = await client.get("/ui/static/favicon.svg")

    assert 'data-refresh-ms="500"' in page.text
    assert icon.status_code == 200  # else a browser's /favicon.ico is a failed login
    with pytest.raises(pydantic.ValidationError, match="ui_refresh_seconds"):
        Settings(backend="memory", ui_refresh_seconds=0.1)
