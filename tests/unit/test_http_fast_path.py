"""The fast path of POST /tasks and GET /tasks/{task_id} (entrypoints/http/fast_path.py)
answers exactly as the middleware stack does: the same request, sent once through each,
gets the same status, headers and body bytes, errors included, and is counted alike.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import TaskqApp, create_app
from entrypoints.http.schemas import SubmitTask
from entrypoints.http.submit_body import submit_request

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
EMAIL = b'{"type": "email", "payload": "a@b.io"}'


@asynccontextmanager
async def running(**settings: Any) -> AsyncIterator[TaskqApp]:
    app = create_app(build_container(Settings(backend="memory", **settings)))
    assert isinstance(app, TaskqApp) and app.fast is not None
    async with app.router.lifespan_context(app):
        yield app


def _scope(method: str, target: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    path, _, query = target.partition("?")
    framing = [] if method == "GET" else [(b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"test"), *framing, *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(
    app: TaskqApp,
    method: str,
    target: str,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    fast: bool,
) -> Answer:
    """One request straight through ASGI, by the fast path or by the stack alone."""
    scope = _scope(method, target, body, headers or [])
    assert app.fast is not None
    assert app.fast.takes(scope) or not fast, "the fast path must take this request"
    messages: list[MutableMapping[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        messages.append(message)

    saved = app.fast
    app.fast = saved if fast else None
    try:
        await app(scope, receive, send)
    finally:
        app.fast = saved
    start, *bodies = messages
    return start["status"], start["headers"], b"".join(m.get("body", b"") for m in bodies)


async def both(app: TaskqApp, method: str, target: str, body: bytes = b"", **kw: Any) -> Answer:
    """The stack's answer, after asserting the fast path's is the same to the byte."""
    fast = await call(app, method, target, body, fast=True, **kw)
    slow = await call(app, method, target, body, fast=False, **kw)
    assert fast == slow
    return fast


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"type": "email"', 400),  # not JSON
        (b"[1, 2]", 400),  # not an object
        (b'{"type": "email", "payload": 1e999}', 400),  # out of range
        (b"", 400),
        (b'{"type": 3}', 422),  # the model's errors, with their locations
        (b'{"payload": "a@b.io"}', 422),
        (b'{"type": "email", "payload": "a@b.io", "colour": "red"}', 422),
        (b'{"type": "email", "payload": "a@b.io", "max_attempts": "3"}', 422),
        (b'{"type": "email", "payload": "a@b.io", "priority": "urgent"}', 422),
        (b'{"type": "no-such-type"}', 422),  # the domain's errors
        (b'{"type": "  "}', 422),
        (b'{"type": "email", "payload": "\\ud800"}', 422),
        (b'{"type": "email", "payload": "a@b.io", "max_attempts": 0}', 422),
        (b'{"type": "email", "payload": "a@b.io", "delay_seconds": -1}', 422),
    ],
)
async def test_a_refused_submission_is_answered_alike(body: bytes, status: int) -> None:
    async with running() as app:
        answer = await both(app, "POST", "/tasks", body)
    assert answer[0] == status, answer


async def test_a_task_and_its_repeat_by_idempotency_key_are_answered_alike() -> None:
    key = [(b"idempotency-key", b"order-1")]
    async with running() as app:
        created = await call(app, "POST", "/tasks", EMAIL, key, fast=True)
        assert created[0] == 201
        assert (b"location", f"/tasks/{json.loads(created[2])['id']}".encode()) in created[1]
        repeat = await both(app, "POST", "/tasks", EMAIL, headers=key)
        assert repeat[0] == 200 and repeat[2] == created[2]
        other_body = await both(
            app, "POST", "/tasks", b'{"type": "email", "payload": "x@y.io"}', headers=key
        )
        assert other_body[0] == 409
        bad_key = await both(app, "POST", "/tasks", EMAIL, headers=[(b"idempotency-key", b"\x7f")])
        assert bad_key[0] == 422


async def test_a_task_is_read_alike_in_every_form_of_its_id() -> None:
    async with running() as app:
        _, _, body = await call(app, "POST", "/tasks", EMAIL, fast=True)
        task_id = json.loads(body)["id"]
        for target in (
            f"/tasks/{task_id}",
            f"/tasks/{task_id.upper().replace('-', '')}",
            f"/tasks/{task_id}?wait=0.01",
            f"/tasks/{task_id}?wait=soon",  # 422
            "/tasks/00000000-0000-4000-8000-000000000000",  # 404
            "/tasks/not-a-uuid",  # 404
        ):
            await both(app, "GET", target)


async def test_refusals_of_the_auth_layer_are_answered_alike() -> None:
    async with running(api_keys="key-one") as app:
        assert (await both(app, "POST", "/tasks", EMAIL))[0] == 401
        wrong = [(b"authorization", b"Bearer key-two")]
        assert (await both(app, "GET", "/tasks/not-a-uuid", headers=wrong))[0] == 403
        right = [(b"x-api-key", b"key-one")]
        assert (await call(app, "POST", "/tasks", EMAIL, right, fast=True))[0] == 201


async def test_the_rate_limit_and_back_pressure_are_answered_alike() -> None:
    async with running(rate_limit_per_second=0.001, rate_limit_burst=1, max_backlog=1) as app:
        assert (await call(app, "POST", "/tasks", EMAIL, fast=True))[0] == 201
        status, headers, _ = await both(app, "POST", "/tasks", EMAIL)
        assert status == 429 and any(name == b"retry-after" for name, _ in headers)
    async with running(max_backlog=1) as app:
        assert (await call(app, "POST", "/tasks", EMAIL, fast=False))[0] == 201
        status, headers, _ = await both(app, "POST", "/tasks", EMAIL)
        assert status == 503 and any(name == b"retry-after" for name, _ in headers)


async def test_what_the_fast_path_does_not_take_falls_through_to_the_stack() -> None:
    async with running(max_body_bytes=1024) as app:
        fast = app.fast
        assert fast is not None
        large = b'{"type": "email", "payload": "' + b"x" * 2000 + b'"}'
        over = _scope("POST", "/tasks", large, [(b"content-length", b"2030")])
        chunked = _scope("POST", "/tasks", b"", [(b"transfer-encoding", b"chunked")])
        twice = _scope("POST", "/tasks", EMAIL, [(b"content-length", b"38")])
        for scope in (
            over,
            chunked,
            twice,
            _scope("GET", "/tasks", b"", []),
            _scope("GET", "/tasks/batch", b"", []),
            _scope("GET", "/tasks/a/cancel", b"", []),
            _scope("HEAD", "/tasks/abc", b"", []),
            {**_scope("POST", "/tasks", EMAIL, []), "root_path": "/api"},
        ):
            assert not fast.takes(scope), scope["path"]
        assert (await call(app, "POST", "/tasks", large, fast=False))[0] == 413


def _requests(text: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "taskq_http_requests"
        for s in family.samples
        if s.name.endswith("_total")
    }


async def test_the_fast_path_counts_its_requests_by_route_as_the_stack_does() -> None:
    scrape = [(b"accept", b"text/plain; version=0.0.4")]
    async with running(api_keys="key-one") as app:
        key = [(b"x-api-key", b"key-one")]
        counted = []
        for fast in (True, False):
            _, _, body = await call(app, "POST", "/tasks", EMAIL, key, fast=fast)
            await call(app, "GET", f"/tasks/{json.loads(body)['id']}", b"", key, fast=fast)
            await call(app, "POST", "/tasks", EMAIL, fast=fast)  # 401: no route matched yet
            _, _, text = await call(app, "GET", "/metrics", b"", [*key, *scrape], fast=False)
            counted.append(_requests(text.decode()))
    once, twice = counted
    for label in [("/tasks", "POST", "201"), ("/tasks/{task_id}", "GET", "200")]:
        assert (once[label], twice[label]) == (1, 2), label
    assert (once[("<unmatched>", "POST", "401")], twice[("<unmatched>", "POST", "401")]) == (1, 2)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(
    task_type=st.text(),
    payload=st.none() | JSON_VALUES,
    with_payload=st.booleans(),
    traceparent=st.none() | st.text(),
)
def test_a_plain_body_becomes_the_request_the_model_makes(
    task_type: str, payload: Any, with_payload: bool, traceparent: str | None
) -> None:
    body = {"type": task_type, **({"payload": payload} if with_payload else {})}
    expected = SubmitTask.model_validate(body).to_request(traceparent)
    assert submit_request(body, traceparent) == expected
