"""The counts item: the exact number of tasks per status, where the stream aggregator
got to in the table's stream, and which aggregator holds the lease to write it.

==================  =====================================================
attribute           holds
==================  =====================================================
``n_<STATUS>``      the count of that status
``shards``          a map: stream shard id -> last sequence number counted
                    (``DONE``: the shard was closed and read to its end;
                    ``""``: read from where the last recount found it)
``stream``          the ARN of the stream those positions belong to
``version``         bumped by every write: each write is conditional on it
``holder``          the aggregator holding the lease, ``lease_until_us``
``checked_at_us``   when the positions were last written (checkpoint age)
==================  =====================================================

One item, so counts and checkpoint change together in one conditional write: a batch
of stream records is counted exactly once without a transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adapters.dynamodb.attributes import Item, get_n, get_s, s
from adapters.dynamodb.table import COUNTS_PK, GSI1, GSI1_PK, PK, SK
from domain.models import TaskStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SHARD_DONE = "DONE"
SHARD_FROM_RECOUNT = ""


def counts_key() -> Item:
    return {PK: s(COUNTS_PK), SK: s(COUNTS_PK)}


def count_attribute(status: TaskStatus) -> str:
    return f"n_{status.value}"


def counts_of(item: Item) -> dict[TaskStatus, int]:
    return {status: int(get_n(item, count_attribute(status)) or 0) for status in TaskStatus}


@dataclass
class CountsState:
    """The counts item as read: what the aggregator works from."""

    counts: dict[TaskStatus, int]
    shards: dict[str, str]
    stream: str
    version: int
    holder: str
    lease_until_us: int
    checked_at_us: int
    exists: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, item: Item | None) -> CountsState:
        if not item:
            return cls(dict.fromkeys(TaskStatus, 0), {}, "", 0, "", 0, 0, exists=False)
        shards = {
            shard: value.get("S", "")
            for shard, value in item.get("shards", {}).get("M", {}).items()
        }
        return cls(
            counts=counts_of(item),
            shards=shards,
            stream=get_s(item, "stream") or "",
            version=int(get_n(item, "version") or 0),
            holder=get_s(item, "holder") or "",
            lease_until_us=int(get_n(item, "lease_until_us") or 0),
            checked_at_us=int(get_n(item, "checked_at_us") or 0),
        )

    def to_item(self) -> Item:
        item: Item = {
            **counts_key(),
            "shards": {"M": {shard: s(seq) for shard, seq in self.shards.items()}},
            "stream": s(self.stream),
            "version": {"N": str(self.version)},
            "holder": s(self.holder),
            "lease_until_us": {"N": str(self.lease_until_us)},
            "checked_at_us": {"N": str(self.checked_at_us)},
        }
        for status, count in self.counts.items():
            item[count_attribute(status)] = {"N": str(count)}
        return item


def count_index(
    client: DynamoDBClient, table_name: str, index_shards: int
) -> dict[TaskStatus, int]:
    """Every status counted from the status index: one ``Select=COUNT`` Query (page by
    page) per status and index shard. Blocking; a recount, not a hot-path read."""
    counts = dict.fromkeys(TaskStatus, 0)
    for status in TaskStatus:
        for shard in range(index_shards):
            start: Any = None
            while True:
                page: dict[str, Any] = {
                    "TableName": table_name,
                    "IndexName": GSI1,
                    "KeyConditionExpression": "#pk = :pk",
                    "ExpressionAttributeNames": {"#pk": GSI1_PK},
                    "ExpressionAttributeValues": {":pk": s(f"STATUS#{status.value}#{shard}")},
                    "Select": "COUNT",
                }
                if start is not None:
                    page["ExclusiveStartKey"] = start
                answer = client.query(**page)
                counts[status] += int(answer.get("Count", 0))
                start = answer.get("LastEvaluatedKey")
                if start is None:
                    break
    return counts


def seed_counts(
    client: DynamoDBClient, table_name: str, *, stream_arn: str, index_shards: int = 8
) -> bool:
    """Write the counts item of a table whose stream was just turned on (``taskq
    init``), unless it has one: the counts from the index, the stream read from its
    start. Exact when no task changes meanwhile (a new table; an upgrade with the
    service stopped). True when it wrote the item."""
    if client.get_item(TableName=table_name, Key=counts_key(), ConsistentRead=True).get("Item"):
        return False
    now_us = int(time.time() * 1_000_000)
    state = CountsState(
        counts=count_index(client, table_name, index_shards),
        shards={},
        stream=stream_arn,
        version=0,
        holder="",
        lease_until_us=0,
        checked_at_us=now_us,
    )
    try:
        client.put_item(
            TableName=table_name,
            Item=state.to_item(),
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": PK},
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True
