"""SqsTaskQueue against a real local SQS endpoint: what the contract suite cannot show.

Failures are injected into a real boto3 client with botocore event hooks; nothing of
ours is mocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.sqs import SqsTaskQueue, dead_letters
from domain.errors import DeadLetterNotFound, InfrastructureError
from tests.support.aws import (
    AwsResources,
    aws_endpoint,
    client_config,
    fresh_resources,
    json_error_response,
    sqs_client,
)

pytestmark = pytest.mark.aws


@pytest.fixture
def aws() -> Iterator[AwsResources]:
    with fresh_resources(aws_endpoint()) as resources:
        yield resources


def queue_with_own_client(aws: AwsResources, **config: Any) -> tuple[SqsTaskQueue, Any]:
    """A queue on a client of its own, so hooks registered on it stay in this test."""
    client = sqs_client(aws.endpoint, client_config(**config) if config else None)
    return SqsTaskQueue(client, aws.provisioned.queue_url, aws.provisioned.dlq_url), client


async def drain_ids(queue: SqsTaskQueue) -> set[str]:
    ids: set[str] = set()
    while batch := await queue.receive(max_messages=10, visibility_timeout=30, wait_seconds=0):
        ids.update(d.task_id for d in batch if d.task_id)
    return ids


def fail_entries_of_send_batch(
    client: Any, *, task_ids: set[str], times: int, sender_fault: bool
) -> list[int]:
    """Make SendMessageBatch report the entries carrying ``task_ids`` as failed (they
    were really sent to nobody: the hook also drops them from the request), ``times``
    times. Returns a list that counts the calls."""
    calls: list[int] = []
    failing: dict[str, str] = {}

    def before_call(params: dict[str, Any], **_: Any) -> None:
        calls.append(1)
        failing.clear()
        if len(calls) > times:
            return
        kept = []
        for entry in params["Entries"]:
            if any(task_id in entry["MessageBody"] for task_id in task_ids):
                failing[entry["Id"]] = entry["MessageBody"]
            else:
                kept.append(entry)
        params["Entries"] = kept or params["Entries"][:0]

    def after_call(parsed: dict[str, Any], **_: Any) -> None:
        parsed.setdefault("Failed", [])
        for entry_id in failing:
            parsed["Failed"].append(
                {
                    "Id": entry_id,
                    "SenderFault": sender_fault,
                    "Code": "InternalError" if not sender_fault else "InvalidParameterValue",
                    "Message": "injected",
                }
            )

    client.meta.events.register("before-parameter-build.sqs.SendMessageBatch", before_call)
    client.meta.events.register("after-call.sqs.SendMessageBatch", after_call)
    return calls


async def test_send_batch_retries_entries_that_failed_on_the_server(aws: AwsResources) -> None:
    queue, client = queue_with_own_client(aws)
    calls = fail_entries_of_send_batch(client, task_ids={"t-3", "t-7"}, times=1, sender_fault=False)

    await queue.send_batch([(f"t-{i}", 0) for i in range(10)])

    assert len(calls) == 2, "one call, then one retry of the failed entries"
    assert await drain_ids(queue) == {f"t-{i}" for i in range(10)}


async def test_send_batch_names_the_task_ids_it_could_not_send(aws: AwsResources) -> None:
    queue, client = queue_with_own_client(aws)
    fail_entries_of_send_batch(client, task_ids={"t-12"}, times=100, sender_fault=False)

    with pytest.raises(InfrastructureError) as raised:
        await queue.send_batch([(f"t-{i}", 0) for i in range(15)])

    assert "t-12" in str(raised.value)
    assert "1 of 15" in str(raised.value)
    assert await drain_ids(queue) == {f"t-{i}" for i in range(15)} - {"t-12"}


async def test_a_sender_fault_is_not_retried(aws: AwsResources) -> None:
    queue, client = queue_with_own_client(aws)
    calls = fail_entries_of_send_batch(client, task_ids={"t-1"}, times=100, sender_fault=True)

    with pytest.raises(InfrastructureError, match="t-1"):
        await queue.send_batch([("t-0", 0), ("t-1", 0)])
    assert len(calls) == 1


async def test_an_oversize_body_is_refused_before_anything_is_sent(aws: AwsResources) -> None:
    queue = SqsTaskQueue(
        aws.sqs, aws.provisioned.queue_url, aws.provisioned.dlq_url, max_message_bytes=1024
    )
    with pytest.raises(ValueError, match="1024"):
        await queue.send_batch([("ok", 0), ("x" * 2000, 0)])
    assert (await queue.depth()).total == 0


async def test_throttling_is_retried_by_botocore_then_reported(aws: AwsResources) -> None:
    queue, client = queue_with_own_client(
        aws, retries={"mode": "standard", "total_max_attempts": 3}
    )
    attempts: list[int] = []

    def throttle(**_: Any) -> Any:
        attempts.append(1)
        return json_error_response(400, "ThrottlingException", "Rate exceeded")

    client.meta.events.register("before-send.sqs.SendMessage", throttle)
    with pytest.raises(InfrastructureError) as raised:
        await queue.send("t-1")
    assert raised.value.dependency == "sqs"
    assert "ThrottlingException" in raised.value.detail
    assert len(attempts) == 3


async def test_a_non_retryable_error_is_reported_at_once(aws: AwsResources) -> None:
    queue, client = queue_with_own_client(
        aws, retries={"mode": "standard", "total_max_attempts": 3}
    )
    attempts: list[int] = []

    def deny(**_: Any) -> Any:
        attempts.append(1)
        return json_error_response(400, "AccessDenied", "not allowed")

    client.meta.events.register("before-send.sqs.GetQueueAttributes", deny)
    with pytest.raises(InfrastructureError, match="AccessDenied"):
        await queue.ping()
    assert len(attempts) == 1


async def test_an_unreachable_endpoint_is_an_infrastructure_error() -> None:
    client = sqs_client(
        "http://127.0.0.1:9",
        client_config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1),
    )
    queue = SqsTaskQueue(client, "http://127.0.0.1:9/000000000000/q", "http://127.0.0.1:9/dlq")
    with pytest.raises(InfrastructureError) as raised:
        await queue.depth()
    assert raised.value.dependency == "sqs"


async def test_an_outdated_receipt_is_a_no_op(aws: AwsResources) -> None:
    queue = SqsTaskQueue(aws.sqs, aws.provisioned.queue_url, aws.provisioned.dlq_url)
    await queue.send("t-1")
    [delivery] = await queue.receive(max_messages=1, visibility_timeout=30, wait_seconds=2)
    await queue.ack(delivery)
    # The message is gone: every call on its receipt is now a no-op, not an error.
    await queue.ack(delivery)
    await queue.extend(delivery, visibility_timeout=10)
    await queue.release(delivery)
    await queue.ack_batch([delivery])
    assert (await queue.depth()).total == 0


async def test_dead_letters_listed_stay_there_and_carry_their_reason(aws: AwsResources) -> None:
    queue = SqsTaskQueue(aws.sqs, aws.provisioned.queue_url, aws.provisioned.dlq_url)
    await queue.send_batch([("t-1", 0), ("t-2", 0)])
    deliveries = await queue.receive(max_messages=2, visibility_timeout=30, wait_seconds=2)
    while len(deliveries) < 2:
        deliveries += await queue.receive(max_messages=1, visibility_timeout=30, wait_seconds=2)
    for delivery in deliveries:
        await queue.dead_letter(delivery, reason="handler failed for good")

    for _ in range(2):  # listing twice in a row sees the same letters
        assert {d.task_id for d in await queue.list_dead_letters(limit=10)} == {"t-1", "t-2"}
    messages = aws.sqs.receive_message(
        QueueUrl=aws.provisioned.dlq_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        WaitTimeSeconds=0,
    )["Messages"]
    assert {m["MessageAttributes"]["reason"]["StringValue"] for m in messages} == {
        "handler failed for good"
    }


async def test_a_cancelled_long_poll_hands_back_what_it_receives(aws: AwsResources) -> None:
    """Shutdown cancels receivers mid-poll; their thread still completes the poll, and a
    message it gets then must not stay hidden for a whole lease."""
    queue = SqsTaskQueue(aws.sqs, aws.provisioned.queue_url, aws.provisioned.dlq_url)
    receiver = asyncio.create_task(
        queue.receive(max_messages=1, visibility_timeout=60, wait_seconds=3)
    )
    await asyncio.sleep(0.3)
    receiver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiver
    await queue.send("t-1")

    got = []
    for _ in range(10):  # the abandoned poll may take the message first, then return it
        got = await queue.receive(max_messages=1, visibility_timeout=60, wait_seconds=1)
        if got:
            break
    assert [d.task_id for d in got] == ["t-1"]


async def test_a_search_by_id_is_bounded_says_so_and_hands_every_message_back(
    aws: AwsResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS cannot fetch a message by id: a search receives at most ``SEARCH_CALLS``
    batches (lowered here to one, i.e. ten messages, from a hundred)."""
    monkeypatch.setattr(dead_letters, "SEARCH_CALLS", 1)
    queue = SqsTaskQueue(aws.sqs, aws.provisioned.queue_url, aws.provisioned.dlq_url)
    for i in range(12):
        aws.sqs.send_message(QueueUrl=aws.provisioned.dlq_url, MessageBody=f"poison {i}")

    with pytest.raises(DeadLetterNotFound) as error:
        await queue.drop_dead_letter("beyond-the-bound")

    assert "not among the first 1000 dead letters looked at" in str(error.value)
    listed = await queue.list_dead_letters(limit=20)
    assert len(listed) == 12, "every message looked at is visible again at once"
    assert {d.reason for d in listed} == {None}, "no reason: the engine did not move them"
