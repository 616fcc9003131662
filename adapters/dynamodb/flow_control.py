"""``DynamoDbFlowControlStore``: the task types' flow records as items of one partition
of the task table (``pk = FLOW``, ``sk`` = the type), each changed by a conditional
PutItem on its ``version``: no transaction, one small item per limited type.

Only types with limits or run-time settings have an item, and only their deliveries
write it (a start, and the end of a task holding a permit); every process reads the
partition (one Query) once per ``TASKQ_FLOW_REFRESH_SECONDS`` to see pauses and changes.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from adapters.dynamodb.attributes import Item, n, req_int, req_s, s
from adapters.dynamodb.calls import partition, run
from adapters.dynamodb.table import FLOW_PK, PK, SK
from domain.errors import FlowRecordConflict
from domain.flow_control import FlowRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_CONFLICT = "ConditionalCheckFailedException"


def _record(item: Item) -> FlowRecord:
    return FlowRecord.from_state(req_s(item, SK), req_int(item, "version"), req_s(item, "state"))


class DynamoDbFlowControlStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    async def get(self, task_type: str) -> FlowRecord | None:
        response = await run(
            functools.partial(
                self._client.get_item,
                TableName=self.table_name,
                Key={PK: s(FLOW_PK), SK: s(task_type)},
                ConsistentRead=True,
            )
        )
        item = response.get("Item")
        return None if item is None else _record(item)

    async def all(self) -> list[FlowRecord]:
        return [_record(item) for item in await partition(self._client, self.table_name, FLOW_PK)]

    async def put(self, record: FlowRecord) -> FlowRecord:
        item: Item = {
            PK: s(FLOW_PK),
            SK: s(record.task_type),
            "state": s(record.state_json()),
            "version": n(record.version + 1),
        }
        request: dict[str, Any] = {"TableName": self.table_name, "Item": item}
        if record.version == 0:
            request["ConditionExpression"] = "attribute_not_exists(#pk)"
            request["ExpressionAttributeNames"] = {"#pk": PK}
        else:
            request["ConditionExpression"] = "#version = :version"
            request["ExpressionAttributeNames"] = {"#version": "version"}
            request["ExpressionAttributeValues"] = {":version": n(record.version)}
        try:
            await run(
                functools.partial(self._client.put_item, **request),
                passthrough=[_CONFLICT],
            )
        except ClientError:
            raise FlowRecordConflict(record.task_type) from None
        return replace(record, version=record.version + 1)
