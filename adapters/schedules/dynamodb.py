"""``DynamoDbScheduleStore``: the ScheduleStore port on the task table.

Schedules are items of one partition (``pk = SCHEDULES``, ``sk = <name>``): listing
them all is one strongly consistent Query, which every scheduler pass makes. The item
holds the schedule as JSON (``body``) and ``fired_through`` (a fixed-width UTC key)
apart, which a conditional UpdateItem only moves forward.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from adapters.dynamodb.attributes import Item, get_s, req_s, s, utc_key
from adapters.dynamodb.calls import partition, query, run
from adapters.dynamodb.table import PK, SK
from adapters.schedules.record import dumps, loads
from domain.errors import InvalidInput, ScheduleNotFound
from domain.limits import MAX_SCHEDULES
from domain.schedules import Schedule

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SCHEDULES_PK = "SCHEDULES"
_CONDITION_FAILED = ["ConditionalCheckFailedException"]


def _key(name: str) -> Item:
    return {PK: s(SCHEDULES_PK), SK: s(name)}


def _through(value: datetime) -> str:
    return utc_key(value)


def _schedule(item: Item) -> Schedule:
    through = get_s(item, "fired_through")
    fired = None if through is None else datetime.fromisoformat(through).replace(tzinfo=UTC)
    return loads(req_s(item, "body"), fired)


class DynamoDbScheduleStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    async def put(self, schedule: Schedule) -> bool:
        item: Item = {**_key(schedule.name), "body": s(dumps(schedule))}
        if schedule.fired_through is not None:
            item["fired_through"] = s(_through(schedule.fired_through))
        if await self.get(schedule.name) is None and await self._count() >= MAX_SCHEDULES:
            raise InvalidInput("name", f"at most {MAX_SCHEDULES} schedules can be stored")
        response = await run(
            functools.partial(
                self._client.put_item, TableName=self.table_name, Item=item, ReturnValues="ALL_OLD"
            )
        )
        return not response.get("Attributes")

    async def _count(self) -> int:
        items = await query(
            self._client,
            self.table_name,
            None,
            want=None,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": PK},
            ExpressionAttributeValues={":pk": s(SCHEDULES_PK)},
            ProjectionExpression="#pk",
        )
        return len(items)

    async def get(self, name: str) -> Schedule | None:
        response = await run(
            functools.partial(
                self._client.get_item,
                TableName=self.table_name,
                Key=_key(name),
                ConsistentRead=True,
            )
        )
        item = response.get("Item")
        return None if item is None else _schedule(item)

    async def list(self) -> list[Schedule]:
        items = await partition(self._client, self.table_name, SCHEDULES_PK)
        return [_schedule(item) for item in items]

    async def delete(self, name: str) -> None:
        try:
            await run(
                functools.partial(
                    self._client.delete_item,
                    TableName=self.table_name,
                    Key=_key(name),
                    ConditionExpression="attribute_exists(#pk)",
                    ExpressionAttributeNames={"#pk": PK},
                ),
                passthrough=_CONDITION_FAILED,
            )
        except ClientError:
            raise ScheduleNotFound(name) from None

    async def mark_fired(self, name: str, through: datetime) -> None:
        try:
            await run(
                functools.partial(
                    self._client.update_item,
                    TableName=self.table_name,
                    Key=_key(name),
                    UpdateExpression="SET #t = :t",
                    ConditionExpression="attribute_exists(#pk) AND "
                    "(attribute_not_exists(#t) OR #t < :t)",
                    ExpressionAttributeNames={"#pk": PK, "#t": "fired_through"},
                    ExpressionAttributeValues={":t": s(_through(through))},
                ),
                passthrough=_CONDITION_FAILED,
            )
        except ClientError:
            return  # gone, or another scheduler settled further already
