"""Property: no body posted to /tasks yields a 500, and the answer tells the truth.

A 201 means the task is stored and readable; any other answer stored nothing.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app

FIELDS = ["type", "payload", "max_attempts", "timeout_seconds", "delay_seconds", "run_at"]
TYPES = ["email", "image-resize", "data-export", "", " ", "sms", "EMAIL"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
numbers = (
    st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False)
    | st.sampled_from([0, 1, 3, 19, 20, 900, 901, 43200, 43201, -1, 0.5])
)
timestamps = (
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.datetimes().map(lambda d: d.isoformat())
    | st.sampled_from(
        [
            "2020-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "2026-01-01",
            "now",
        ]
    )
)
payloads = json_values | st.sampled_from(
    [
        "user@example.com",
        {"to": "user@example.com"},
        "cat.png",
        {"image": "cat.png", "width": 10, "height": 10},
        {"dataset": "users", "format": "json"},
    ]
)
task_bodies = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(TYPES) | json_values,
        "payload": payloads,
        "max_attempts": numbers | json_values,
        "timeout_seconds": numbers | json_values,
        "delay_seconds": numbers | json_values,
        "run_at": timestamps | json_values,
        "extra": json_values,
    },
)


valid_tasks = st.sampled_from(
    [
        ("email", "user@example.com"),
        ("email", {"to": "user@example.com", "cc": None}),
        ("image-resize", "cat.png"),
        ("image-resize", {"image": "cat.png", "width": 10, "height": 10}),
        ("data-export", "users"),
        ("data-export", {"dataset": "users", "format": "json"}),
    ]
)
near_valid_bodies = st.builds(
    lambda task, extra: {"type": task[0], "payload": task[1], **extra},
    valid_tasks,
    st.fixed_dictionaries(
        {},
        optional={
            "max_attempts": st.integers(0, 21) | numbers,
            "timeout_seconds": st.floats(0, 50000) | st.integers(-1, 50000),
            "delay_seconds": st.floats(-1, 1000) | st.integers(-1, 40_000_000),
            "run_at": timestamps,
            "extra": json_values,
        },
    ),
)


def encode(value: Any) -> bytes:
    # Infinite floats (from st.floats in `numbers`) are written as 1e999, which Python's
    # JSON parser reads back as inf.
    text = json.dumps(value, allow_nan=True).replace("Infinity", "1e999")
    return text.encode()


bodies = (
    near_valid_bodies.map(encode)
    | task_bodies.map(encode)
    | json_values.map(encode)
    | st.binary(max_size=64)
    | st.text(max_size=64).map(str.encode)
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
async def test_post_tasks_never_500s_and_201_means_stored(body: bytes) -> None:
    container = build_container(Settings(backend="memory"))
    app = create_app(container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            before = (await client.get("/metrics")).json()["total_tasks"]

            response = await client.post("/tasks", content=body)

            after = (await client.get("/metrics")).json()["total_tasks"]
            event(f"status {response.status_code}")
            assert response.status_code in {201, 400, 422}, (response.status_code, response.text)
            if response.status_code == 201:
                task = response.json()
                fetched = await client.get(f"/tasks/{task['id']}")
                assert fetched.status_code == 200
                assert fetched.json() == task
                assert after == before + 1
            else:
                assert after == before
                assert isinstance(response.json()["error"], str)


def test_encode_writes_infinity_as_an_overflowing_number() -> None:
    assert json.loads(encode({"a": math.inf})) == {"a": math.inf}


query_text = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=st.none() | query_text, limit=st.none() | query_text, cursor=st.none() | query_text)
async def test_list_queries_never_500(
    status: str | None, limit: str | None, cursor: str | None
) -> None:
    params = {
        name: value
        for name, value in (("status", status), ("limit", limit), ("cursor", cursor))
        if value is not None
    }
    app = create_app(build_container(Settings(backend="memory")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/tasks", params=params)

    assert response.status_code in {200, 422}, response.text
    if response.status_code == 422:
        assert response.json()["error"].split(":")[0] in {"status", "limit", "cursor"}


@settings(max_examples=100, deadline=None)
@given(task_id=st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1))
async def test_any_task_id_is_a_404_never_a_500(task_id: str) -> None:
    assume(task_id not in {".", ".."})  # the client resolves these dot segments itself
    app = create_app(build_container(Settings(backend="memory")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(f"/tasks/{quote(task_id, safe='')}")

    assert response.status_code == 404, response.text


# -- the endpoints of issue 7 and the batch endpoint ---------------------------------------

header_keys = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=300)
batch_items = near_valid_bodies | task_bodies | json_values
batch_bodies = (
    st.builds(lambda items: {"tasks": items}, st.lists(batch_items, max_size=8)).map(encode)
    | st.builds(
        lambda items: {"tasks": items},
        st.lists(
            st.builds(
                lambda body, key: {**body, "idempotency_key": key},
                near_valid_bodies,
                st.sampled_from(["a", "b", ""]) | json_values,
            ),
            max_size=6,
        ),
    ).map(encode)
    | st.fixed_dictionaries({"tasks": json_values}).map(encode)
    | bodies
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=batch_bodies)
async def test_post_batch_never_500s_and_201s_are_stored(body: bytes) -> None:
    app = create_app(build_container(Settings(backend="memory")))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/tasks/batch", content=body)
            total = (await client.get("/metrics")).json()["total_tasks"]

            event(f"status {response.status_code}")
            assert response.status_code in {200, 400, 422}, response.text
            if response.status_code != 200:
                assert isinstance(response.json()["error"], str)
                assert total == 0
                return
            results = response.json()["results"]
            statuses = [r["status"] for r in results]
            assert set(statuses) <= {200, 201, 409, 422}, statuses
            assert total == statuses.count(201)
            for result in results:
                if result["status"] in {200, 201}:
                    fetched = await client.get(f"/tasks/{result['task']['id']}")
                    assert fetched.json() == result["task"]
                else:
                    assert isinstance(result["error"], str)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=near_valid_bodies | task_bodies, key=header_keys)
async def test_post_tasks_with_any_idempotency_key_never_500s(
    body: dict[str, Any], key: str
) -> None:
    app = create_app(build_container(Settings(backend="memory")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        headers = {b"Idempotency-Key": key.encode("latin-1")}
        first = await client.post("/tasks", content=encode(body), headers=headers)
        again = await client.post("/tasks", content=encode(body), headers=headers)

    event(f"status {first.status_code}")
    assert first.status_code in {201, 400, 422}, first.text
    if first.status_code == 201:
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    else:
        assert again.status_code == first.status_code


action_bodies = (
    st.fixed_dictionaries({}, optional={"max_attempts": numbers | json_values}).map(encode)
    | json_values.map(encode)
    | st.binary(max_size=32)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=action_bodies, fail_first=st.booleans())
async def test_retry_and_cancel_never_500(body: bytes, fail_first: bool) -> None:
    container = build_container(Settings(backend="memory"))
    app = create_app(container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        task = (await client.post("/tasks", json={"type": "email", "payload": "a@b.io"})).json()
        if fail_first:
            repository = container.repository()
            stored = await repository.get(task["id"])
            now = datetime.now(UTC)
            claimed = stored.claim("lease", now, 30)
            await repository.transition(claimed, expected=stored)
            await repository.transition(claimed.fail("boom", now), expected=claimed)
        retry = await client.post(f"/tasks/{task['id']}/retry", content=body)
        cancel = await client.post(f"/tasks/{task['id']}/cancel", content=body)

    event(f"retry {retry.status_code}")
    assert retry.status_code in {200, 400, 409, 422}, retry.text
    assert cancel.status_code in {200, 409}, cancel.text


@settings(max_examples=100, deadline=None)
@given(
    task_id=st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1),
    action=st.sampled_from(["cancel", "retry"]),
)
async def test_any_task_id_of_an_action_is_a_404(task_id: str, action: str) -> None:
    assume(task_id not in {".", ".."})
    app = create_app(build_container(Settings(backend="memory")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(f"/tasks/{quote(task_id, safe='')}/{action}")

    assert response.status_code == 404, response.text


redrive_bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["email", "", "sms"]) | json_values,
            "limit": numbers | json_values,
            "per_second": numbers | json_values,
        },
    ).map(encode)
    | json_values.map(encode)
    | st.binary(max_size=32)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=redrive_bodies, limit=st.none() | query_text, cursor=st.none() | query_text)
async def test_dead_letter_endpoints_never_500(
    body: bytes, limit: str | None, cursor: str | None
) -> None:
    params = {n: v for n, v in (("limit", limit), ("cursor", cursor)) if v is not None}
    app = create_app(build_container(Settings(backend="memory")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        redrive = await client.post("/dead-letters/redrive", content=body)
        listing = await client.get("/dead-letters", params=params)

    event(f"redrive {redrive.status_code}")
    assert redrive.status_code in {200, 400, 422}, redrive.text
    assert listing.status_code in {200, 422}, listing.text
    if listing.status_code == 422:
        assert listing.json()["error"].split(":")[0] in {"limit", "cursor"}


@settings(max_examples=150, deadline=None)
@given(
    authorization=st.none() | header_keys,
    api_key=st.none() | header_keys,
)
async def test_any_credentials_are_200_401_or_403_never_500(
    authorization: str | None, api_key: str | None
) -> None:
    headers = {
        name.encode(): value.encode("latin-1")
        for name, value in (("Authorization", authorization), ("X-API-Key", api_key))
        if value is not None
    }
    app = create_app(build_container(Settings(backend="memory", api_keys="right-key")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/metrics", headers=headers)

    event(f"status {response.status_code}")
    assert response.status_code in {200, 401, 403}, response.text
    if response.status_code != 200:
        assert isinstance(response.json()["error"], str)
