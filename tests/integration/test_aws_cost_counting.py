"""The benchmark's request counter (benchmarks/aws_counting.py) against a real local
endpoint: each DynamoDB write charged by the larger of its item's old and new size,
index writes by what they do to the index item, reads by size and consistency, and
the clients the engine forgot to count before (its long polls, the stream)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.aws_counting import RequestCounter
from benchmarks.aws_units import Index
from tests.support.aws import aws_endpoint, dynamodb_client, sqs_client

pytestmark = pytest.mark.aws

STATUS_KEYS_ONLY = Index("status-index", "status", None, "KEYS_ONLY")
STATUS_ALL = Index("status-all", "status", None, "ALL")


@pytest.fixture
def table() -> Iterator[tuple[Any, str]]:
    client = dynamodb_client(aws_endpoint())
    name = f"count-{uuid.uuid4().hex[:10]}"
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    try:
        yield client, name
    finally:
        client.delete_table(TableName=name)


def add_note(client: Any, table: str, item_id: str) -> None:
    """An update of an attribute no index is keyed on."""
    client.update_item(
        TableName=table,
        Key={"id": {"S": item_id}},
        UpdateExpression="SET note = :n",
        ExpressionAttributeValues={":n": {"S": "hi"}},
    )


def by_call(counter: RequestCounter, tasks: int = 1) -> dict[str, dict[str, Any]]:
    return {row["call"]: row for row in counter.summary(tasks)["table"]}


def test_an_update_is_charged_by_the_whole_item_and_its_index_moves(
    table: tuple[Any, str],
) -> None:
    client, name = table
    counter = RequestCounter(indexes={name: [STATUS_KEYS_ONLY]})
    counter.attach(client)
    item = {"id": {"S": "t1"}, "status": {"S": "PENDING"}, "payload": {"S": "x" * 3000}}
    client.put_item(TableName=name, Item=item)
    answer = client.update_item(
        TableName=name,
        Key={"id": {"S": "t1"}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "PROCESSING"}},
    )
    assert "Attributes" not in answer  # the counter's own ALL_NEW is not handed back
    add_note(client, name, "t1")
    rows = by_call(counter)
    assert rows["dynamodb.PutItem"]["wru"] == 3  # 3 KB: 3 units, not 1 per request
    # two updates of a 3 KB item: 3 WRU each; the status change re-keys the index (a
    # delete and a put: 2), the note changes nothing a KEYS_ONLY index holds (0)
    assert rows["dynamodb.UpdateItem"]["wru"] == 6
    assert rows["dynamodb.UpdateItem"]["index_units"] == 2
    assert rows["dynamodb.PutItem"]["index_units"] == 1


def test_an_all_projection_is_written_on_every_change_and_transactions_cost_twice(
    table: tuple[Any, str],
) -> None:
    client, name = table
    counter = RequestCounter(indexes={name: [STATUS_ALL]})
    counter.attach(client)
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": {"id": {"S": "a"}, "status": {"S": "P"}}}},
            {"Put": {"TableName": name, "Item": {"id": {"S": "b"}}}},
        ]
    )
    add_note(client, name, "a")
    rows = by_call(counter)
    assert rows["dynamodb.TransactWriteItems"]["wru"] == 4
    assert rows["dynamodb.TransactWriteItems"]["index_units"] == 1  # b has no status
    assert rows["dynamodb.UpdateItem"]["index_units"] == 1


def test_reads_are_charged_by_size_and_consistency(table: tuple[Any, str]) -> None:
    client, name = table
    client.put_item(TableName=name, Item={"id": {"S": "big"}, "v": {"S": "y" * 5000}})
    counter = RequestCounter()
    counter.attach(client)
    client.get_item(TableName=name, Key={"id": {"S": "big"}}, ConsistentRead=True)
    client.get_item(TableName=name, Key={"id": {"S": "big"}})
    client.get_item(TableName=name, Key={"id": {"S": "none"}})
    # 5 KB consistent: 2; eventually consistent: 1; an absent item: half a unit
    assert by_call(counter)["dynamodb.GetItem"]["rru"] == 3.5


def test_failed_conditional_writes_are_billed_and_sqs_chunks_counted(
    table: tuple[Any, str],
) -> None:
    client, name = table
    sqs = sqs_client(aws_endpoint())
    counter = RequestCounter()
    counter.attach(client)
    counter.attach(sqs)
    client.put_item(TableName=name, Item={"id": {"S": "c"}, "v": {"S": "z" * 1500}})
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName=name,
            Item={"id": {"S": "c"}},
            ConditionExpression="attribute_not_exists(id)",
        )
    url = sqs.create_queue(QueueName=f"count-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    try:
        sqs.send_message(QueueUrl=url, MessageBody="m" * (100 * 1024))
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    finally:
        sqs.delete_queue(QueueUrl=url)
    rows = by_call(counter)
    assert rows["dynamodb.PutItem"]["wru"] == 4  # 2 for the put, 2 for the failed one
    assert rows["sqs.SendMessage"]["billed_requests"] == 2  # 100 KB: two 64 KB chunks
    assert rows["sqs.ReceiveMessage"]["billed_requests"] == 1
    assert rows["sqs.CreateQueue"]["per_task"] == 1


def test_batch_calls_are_charged_item_by_item(table: tuple[Any, str]) -> None:
    """A BatchWriteItem bills each item as its own put (1 WRU per started KB), a
    BatchGetItem each key as its own read (per started 4 KB; an absent item at the
    least), not the call as one."""
    client, name = table
    counter = RequestCounter(indexes={name: [STATUS_KEYS_ONLY]})
    counter.attach(client)
    items = [
        {"id": {"S": "big"}, "status": {"S": "P"}, "v": {"S": "b" * 5000}},
        {"id": {"S": "small"}, "status": {"S": "P"}},
        {"id": {"S": "plain"}},
    ]
    client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": i}} for i in items]})
    keys = [{"id": {"S": key}} for key in ("big", "small", "none")]
    client.batch_get_item(RequestItems={name: {"Keys": keys, "ConsistentRead": True}})
    client.batch_get_item(RequestItems={name: {"Keys": keys[:2]}})
    rows = by_call(counter)
    assert rows["dynamodb.BatchWriteItem"]["wru"] == 5 + 1 + 1
    assert rows["dynamodb.BatchWriteItem"]["index_units"] == 2  # two items have a status
    # consistent: 2 (5 KB) + 1 + 1 (absent); eventually consistent: half of 2 + 1
    assert rows["dynamodb.BatchGetItem"]["rru"] == 4 + 1.5
