"""Create what the AWS backend needs, idempotently: a second run changes nothing.

- the dead-letter queue ``<queue_name>-dlq`` (14 days of retention),
- the main queue, with a RedrivePolicy to it (``maxReceiveCount``) and the default
  visibility timeout; with ``priorities``, ``<queue_name>-high`` and ``-low`` too, set
  up alike (one dead-letter queue for the three),
- the DynamoDB table (on-demand, keys and GSIs of ``adapters/dynamodb.py``); a table
  made by an older engine gets the held-task index it lacks,
- TTL on its ``expires_at`` attribute,
- the table's stream (``NEW_AND_OLD_IMAGES``), where the status counts come from; a
  table made by an older engine gets it (its old counter items are left, unused).

An existing queue whose redrive policy or visibility timeout differs is brought in line
(reported as ``updated``); nothing is ever deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from adapters.dynamodb.counts_item import seed_counts
from adapters.dynamodb.table import (
    GSI1,
    GSI1_PK,
    GSI1_SK,
    HELD_INDEX,
    HELD_PK,
    HELD_SK,
    PK,
    SK,
    TTL_ATTRIBUTE,
)
from domain.errors import InfrastructureError
from domain.priorities import Priority

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import GlobalSecondaryIndexTypeDef
    from mypy_boto3_sqs import SQSClient

DLQ_SUFFIX = "-dlq"
INDEX_WAIT_SECONDS = 2.0
INDEX_WAIT_ATTEMPTS = 900
"""How long provisioning waits for a new index to be built (up to 30 minutes)."""
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
"""The SQS maximum message retention (14 days): dead letters wait for a human."""

_MISSING_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass
class ProvisionResult:
    queue_url: str
    dlq_url: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    priority_queue_urls: dict[Priority, str] = field(default_factory=dict)
    """With priorities: the main queue of each priority (``queue_url`` is default's)."""

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def lines(self) -> list[str]:
        """What a CLI prints: one line per resource."""
        out = [f"created {name}" for name in self.created]
        out += [f"updated {name}" for name in self.updated]
        out += [f"{name} already exists, nothing changed" for name in self.existing]
        return out


def dlq_name(queue_name: str) -> str:
    return queue_name + DLQ_SUFFIX


def priority_queue_name(queue_name: str, priority: Priority) -> str:
    """``<queue_name>-high`` / ``-low``; the default priority's queue is the main one."""
    return queue_name if priority is Priority.DEFAULT else f"{queue_name}-{priority.value}"


def provision(
    sqs_client: SQSClient,
    dynamodb_client: DynamoDBClient,
    *,
    queue_name: str,
    table_name: str,
    max_receive_count: int,
    visibility_timeout: int,
    priorities: bool = False,
) -> ProvisionResult:
    """Blocking (boto3): call it from a thread in async code."""
    try:
        return _provision(
            sqs_client,
            dynamodb_client,
            queue_name=queue_name,
            table_name=table_name,
            max_receive_count=max_receive_count,
            visibility_timeout=visibility_timeout,
            priorities=priorities,
        )
    except (ClientError, BotoCoreError) as error:
        raise InfrastructureError("aws", f"provisioning failed: {error}") from None


def _provision(
    sqs: SQSClient,
    dynamodb: DynamoDBClient,
    *,
    queue_name: str,
    table_name: str,
    max_receive_count: int,
    visibility_timeout: int,
    priorities: bool,
) -> ProvisionResult:
    created: list[str] = []
    updated: list[str] = []
    existing: list[str] = []

    dlq = dlq_name(queue_name)
    dlq_url = _queue_url(sqs, dlq)
    if dlq_url is None:
        dlq_url = sqs.create_queue(
            QueueName=dlq, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
        )["QueueUrl"]
        created.append(f"queue {dlq}")
    else:
        existing.append(f"queue {dlq}")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]

    wanted = {
        "VisibilityTimeout": str(visibility_timeout),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
        ),
    }
    levels = list(Priority) if priorities else [Priority.DEFAULT]
    urls = {
        p: _main_queue(sqs, priority_queue_name(queue_name, p), wanted, created, updated, existing)
        for p in levels
    }
    queue_url = urls[Priority.DEFAULT]

    try:
        table = dynamodb.describe_table(TableName=table_name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        _create_table(dynamodb, table_name)
        created.append(f"table {table_name}")
    else:
        indexes = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
        changes = []
        if HELD_INDEX not in indexes:
            _add_held_index(dynamodb, table_name)
            changes.append(f"index {HELD_INDEX} of held tasks")
        if _enable_stream(dynamodb, table_name, table.get("StreamSpecification", {})):
            changes.append("stream for the status counts")
        if changes:
            updated.append(f"table {table_name} ({', '.join(changes)})")
        else:
            existing.append(f"table {table_name}")
    stream_arn = dynamodb.describe_table(TableName=table_name)["Table"].get("LatestStreamArn")
    if stream_arn and seed_counts(dynamodb, table_name, stream_arn=stream_arn):
        created.append(f"status counts of {table_name}")

    ttl = dynamodb.describe_time_to_live(TableName=table_name).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and (
        ttl.get("AttributeName") == TTL_ATTRIBUTE
    ):
        existing.append(f"TTL on {table_name}.{TTL_ATTRIBUTE}")
    else:
        dynamodb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
        created.append(f"TTL on {table_name}.{TTL_ATTRIBUTE}")

    return ProvisionResult(
        queue_url=queue_url,
        dlq_url=dlq_url,
        created=created,
        updated=updated,
        existing=existing,
        priority_queue_urls=urls if priorities else {},
    )


def _main_queue(
    sqs: SQSClient,
    name: str,
    wanted: dict[str, str],
    created: list[str],
    updated: list[str],
    existing: list[str],
) -> str:
    """Create the main queue ``name`` with the ``wanted`` attributes, or bring an
    existing one in line; its URL. What it did is appended to one of the lists."""
    queue_url = _queue_url(sqs, name)
    if queue_url is None:
        queue_url = sqs.create_queue(QueueName=name, Attributes=wanted)["QueueUrl"]  # type: ignore[arg-type]
        created.append(f"queue {name}")
        return queue_url
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
    ).get("Attributes", {})
    current = {str(key): value for key, value in attributes.items()}
    if _same_queue_settings(current, wanted):
        existing.append(f"queue {name}")
    else:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=wanted)  # type: ignore[arg-type]
        updated.append(f"queue {name} (redrive policy, visibility timeout)")
    return queue_url


def _queue_url(sqs: SQSClient, name: str) -> str | None:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING_QUEUE:
            return None
        raise


def _same_queue_settings(current: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    if current.get("VisibilityTimeout") != wanted["VisibilityTimeout"]:
        return False
    try:
        have = json.loads(current.get("RedrivePolicy", "{}"))
    except ValueError:
        return False
    want = json.loads(wanted["RedrivePolicy"])
    return bool(
        have.get("deadLetterTargetArn") == want["deadLetterTargetArn"]
        and str(have.get("maxReceiveCount")) == want["maxReceiveCount"]
    )


_HELD_INDEX: GlobalSecondaryIndexTypeDef = {
    "IndexName": HELD_INDEX,
    "KeySchema": [
        {"AttributeName": HELD_PK, "KeyType": "HASH"},
        {"AttributeName": HELD_SK, "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "ALL"},
}
"""Sparse: only held tasks carry its keys, so it stays as small as they are few."""


def _add_held_index(dynamodb: DynamoDBClient, table_name: str) -> None:
    dynamodb.update_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": HELD_PK, "AttributeType": "S"},
            {"AttributeName": HELD_SK, "AttributeType": "S"},
        ],
        GlobalSecondaryIndexUpdates=[{"Create": _HELD_INDEX}],
    )
    # The reconciler queries the index: wait until it is built (existing held tasks
    # are backfilled into it by DynamoDB).
    for _ in range(INDEX_WAIT_ATTEMPTS):
        table = dynamodb.describe_table(TableName=table_name)["Table"]
        statuses = {
            index["IndexName"]: index.get("IndexStatus", "ACTIVE")
            for index in table.get("GlobalSecondaryIndexes", [])
        }
        if statuses.get(HELD_INDEX) == "ACTIVE":
            return
        time.sleep(INDEX_WAIT_SECONDS)
    raise InfrastructureError("aws", f"index {HELD_INDEX} of {table_name} is not active yet")


STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
"""The counts come from the table's stream (adapters/dynamodb/stream_counts.py)."""


def _enable_stream(
    dynamodb: DynamoDBClient, table_name: str, current: Mapping[str, object]
) -> bool:
    """Turn on the table's stream (a table made before the counts came from it). True
    when it changed; the counts are then counted once from the index, by the first
    aggregator that runs. A stream of another view type is not replaced."""
    if current.get("StreamEnabled"):
        if current.get("StreamViewType") != STREAM["StreamViewType"]:
            raise InfrastructureError(
                "aws",
                f"table {table_name} has a {current.get('StreamViewType')} stream; the "
                "counts need NEW_AND_OLD_IMAGES: disable that stream, then run init again",
            )
        return False
    dynamodb.update_table(TableName=table_name, StreamSpecification=STREAM)  # type: ignore[arg-type]
    return True


def _create_table(dynamodb: DynamoDBClient, table_name: str) -> None:
    dynamodb.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": PK, "AttributeType": "S"},
            {"AttributeName": SK, "AttributeType": "S"},
            {"AttributeName": GSI1_PK, "AttributeType": "S"},
            {"AttributeName": GSI1_SK, "AttributeType": "S"},
            {"AttributeName": HELD_PK, "AttributeType": "S"},
            {"AttributeName": HELD_SK, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": GSI1,
                "KeySchema": [
                    {"AttributeName": GSI1_PK, "KeyType": "HASH"},
                    {"AttributeName": GSI1_SK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            _HELD_INDEX,
        ],
        StreamSpecification=STREAM,  # type: ignore[arg-type]
    )
    dynamodb.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
