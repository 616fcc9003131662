"""DynamoDbTaskRepository against a real local DynamoDB endpoint: counts from the stream,
sharded status index, retention, and error translation (failures injected into a real
boto3 client with botocore event hooks)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.dynamodb import GSI1_PK, TTL_ATTRIBUTE, DynamoDbTaskRepository
from domain.errors import ConcurrencyConflict, InfrastructureError, TaskNotFound
from domain.models import Task, TaskStatus
from tests.support.aws import (
    AwsResources,
    aws_endpoint,
    client_config,
    dynamodb_client,
    fresh_resources,
    json_error_response,
    stream_counts,
)

pytestmark = pytest.mark.aws

NOW = datetime.now(UTC)
DYNAMODB_ERROR = "com.amazonaws.dynamodb.v20120810#"


@pytest.fixture
def aws() -> Iterator[AwsResources]:
    with fresh_resources(aws_endpoint()) as resources:
        yield resources


def repository(aws: AwsResources, **options: Any) -> DynamoDbTaskRepository:
    return DynamoDbTaskRepository(aws.dynamodb, aws.table_name, **options)


def scan_tasks(aws: AwsResources) -> list[dict[str, Any]]:
    items = aws.dynamodb.scan(TableName=aws.table_name)["Items"]
    return [item for item in items if item["sk"]["S"] == "TASK"]


async def test_counters_stay_exact_under_concurrent_transitions(aws: AwsResources) -> None:
    repo = repository(aws)
    tasks = [Task.create("email", n, NOW + timedelta(seconds=n)) for n in range(12)]
    await asyncio.gather(*(repo.add(task) for task in tasks))

    async def claim_then_finish(task: Task, contender: int) -> bool:
        claimed = task.claim(f"lease-{contender}", NOW, 30)
        try:
            await repo.transition(claimed, expected=task)
        except ConcurrencyConflict:
            return False
        if contender % 2:
            await repo.transition(claimed.complete("ok", NOW), expected=claimed)
        else:
            await repo.transition(claimed.fail("boom", NOW), expected=claimed)
        return True

    # Three workers race for every task: exactly one claim per task may win.
    wins = await asyncio.gather(
        *(claim_then_finish(task, contender) for task in tasks for contender in range(3))
    )
    assert wins.count(True) == len(tasks)

    assert await stream_counts(repo).run_once()  # the stream's records, counted
    counts = await repo.count_by_status()
    stored = [item["status"]["S"] for item in scan_tasks(aws)]
    assert counts == {status: stored.count(status.value) for status in TaskStatus}
    assert counts[TaskStatus.COMPLETED] + counts[TaskStatus.FAILED] == len(tasks)
    assert sum(counts.values()) == len(tasks)


async def test_one_status_is_spread_over_several_index_partitions(aws: AwsResources) -> None:
    repo = repository(aws, index_shards=4)
    tasks = [Task.create("email", None, NOW + timedelta(seconds=n)) for n in range(16)]
    for task in tasks:
        await repo.add(task)

    partitions = {item[GSI1_PK]["S"] for item in scan_tasks(aws)}
    assert len(partitions) > 1
    assert all(p.startswith("STATUS#PENDING#") for p in partitions)
    page = await repo.list_by_status(TaskStatus.PENDING, limit=16)
    assert [t.id for t in page.items] == [t.id for t in reversed(tasks)]
    assert page.next_cursor is None


async def test_finished_tasks_past_their_retention_are_gone_on_read(aws: AwsResources) -> None:
    repo = repository(aws, retention_seconds=3600)
    old = Task.create("email", "old", NOW - timedelta(hours=3))
    recent = Task.create("email", "recent", NOW - timedelta(minutes=1))
    running = Task.create("email", "running", NOW - timedelta(hours=3))
    for task in (old, recent, running):
        await repo.add(task)
    old_done = old.cancel(NOW - timedelta(hours=2))
    recent_done = recent.cancel(NOW)
    await repo.transition(old_done, expected=old)
    await repo.transition(recent_done, expected=recent)

    with pytest.raises(TaskNotFound):
        await repo.get(old.id)
    assert await repo.get(recent.id) == recent_done
    assert await repo.get(running.id) == running, "unfinished tasks never expire"
    page = await repo.list_by_status(TaskStatus.CANCELLED, limit=10)
    assert [t.id for t in page.items] == [recent.id]

    expires = {item["id"]["S"]: item.get(TTL_ATTRIBUTE) for item in scan_tasks(aws)}
    assert expires[running.id] is None
    recent_expiry = expires[recent.id]
    assert recent_expiry is not None
    assert int(recent_expiry["N"]) == pytest.approx((NOW + timedelta(hours=1)).timestamp(), abs=1)


async def test_large_payload_and_result_items_expire_with_their_task(aws: AwsResources) -> None:
    repo = repository(aws, retention_seconds=3600)
    large = {"text": "p" * 2000, "n": list(range(100))}
    task = Task.create("email", large, NOW)
    await repo.add(task)
    claimed = task.claim("lease-1", NOW, 30)
    await repo.transition(claimed, expected=task)
    done = claimed.complete({"rows": ["r" * 40] * 60}, NOW)
    await repo.transition(done, expected=claimed)
    assert await repo.get(task.id) == done
    items = aws.dynamodb.query(
        TableName=aws.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"TASK#{task.id}"}},
        ConsistentRead=True,
    )["Items"]
    expiry = {item["sk"]["S"].split("#")[0]: item.get(TTL_ATTRIBUTE) for item in items}
    assert set(expiry) == {"TASK", "PAYLOAD", "RESULT"}, "both stored apart"
    assert expiry["TASK"] is not None
    assert expiry["PAYLOAD"] == expiry["TASK"]
    assert expiry["RESULT"] == expiry["TASK"]


def inject(
    aws: AwsResources, operation: str, error_type: str, status: int, times: int
) -> tuple[DynamoDbTaskRepository, list[int]]:
    client = dynamodb_client(
        aws.endpoint, client_config(retries={"mode": "standard", "total_max_attempts": 3})
    )
    calls: list[int] = []

    def fail(**_: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            return json_error_response(status, DYNAMODB_ERROR + error_type, "injected")
        return None

    client.meta.events.register(f"before-send.dynamodb.{operation}", fail)
    return DynamoDbTaskRepository(client, aws.table_name), calls


async def test_throttling_is_retried_by_botocore(aws: AwsResources) -> None:
    repo, calls = inject(aws, "Query", "ProvisionedThroughputExceededException", 400, times=2)
    task = Task.create("email", None, NOW)
    await repository(aws).add(task)

    assert await repo.get(task.id) == task
    assert len(calls) == 3


async def test_throttling_that_outlasts_the_retries_is_an_infrastructure_error(
    aws: AwsResources,
) -> None:
    repo, calls = inject(aws, "BatchWriteItem", "ThrottlingException", 400, times=100)
    with pytest.raises(InfrastructureError) as raised:
        await repo.add(Task.create("email", None, NOW))
    assert raised.value.dependency == "dynamodb"
    assert "ThrottlingException" in raised.value.detail
    assert len(calls) == 3


async def test_a_non_retryable_error_is_an_infrastructure_error_at_once(
    aws: AwsResources,
) -> None:
    repo, calls = inject(aws, "GetItem", "AccessDeniedException", 400, times=100)
    with pytest.raises(InfrastructureError, match="AccessDeniedException"):
        await repo.count_by_status()
    assert len(calls) == 1


async def test_an_unreachable_endpoint_is_an_infrastructure_error() -> None:
    client = dynamodb_client(
        "http://127.0.0.1:9",
        client_config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(InfrastructureError) as raised:
        await DynamoDbTaskRepository(client, "nowhere").ping()
    assert raised.value.dependency == "dynamodb"


async def test_a_same_status_write_is_a_compare_and_set_too(aws: AwsResources) -> None:
    """A heartbeat keeps the status (a conditional update of the lease alone):
    it must still lose to a newer version and tell a missing task from a conflict."""
    repo = repository(aws)
    task = Task.create("email", None, NOW)
    await repo.add(task)
    claimed = task.claim("lease-a", NOW, 30)
    await repo.transition(claimed, expected=task)
    beat = claimed.extend_lease(NOW + timedelta(seconds=5), 30)
    await repo.transition(beat, expected=claimed)

    with pytest.raises(ConcurrencyConflict, match="v2"):
        await repo.transition(claimed.extend_lease(NOW, 60), expected=claimed)
    assert await repo.get(task.id) == beat
    assert await stream_counts(repo).run_once()
    assert (await repo.count_by_status())[TaskStatus.PROCESSING] == 1

    ghost = Task.create("email", None, NOW).claim("x", NOW, 30)
    with pytest.raises(TaskNotFound):
        await repo.transition(ghost.extend_lease(NOW, 30), expected=ghost)


async def test_a_flag_is_stored_only_when_it_is_set(aws: AwsResources) -> None:
    """Items stay small: ``isolated`` and ``cancel_requested`` are absent while false."""
    repo = repository(aws)
    task = Task.create("email", "a@b.co", NOW)
    await repo.add(task)
    claimed = task.claim("lease-1", NOW, 30)
    await repo.transition(claimed, expected=task)
    [item] = scan_tasks(aws)
    assert "isolated" not in item and "cancel_requested" not in item

    taken = claimed.take_over("lease-2", NOW + timedelta(seconds=31), 30)
    await repo.transition(taken, expected=claimed)
    [item] = scan_tasks(aws)
    assert item["isolated"] == {"BOOL": True}
    assert await repo.get(task.id) == taken


async def test_a_large_payload_and_result_live_beside_a_small_state_item(
    aws: AwsResources,
) -> None:
    """A status change is billed by the whole item: the state item stays under 1 KB
    (1 WRU) whatever the payload, which is stored, and read back, beside it."""
    from adapters.dynamodb.table import WRITE_UNIT_BYTES
    from adapters.dynamodb.task_items import item_size

    repo = repository(aws)
    payload = {"rows": [{"id": n, "name": f"user-{n}"} for n in range(200)]}
    task = Task.create("email", payload, NOW)
    await repo.add(task)
    claimed = task.claim("lease-a", NOW, 30)
    await repo.transition(claimed, expected=task)
    result = {"report": "y" * 5000}
    done = claimed.complete(result, NOW)
    await repo.transition(done, expected=claimed)

    [state] = scan_tasks(aws)
    assert item_size(state) < WRITE_UNIT_BYTES
    assert await repo.get(task.id) == done
    page = await repo.list_by_status(TaskStatus.COMPLETED, limit=5)
    assert page.items == [done]


async def test_a_late_large_result_of_a_lost_lease_does_not_replace_the_winners(
    aws: AwsResources,
) -> None:
    repo = repository(aws)
    task = Task.create("email", None, NOW)
    await repo.add(task)
    first = task.claim("lease-a", NOW, 30)
    await repo.transition(first, expected=task)
    second = first.take_over("lease-b", NOW + timedelta(seconds=60), 30)
    await repo.transition(second, expected=first)
    won = second.complete({"by": "b" * 1000}, NOW)
    await repo.transition(won, expected=second)

    with pytest.raises(ConcurrencyConflict):
        await repo.transition(first.complete({"by": "a" * 1000}, NOW), expected=first)
    assert (await repo.get(task.id)).result == {"by": "b" * 1000}
