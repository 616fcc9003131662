"""The W3C trace context stored with a task: read from the request, validated, kept by
every backend (tests/contract has the round trip), with no OpenTelemetry needed.
test_tracing_otel.py follows one trace across the queue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.dynamodb.task_items import task_from_item, task_item
from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.models import Task
from domain.services import SubmitRequest
from domain.tracing import parse_traceparent
from entrypoints.http.app import create_app
from tests.support.http_app import serve_app
from tests.support.trace_context import CALLER_SPAN, TRACE_ID, TRACEPARENT

# -- the trace context a task keeps (no OpenTelemetry needed) ---------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (TRACEPARENT, TRACEPARENT),
        (f" {TRACEPARENT}\t", TRACEPARENT),  # optional whitespace around a header value
        (f"00-{TRACE_ID}-{CALLER_SPAN}-00", f"00-{TRACE_ID}-{CALLER_SPAN}-00"),  # unsampled
        # a later version is read as 00 from its first fields
        (f"01-{TRACE_ID}-{CALLER_SPAN}-01-what-comes-next", TRACEPARENT),
        (f"01-{TRACE_ID}-{CALLER_SPAN}-01", TRACEPARENT),
    ],
)
def test_a_valid_traceparent_is_kept(raw: str, stored: str) -> None:
    assert parse_traceparent(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "garbage",
        TRACEPARENT.upper(),  # the spec's hex is lower case
        f"ff-{TRACE_ID}-{CALLER_SPAN}-01",  # version ff is invalid
        f"00-{'0' * 32}-{CALLER_SPAN}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE_ID}-{CALLER_SPAN}-01-extra",  # version 00 has exactly four fields
        f"01-{TRACE_ID}-{CALLER_SPAN}-01x",  # a later version: a field must follow a '-'
        f"00-{TRACE_ID[:-1]}-{CALLER_SPAN}-01",
        f"00_{TRACE_ID}_{CALLER_SPAN}_01",
    ],
)
def test_a_malformed_traceparent_is_ignored(raw: str | None) -> None:
    assert parse_traceparent(raw) is None


@pytest.fixture
def container() -> Container:
    return build_container(Settings(backend="memory"))


async def test_the_traceparent_header_is_stored_with_the_task_without_opentelemetry(
    container: Container,
) -> None:
    email = {"type": "email", "payload": "a@b.io"}
    async with serve_app(create_app(container)) as client:
        ok = await client.post("/tasks", json=email, headers={"traceparent": TRACEPARENT})
        bad = await client.post("/tasks", json=email, headers={"traceparent": "x-y"})
        batch = await client.post(
            "/tasks/batch", json={"tasks": [email] * 2}, headers={"traceparent": TRACEPARENT}
        )
    assert ok.status_code == bad.status_code == 201, (ok.text, bad.text)
    repository = container.repository()
    assert (await repository.get(ok.json()["id"])).traceparent == TRACEPARENT
    assert (await repository.get(bad.json()["id"])).traceparent is None  # ignored, no error
    results = batch.json()["results"]
    assert [r["status"] for r in results] == [201, 201]
    for item in results:
        assert (await repository.get(item["task"]["id"])).traceparent == TRACEPARENT


async def test_a_submit_without_trace_context_stores_none(container: Container) -> None:
    task = await container.task_service().submit(SubmitRequest("email", "a@b.io"))
    assert (await container.repository().get(task.id)).traceparent is None


def test_a_dynamodb_item_has_the_trace_context_only_when_the_task_has_one() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    plain = Task.create("email", "a@b.io", now)
    traced = Task.create("email", "a@b.io", now, traceparent=TRACEPARENT)
    assert "traceparent" not in task_item(plain, index_shards=1, retention_seconds=None)
    item = task_item(traced, index_shards=1, retention_seconds=None)
    assert item["traceparent"] == {"S": TRACEPARENT}
    assert task_from_item(item) == traced
