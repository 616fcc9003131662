"""Every error status the API returns, and the last-resort 500."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from dependency_injector import providers
from starlette.types import Message, Scope

from adapters.clock import SystemClock
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository
from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.errors import (
    ConcurrencyConflict,
    InfrastructureError,
    TaskAlreadyExists,
    TaskQueueError,
    TaskStateConflict,
)
from domain.models import Task
from domain.priorities import Priority
from entrypoints.http.app import create_app
from tests.support.http_app import Serve

LIMIT = 256 * 1024


class UnreachableQueue(InMemoryTaskQueue):
    """A queue whose sends fail the way an adapter reports an outage."""

    def __init__(self) -> None:
        super().__init__(SystemClock())

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        raise InfrastructureError("queue", "connection refused")

    async def send_batch(self, items: object, *, priority: Priority = Priority.DEFAULT) -> None:
        raise InfrastructureError("queue", "connection refused")


class BuggyRepository(InMemoryTaskRepository):
    """Fails with an unexpected exception whose message quotes the task payload."""

    async def add(self, task: Task) -> None:
        raise RuntimeError(f"bug while storing {task.payload!r}")

    async def get(self, task_id: str) -> Task:
        raise RuntimeError("bug while reading")


class ConflictingRepository(InMemoryTaskRepository):
    """Raises a given domain conflict on add, as a store that lost a race would."""

    def __init__(self, error: TaskQueueError) -> None:
        super().__init__()
        self.error = error

    async def add(self, task: Task) -> None:
        raise self.error


class UnreachableRepository(InMemoryTaskRepository):
    async def get(self, task_id: str) -> Task:
        raise InfrastructureError("repository", "timed out")


async def _stored(container: Container) -> int:
    return (await container.task_service().metrics()).total


# -- 400 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"not json",
        b'{"type": "email",}',
        b"\xff\xfe\x00garbage",
        b'{"type": "email", "payload": NaN}',
        b'{"type": "email", "payload": Infinity}',
        b'{"type": "email", "payload": {"to": "a@b.io", "n": -1e999}}',
        b'{"type": "email", "payload": ' + b"9" * 5000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
async def test_malformed_json_is_400(http_client: httpx.AsyncClient, body: bytes) -> None:
    response = await http_client.post("/tasks", content=body)

    assert response.status_code == 400
    assert response.json()["error"].startswith("request body")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"[]", "an array"),
        (b'"email"', "a string"),
        (b"3", "a number"),
        (b"null", "null"),
        (b"true", "a boolean"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_400(
    http_client: httpx.AsyncClient, body: bytes, kind: str
) -> None:
    response = await http_client.post("/tasks", content=body)

    assert response.status_code == 400
    assert response.json() == {"error": f"request body must be a JSON object, not {kind}"}


async def test_content_type_is_not_required(http_client: httpx.AsyncClient) -> None:
    # curl -d sends application/x-www-form-urlencoded; the Go service accepted it.
    response = await http_client.post(
        "/tasks",
        content=b'{"type": "email", "payload": "a@b.io"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 201


# -- 413 --------------------------------------------------------------------------------


async def test_body_over_the_limit_with_content_length_is_413(
    http_client: httpx.AsyncClient,
) -> None:
    body = b'{"type": "email", "payload": "' + b"x" * LIMIT + b'"}'

    response = await http_client.post("/tasks", content=body)

    assert response.status_code == 413
    assert str(LIMIT) in response.json()["error"]


async def test_declared_length_over_the_limit_is_refused_before_reading(
    http_client: httpx.AsyncClient,
) -> None:
    chunks_read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        chunks_read += 1
        yield b"{}"

    response = await http_client.post(
        "/tasks", content=body(), headers={"content-length": str(LIMIT + 1)}
    )

    assert response.status_code == 413
    assert chunks_read == 0


async def test_chunked_body_over_the_limit_is_413_while_streaming(
    http_client: httpx.AsyncClient,
) -> None:
    chunk = b"x" * 16 * 1024
    total_chunks = 1000  # 16 MiB, far over the limit
    chunks_read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_read
        yield b'{"type": "email", "payload": "'
        for _ in range(total_chunks):
            chunks_read += 1
            yield chunk

    response = await http_client.post("/tasks", content=body())

    assert response.status_code == 413
    assert "error" in response.json()
    assert chunks_read <= LIMIT // len(chunk) + 1  # stopped reading at the limit
    assert (await http_client.get("/metrics")).json()["total_tasks"] == 0


async def test_chunked_body_is_sent_without_content_length(
    http_client: httpx.AsyncClient,
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"type": "email", '
        yield b'"payload": "a@b.io"}'

    request = http_client.build_request("POST", "/tasks", content=body())
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"

    response = await http_client.send(request)

    assert response.status_code == 201


@pytest.mark.parametrize("declared", [b"\xb2", b"abc", b"-1", b"", b"1e9"])
async def test_a_malformed_content_length_is_ignored_and_the_body_counted(
    http_container: Container, declared: bytes
) -> None:
    app = create_app(http_container)
    body = b'{"type": "email", "payload": "a@b.io"}'
    sent: list[Message] = []
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/tasks",
        "raw_path": b"/tasks",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-length", declared)],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)

    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 201


async def test_body_limit_is_a_setting(serve: Serve) -> None:
    container = build_container(Settings(backend="memory", max_body_bytes=2048))
    body = b'{"type": "email", "payload": "a@b.io", "pad": "' + b"x" * 2048 + b'"}'
    async with serve(create_app(container)) as client:
        response = await client.post("/tasks", content=body)

    assert response.status_code == 413
    assert "2048" in response.json()["error"]


# -- 404 and 405 -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/tasks/a/b", "/tasks/..%2F..", "/TASKS"])
async def test_unknown_route_is_404_json(http_client: httpx.AsyncClient, path: str) -> None:
    response = await http_client.get(path)

    assert response.status_code == 404
    assert response.json()["error"].startswith("no route for GET")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/tasks", {"GET", "HEAD", "POST"}),
        ("PUT", "/tasks", {"GET", "HEAD", "POST"}),
        ("POST", "/tasks/5b1c0a4e-0000-4000-8000-000000000001", {"GET", "HEAD"}),
        ("POST", "/metrics", {"GET", "HEAD"}),
        ("POST", "/health", {"GET", "HEAD"}),
        ("DELETE", "/ready", {"GET", "HEAD"}),
        ("POST", "/openapi.json", {"GET", "HEAD"}),
    ],
)
async def test_wrong_method_is_405_with_allow(
    http_client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await http_client.request(method, path)

    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
    assert response.json()["error"].startswith(f"method {method} not allowed on")


# -- 503 --------------------------------------------------------------------------------


async def test_queue_send_failure_is_503_with_retry_after_and_nothing_is_stored(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    http_container.queue.override(providers.Object(UnreachableQueue()))

    response = await http_client.post("/tasks", json={"type": "email", "payload": "a@b.io"})

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert "task_id" not in body
    assert "not created" in body["error"] and "retry later" in body["error"]
    http_container.queue.reset_override()
    assert (await http_client.get("/metrics")).json()["total_tasks"] == 0


async def test_repository_outage_is_503_with_retry_after(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    http_container.repository.override(providers.Object(UnreachableRepository()))

    response = await http_client.get(f"/tasks/{uuid.uuid4()}")

    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json() == {"error": "repository unavailable, retry later"}


# -- 409 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        TaskAlreadyExists("t-1"),
        ConcurrencyConflict("t-1", "lost a race"),
        TaskStateConflict("t-1", "COMPLETED", "cancel"),
    ],
)
async def test_domain_conflicts_are_409(
    http_container: Container, http_client: httpx.AsyncClient, error: TaskQueueError
) -> None:
    http_container.repository.override(providers.Object(ConflictingRepository(error)))

    response = await http_client.post("/tasks", json={"type": "email", "payload": "a@b.io"})

    assert response.status_code == 409
    assert response.json() == {"error": str(error)}


# -- 500: last resort only ------------------------------------------------------------


async def test_unexpected_exception_is_a_json_500_that_does_not_log_the_payload(
    http_container: Container,
    http_client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http_container.repository.override(providers.Object(BuggyRepository()))
    secret = "very-secret-address@example.com"

    with caplog.at_level(logging.DEBUG):
        response = await http_client.post("/tasks", json={"type": "email", "payload": secret})

    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}
    assert "RuntimeError" in caplog.text
    assert secret not in caplog.text


async def test_payloads_are_never_logged(
    http_container: Container,
    http_client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http_container.queue.override(providers.Object(UnreachableQueue()))
    secret = "another-secret@example.com"

    with caplog.at_level(logging.DEBUG):
        await http_client.post("/tasks", json={"type": "email", "payload": secret})
        await http_client.post("/tasks", json={"type": "email", "payload": {"to": 1, "s": secret}})
        await http_client.post("/tasks", content=b'{"type": "email", "payload": "' + b"x" * LIMIT)

    assert caplog.records  # the 503 was logged...
    assert secret not in caplog.text  # ...without the payload


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b"[]",
        b"{",
        b'{"type": null}',
        b'{"type": "email"}',
        b'{"type": "email", "payload": {"to": null}}',
        b'{"type": ["email"], "payload": 1}',
        b'{"type": "\\ud800", "payload": "\\udfff"}',
        b'{"type": "email", "payload": "a@b.io", "max_attempts": 1e999}',
        b'{"type": "email", "payload": "a@b.io", "delay_seconds": 1e999}',
        b'{"type": "email", "payload": "a@b.io", "timeout_seconds": -0.0}',
        b'{"type": "image-resize", "payload": {"image": "a", "width": 1e400, "height": 1}}',
        b'{"type": "data-export", "payload": {"dataset": "x", "format": {"a": 1}}}',
        b'{"type": "data-export", "payload": {"dataset": "x", "format": []}}',
        b'{"__proto__": {}, "type": "email", "payload": "a@b.io"}',
    ],
)
async def test_common_bad_inputs_never_reach_the_catch_all(
    http_client: httpx.AsyncClient, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="taskq.http"):
        response = await http_client.post("/tasks", content=body)

    assert response.status_code in {201, 400, 422}, response.text
    assert "error" in response.json() or response.status_code == 201
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_errors_for_stored_nothing(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    for body in (b"{", b"[]", b'{"type": "sms"}', b'{"type": "email", "payload": 1}'):
        await http_client.post("/tasks", content=body)

    assert await _stored(http_container) == 0
