"""Property: no body posted to /tasks yields a 500, and the answer tells the truth.

A 201 means the task is stored and readable; any other answer stored nothing.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app

FIELDS = ["type", "payload", "max_attempts", "timeout_seconds", "delay_seconds"]
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
            "delay_seconds": st.floats(-1, 1000) | st.integers(-1, 1000),
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
