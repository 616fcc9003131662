"""``DynamoDbTaskRepository``: the TaskRepository port on one DynamoDB table.

Its writes are in ``writes.py``, its reads over many tasks in ``queries.py``; the
reads of one task are here.
"""

from __future__ import annotations

from adapters.dynamodb.attributes import s
from adapters.dynamodb.calls import run
from adapters.dynamodb.queries import TaskQueries
from adapters.dynamodb.table import PK, SK
from adapters.dynamodb.task_items import task_from_item, task_key
from adapters.dynamodb.writes import TaskWrites
from domain.errors import TaskNotFound
from domain.models import Task


class DynamoDbTaskRepository(TaskWrites, TaskQueries):
    async def get(self, task_id: str) -> Task:
        response = await run(
            lambda: self._client.get_item(
                TableName=self.table_name, Key=task_key(task_id), ConsistentRead=True
            )
        )
        item = response.get("Item")
        if item is None or self._expired(item):
            raise TaskNotFound(task_id)
        return task_from_item(item)

    async def ping(self) -> None:
        await run(
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={PK: s("PING"), SK: s("PING")},
            )
        )
