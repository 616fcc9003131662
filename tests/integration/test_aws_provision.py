"""Provisioning on a real local AWS endpoint: it creates everything once, then nothing."""

from __future__ import annotations

import json

import pytest

from adapters.aws_provision import dlq_name, provision
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
