"""The DynamoDB repository's batched adds when a BatchWriteItem's answer is lost or
refused, through a real proxy in front of the local endpoint: a call that may have
landed is never replayed as it is (the task may have moved on since), its items are put
again one by one on the condition that they are absent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.dynamodb import DynamoDbTaskRepository
from domain.models import Task
from tests.support.aws import (
    AwsResources,
    aws_endpoint,
    client_config,
    dynamodb_client,
    fresh_resources,
    json_error_response,
)
from tests.support.faulty_proxy import FaultyProxy

pytestmark = pytest.mark.aws

NOW = datetime.now(UTC)
BIG = {"text": "x" * 2000}
"""Stored beside the state item: an add writes two items."""


@pytest.fixture
def aws() -> Iterator[AwsResources]:
    with fresh_resources(aws_endpoint()) as resources:
        yield resources


def operations(proxy: FaultyProxy) -> list[str]:
    return [seen.headers.get("x-amz-target", "").split(".")[-1] for seen in proxy.seen]


@pytest.mark.parametrize("fault", ["drop", "unavailable"])
async def test_a_batch_write_that_may_have_landed_is_put_again_conditionally(
    aws: AwsResources, fault: str
) -> None:
    """``drop``: the endpoint wrote the items and the answer was lost; ``unavailable``:
    a 503 before the endpoint saw the call. Either way the task is stored once, and
    botocore did not send the batch again."""
    with FaultyProxy(aws.endpoint, faults={("POST", "/"): [fault]}) as proxy:
        client = dynamodb_client(proxy.url, client_config(read_timeout=5))
        repo = DynamoDbTaskRepository(client, aws.table_name)
        task = Task.create("email", BIG, NOW)
        try:
            await repo.add(task)
            stored = await repo.get(task.id)
        finally:
            client.close()
    assert stored == task
    assert operations(proxy)[:3] == ["BatchWriteItem", "PutItem", "BatchWriteItem"]
    assert proxy.seen[0].fault == fault


async def test_a_throttled_batch_is_retried_by_botocore_as_it_is(aws: AwsResources) -> None:
    """Throttling wrote nothing: botocore's own retry of the whole call is safe."""
    client = dynamodb_client(aws.endpoint)
    answers: list[str] = []

    def throttle_once(**_: Any) -> Any:
        answers.append("call")
        if len(answers) == 1:
            return json_error_response(
                400, "com.amazonaws.dynamodb.v20120810#ThrottlingException", "injected"
            )
        return None

    client.meta.events.register("before-send.dynamodb.BatchWriteItem", throttle_once)
    repo = DynamoDbTaskRepository(client, aws.table_name)
    task = Task.create("email", None, NOW)
    await repo.add(task)
    assert len(answers) == 2
    assert await repo.get(task.id) == task
