"""``/schedules`` through the app: create, list with the next fire, delete, and a
422 naming the field for each kind of bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from tests.support.http_app import Serve

NIGHTLY = {
    "name": "nightly-report",
    "type": "email",
    "payload": {"to": "ops@example.com", "subject": "report", "body": "see attached"},
    "cron": "0 3 * * *",
    "timezone": "Europe/Paris",
    "missed": "run_once",
}


async def test_a_schedule_is_created_listed_with_its_next_fire_and_deleted(
    http_client: httpx.AsyncClient,
) -> None:
    created = await http_client.post("/schedules", json=NIGHTLY)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "nightly-report" and body["enabled"] is True
    assert body["declared"] is False and body["missed"] == "run_once"
    assert body["next_fire_at"].endswith(("T01:00:00Z", "T02:00:00Z"))  # 03:00 in Paris

    listed = (await http_client.get("/schedules")).json()["schedules"]
    assert [s["name"] for s in listed] == ["nightly-report"]
    assert listed[0]["next_fire_at"] == body["next_fire_at"]

    replaced = await http_client.post("/schedules", json={**NIGHTLY, "enabled": False})
    assert replaced.status_code == 200 and replaced.json()["next_fire_at"] is None

    assert (await http_client.delete("/schedules/nightly-report")).status_code == 204
    assert (await http_client.get("/schedules")).json() == {"schedules": []}
    gone = await http_client.delete("/schedules/nightly-report")
    assert gone.status_code == 404 and "nightly-report" in gone.json()["error"]


async def test_one_schedule_is_read_by_name_with_its_next_fire(
    http_client: httpx.AsyncClient,
) -> None:
    created = (await http_client.post("/schedules", json=NIGHTLY)).json()

    one = await http_client.get("/schedules/nightly-report")

    assert one.status_code == 200, one.text
    assert one.json() == created
    missing = await http_client.get("/schedules/no-such-schedule")
    assert missing.status_code == 404 and "no-such-schedule" in missing.json()["error"]
    bad = await http_client.get("/schedules/has%20space")
    assert bad.status_code == 422 and bad.json()["error"].startswith("name:")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"cron": "61 * * * *"}, "cron", "out of range"),
        ({"cron": "* * *"}, "cron", "3 fields"),
        ({"cron": "* * * * * * *"}, "cron", "7 fields"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown timezone"),
        ({"type": "no-such-type"}, "type", "unknown task type"),
        ({"missed": "later"}, "missed", ""),
        ({"enabled": "yes"}, "enabled", ""),
        ({"name": "has space"}, "name", ""),
        ({"name": "x" * 101}, "name", "100"),
        ({"payload": 42}, "payload", ""),
        ({"every": "day"}, "every", "unknown field"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    http_client: httpx.AsyncClient, change: dict[str, Any], field: str, words: str
) -> None:
    response = await http_client.post("/schedules", json={**NIGHTLY, **change})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error.startswith(f"{field}:") and words in error
    assert (await http_client.get("/schedules")).json() == {"schedules": []}


async def test_a_missing_field_is_named(http_client: httpx.AsyncClient) -> None:
    response = await http_client.post("/schedules", json={"name": "x", "type": "email"})
    assert response.status_code == 422 and response.json()["error"].startswith("cron:")


async def test_the_routes_are_in_the_openapi_document(serve: Serve) -> None:
    async with serve(create_app(build_container(Settings(backend="memory")))) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/schedules"]) == {"get", "post"}
    assert set(paths["/schedules/{name}"]) == {"get", "delete"}
    assert "ScheduleOut" in str(paths["/schedules/{name}"]["get"]["responses"]["200"])
