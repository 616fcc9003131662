"""Provisioning on a real local AWS endpoint: it creates everything once, then nothing."""

from __future__ import annotations

import json

import pytest

from adapters.aws_provision import ProvisionResult, dlq_name, provision
from adapters.dynamodb import GSI1, HELD_INDEX, TTL_ATTRIBUTE
from tests.support.aws import aws_endpoint, delete_resources, provision_fresh, shared_clients

pytestmark = pytest.mark.aws


def test_a_second_run_changes_nothing() -> None:
    endpoint = aws_endpoint()
    first = provision_fresh(endpoint, max_receive_count=4)
    try:
        queue, table = first.queue_name, first.table_name
        assert first.provisioned.created == [
            f"queue {dlq_name(queue)}",
            f"queue {queue}",
            f"table {table}",
            f"status counts of {table}",
            f"TTL on {table}.{TTL_ATTRIBUTE}",
        ]
        sqs, dynamodb = shared_clients(endpoint)

        again = provision(
            sqs,
            dynamodb,
            queue_name=queue,
            table_name=table,
            max_receive_count=4,
            visibility_timeout=30,
        )

        assert not again.changed
        assert again.created == [] and again.updated == []
        assert len(again.existing) == 4
        assert (again.queue_url, again.dlq_url) == (
            first.provisioned.queue_url,
            first.provisioned.dlq_url,
        )
        assert all(line.endswith("already exists, nothing changed") for line in again.lines())
    finally:
        delete_resources(first)


def test_what_it_creates_is_wired_together() -> None:
    endpoint = aws_endpoint()
    resources = provision_fresh(endpoint, max_receive_count=4)
    try:
        sqs, dynamodb = shared_clients(endpoint)
        dlq_arn = sqs.get_queue_attributes(
            QueueUrl=resources.provisioned.dlq_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=resources.provisioned.queue_url, AttributeNames=["All"]
        )["Attributes"]
        policy = json.loads(attributes["RedrivePolicy"])
        assert policy["deadLetterTargetArn"] == dlq_arn
        assert int(policy["maxReceiveCount"]) == 4

        table = dynamodb.describe_table(TableName=resources.table_name)["Table"]
        indexes = [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])]
        assert sorted(indexes) == sorted([GSI1, HELD_INDEX])
        ttl = dynamodb.describe_time_to_live(TableName=resources.table_name)
        assert ttl["TimeToLiveDescription"].get("AttributeName") == TTL_ATTRIBUTE
    finally:
        delete_resources(resources)


def test_a_drifted_redrive_policy_is_brought_back_and_reported() -> None:
    endpoint = aws_endpoint()
    resources = provision_fresh(endpoint, max_receive_count=4)
    try:
        sqs, dynamodb = shared_clients(endpoint)
        result = provision(
            sqs,
            dynamodb,
            queue_name=resources.queue_name,
            table_name=resources.table_name,
            max_receive_count=7,
            visibility_timeout=30,
        )
        assert result.created == []
        assert result.updated == [
            f"queue {resources.queue_name} (redrive policy, visibility timeout)"
        ]
        policy = json.loads(
            sqs.get_queue_attributes(QueueUrl=result.queue_url, AttributeNames=["RedrivePolicy"])[
                "Attributes"
            ]["RedrivePolicy"]
        )
        assert int(policy["maxReceiveCount"]) == 7
    finally:
        delete_resources(resources)


def test_a_table_made_before_the_held_index_gets_it() -> None:
    endpoint = aws_endpoint()
    resources = provision_fresh(endpoint, max_receive_count=4)
    try:
        sqs, dynamodb = shared_clients(endpoint)
        dynamodb.update_table(
            TableName=resources.table_name,
            GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": HELD_INDEX}}],
        )

        result = provision(
            sqs,
            dynamodb,
            queue_name=resources.queue_name,
            table_name=resources.table_name,
            max_receive_count=4,
            visibility_timeout=30,
        ).updated

        assert result == [f"table {resources.table_name} (index {HELD_INDEX} of held tasks)"]
        table = dynamodb.describe_table(TableName=resources.table_name)["Table"]
        assert HELD_INDEX in [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])]
    finally:
        delete_resources(resources)


async def test_a_table_of_the_previous_schema_is_migrated_by_init() -> None:
    """A table made before the counts came from the stream: no stream, counter items,
    tasks stored whole in one item (large payload inline). ``provision`` (``taskq
    init``) turns the stream on and counts the tasks once from the index; the old
    tasks read back and move on, and the counts follow them from then on."""
    from datetime import UTC, datetime

    from adapters.dynamodb import DynamoDbTaskRepository
    from adapters.dynamodb.attributes import s
    from adapters.dynamodb.task_items import json_text, task_item
    from domain.models import Task, TaskStatus
    from tests.support.aws import stream_counts

    endpoint = aws_endpoint()
    resources = provision_fresh(endpoint, max_receive_count=4)
    sqs, dynamodb = shared_clients(endpoint)
    name = resources.table_name + "-old"
    try:
        # The previous schema: the same keys and indexes but no stream, counter items,
        # and task items written whole (a 2 KB payload inline, as the old adapter did).
        shape = dynamodb.describe_table(TableName=resources.table_name)["Table"]
        dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=shape["AttributeDefinitions"],
            KeySchema=shape["KeySchema"],
            GlobalSecondaryIndexes=[
                {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}  # type: ignore[misc]
                for index in shape["GlobalSecondaryIndexes"]
            ],
        )
        now = datetime.now(UTC)
        old = [Task.create("email", {"body": "x" * 2000, "n": n}, now) for n in range(3)]
        for task in old:
            item = task_item(task, index_shards=8, retention_seconds=None)
            item.pop("px", None)
            item["payload"] = s(json_text(task.payload))
            dynamodb.put_item(TableName=name, Item=item)
        dynamodb.put_item(
            TableName=name, Item={"pk": s("COUNT#PENDING#0"), "sk": s("COUNT"), "n": {"N": "3"}}
        )

        def init() -> ProvisionResult:
            return provision(
                sqs,
                dynamodb,
                queue_name=resources.queue_name,
                table_name=name,
                max_receive_count=4,
                visibility_timeout=30,
            )

        result = init()
        assert result.updated == [f"table {name} (stream for the status counts)"]
        assert result.created[0] == f"status counts of {name}"
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        repo = DynamoDbTaskRepository(dynamodb, name)
        assert (await repo.count_by_status())[TaskStatus.PENDING] == 3
        assert await repo.get(old[0].id) == old[0]
        claimed = old[0].claim("lease", now, 30)
        await repo.transition(claimed, expected=old[0])
        await repo.transition(claimed.complete({"ok": True}, now), expected=claimed)
        assert (await repo.get(old[0].id)).result == {"ok": True}
        assert await stream_counts(repo).run_once()
        counts = await repo.count_by_status()
        assert (counts[TaskStatus.PENDING], counts[TaskStatus.COMPLETED]) == (2, 1)
        assert not init().changed
    finally:
        dynamodb.delete_table(TableName=name)
        delete_resources(resources)
