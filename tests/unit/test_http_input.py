"""The HTTP input layer: unknown fields, task id forms, one error mapping for single and
batch submissions, and a document that states the limits the server enforces."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

EMAIL = {"type": "email", "payload": "a@b.io"}


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/tasks", {**EMAIL, "delay": 600}, "delay"),
        ("/tasks/batch", {"tasks": [EMAIL], "dry_run": True}, "dry_run"),
        ("/dead-letters/redrive", {"limt": 5}, "limt"),
    ],
)
async def test_an_unknown_field_is_422_naming_it_and_nothing_runs(
    http_client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = await http_client.post(path, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == f"{field}: unknown field"
    assert (await http_client.get("/metrics")).json()["total_tasks"] == 0


async def test_an_unknown_field_of_a_retry_is_422(http_client: httpx.AsyncClient) -> None:
    created = (await http_client.post("/tasks", json=EMAIL)).json()

    response = await http_client.post(f"/tasks/{created['id']}/retry", json={"attempts": 2})

    assert response.status_code == 422
    assert response.json()["error"] == "attempts: unknown field"


async def test_an_unknown_field_of_a_batch_item_fails_only_that_item(
    http_client: httpx.AsyncClient,
) -> None:
    response = await http_client.post(
        "/tasks/batch", json={"tasks": [EMAIL, {**EMAIL, "delay": 600}]}
    )

    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422]
    assert results[1]["error"] == "delay: unknown field"


async def test_the_original_clients_body_is_still_accepted(http_client: httpx.AsyncClient) -> None:
    response = await http_client.post("/tasks", json={"type": "email", "payload": "a@b.io"})

    assert response.status_code == 201


def _forms(task_id: str) -> list[str]:
    return [task_id.upper(), task_id.replace("-", ""), task_id.replace("-", "").upper()]


async def test_every_form_of_a_task_id_names_the_task(http_client: httpx.AsyncClient) -> None:
    task_id = (await http_client.post("/tasks", json=EMAIL)).json()["id"]

    for form in _forms(task_id):
        fetched = await http_client.get(f"/tasks/{form}")
        assert fetched.status_code == 200, form
        assert fetched.json()["id"] == task_id
        retried = await http_client.post(f"/tasks/{form}/retry")
        assert retried.status_code == 409, "found, and not FAILED"
    cancelled = await http_client.post(f"/tasks/{task_id.replace('-', '').upper()}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"


@pytest.mark.parametrize(
    "task",
    [
        {"type": "fax"},
        {**EMAIL, "max_attempts": 0},
        {**EMAIL, "max_attempts": "3"},
        {**EMAIL, "run_at": "soon"},
        {**EMAIL, "payload": {"to": "a@b.io", "deep": nested(40)}},
    ],
)
async def test_a_batch_item_and_a_single_submit_answer_the_same_error(
    http_client: httpx.AsyncClient, task: dict[str, Any]
) -> None:
    single = await http_client.post("/tasks", json=task)
    batch = await http_client.post("/tasks/batch", json={"tasks": [task]})

    assert single.status_code == 422, single.text
    (item,) = batch.json()["results"]
    assert (item["status"], item["error"]) == (single.status_code, single.json()["error"])


async def test_the_document_states_the_limits_the_server_enforces(
    http_client: httpx.AsyncClient,
) -> None:
    document = (await http_client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    paths = document["paths"]

    submit = schemas["SubmitTask"]
    assert submit["additionalProperties"] is False
    assert submit["properties"]["type"]["minLength"] == 1
    assert "email" in submit["properties"]["type"]["enum"]
    max_attempts = submit["properties"]["max_attempts"]
    assert (max_attempts["minimum"], max_attempts["maximum"]) == (1, 19)
    assert schemas["RetryTask"]["properties"]["max_attempts"]["maximum"] == 19
    tasks = schemas["SubmitBatch"]["properties"]["tasks"]
    assert (tasks["minItems"], tasks["maxItems"]) == (1, 100)
    assert schemas["Redrive"]["properties"]["per_second"]["exclusiveMinimum"] == 0
    limit = next(p for p in paths["/tasks"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 500
    for path, operations in paths.items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= set(operation["responses"]), (path, method)
            for status, response in operation["responses"].items():
                if status == "503":
                    assert "Retry-After" in response["headers"], (path, method)


async def test_a_whole_float_is_an_integer_as_json_schema_says(
    http_client: httpx.AsyncClient,
) -> None:
    whole = await http_client.post("/tasks", json={**EMAIL, "max_attempts": 2.0})
    fraction = await http_client.post("/tasks", json={**EMAIL, "max_attempts": 2.5})

    assert whole.status_code == 201 and whole.json()["max_attempts"] == 2
    assert fraction.status_code == 422
    assert fraction.json()["error"].startswith("max_attempts:")
