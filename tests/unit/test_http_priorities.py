"""``priority`` through the API on every backend: accepted and returned on memory and
sqlite, a 422 naming ``TASKQ_PRIORITIES`` on aws without it, and on aws with it the
queues ``<queue>-high`` / ``<queue>-low`` that `taskq init` made."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.priorities import Priority
from entrypoints.http.app import create_app
from tests.support.http_app import Serve

EMAIL = {"type": "email", "payload": "a@b.io"}


def aws_container(*, priorities: bool) -> Iterator[Container]:
    from tests.support.aws import aws_endpoint, fresh_resources, use_shared_clients

    endpoint = aws_endpoint()
    with fresh_resources(endpoint, max_receive_count=5, priorities=priorities) as aws:
        container = build_container(
            Settings(
                backend="aws",
                aws_endpoint_url=endpoint,
                sqs_queue_name=aws.queue_name,  # -high / -low found by name
                sqs_queue_url=aws.provisioned.queue_url,
                sqs_dlq_url=aws.provisioned.dlq_url,
                dynamodb_table=aws.table_name,
                api_keys="k",
                priorities=priorities,
            )
        )
        use_shared_clients(container, endpoint)
        yield container


@pytest.fixture(params=["memory", "sqlite", pytest.param("aws-priorities", marks=pytest.mark.aws)])
def prioritised(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    if request.param == "aws-priorities":
        yield from aws_container(priorities=True)
        return
    settings = Settings(backend=request.param, sqlite_path=str(tmp_path / "t.db"), api_keys="k")
    yield build_container(settings)


async def _client(container: Container, serve: Serve) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(container)) as client:
        client.headers["Authorization"] = "Bearer k"
        yield client


@pytest.fixture
async def client(prioritised: Container, serve: Serve) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(prioritised, serve):
        yield client


async def test_a_priority_is_accepted_returned_and_received_first(
    client: httpx.AsyncClient, prioritised: Container
) -> None:
    low = await client.post("/tasks", json={**EMAIL, "priority": "low"})
    high = await client.post("/tasks", json={**EMAIL, "priority": "high"})
    plain = await client.post("/tasks", json=EMAIL)
    assert (low.status_code, high.status_code, plain.status_code) == (201, 201, 201)
    assert [r.json()["priority"] for r in (low, high, plain)] == ["low", "high", "default"]
    got = await client.get(f"/tasks/{high.json()['id']}")
    assert got.json()["priority"] == "high"

    deliveries = await prioritised.queue().receive(
        max_messages=3, visibility_timeout=30, wait_seconds=1
    )

    ids = [d.task_id for d in deliveries]
    assert ids == [high.json()["id"], plain.json()["id"], low.json()["id"]]


async def test_a_batch_item_takes_a_priority(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/tasks/batch", json={"tasks": [{**EMAIL, "priority": "high"}, {**EMAIL}]}
    )

    assert answer.status_code in (200, 201, 207)
    results = answer.json()["results"]
    assert [r["task"]["priority"] for r in results] == ["high", "default"]


async def test_an_unknown_priority_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    answer = await client.post("/tasks", json={**EMAIL, "priority": "urgent"})

    assert answer.status_code == 422
    assert "priority" in answer.text


@pytest.mark.aws
@pytest.mark.parametrize("priority", ["high", "low"])
async def test_on_aws_without_the_setting_a_priority_is_422_naming_it(
    serve: Serve, priority: str
) -> None:
    for container in aws_container(priorities=False):
        async for client in _client(container, serve):
            answer = await client.post("/tasks", json={**EMAIL, "priority": priority})
            assert answer.status_code == 422
            assert "TASKQ_PRIORITIES=true" in answer.text
            assert "priority" in answer.text
            ok = await client.post("/tasks", json={**EMAIL, "priority": "default"})
            assert ok.status_code == 201
            assert (await container.queue().depth()).total == 1


def test_the_weights_setting_is_checked_at_start() -> None:
    with pytest.raises(
        ValueError, match="priority_weights(.|\n)*'high' must be an integer of at least 1"
    ):
        Settings(priority_weights="high=0")
    assert Settings(priority_weights="high=9").weights.of(Priority.HIGH) == 9
