"""``DynamoDbTaskRepository``: the TaskRepository port on one DynamoDB table.

Its writes are in ``writes.py`` (and the one-write claim in ``claims.py``), its reads
over many tasks in ``queries.py``; the
reads of one task are here: a strongly consistent GetItem of its state item, and of
its payload and result items when they are large and kept beside it (a GetItem costs
moto, where the worker reads each task it runs first, less than a Query).
"""

from __future__ import annotations

from adapters.dynamodb.attributes import s
from adapters.dynamodb.calls import run
from adapters.dynamodb.claims import TaskClaims
from adapters.dynamodb.queries import TaskQueries
from adapters.dynamodb.table import PK, SK
from adapters.dynamodb.task_items import needs_side, task_from_item, task_key
from adapters.dynamodb.writes import TaskWrites
from domain.errors import TaskNotFound
from domain.models import Task


class DynamoDbTaskRepository(TaskWrites, TaskQueries, TaskClaims):
    async def get(self, task_id: str) -> Task:
        answer = await run(
            lambda: self._client.get_item(
                TableName=self.table_name, Key=task_key(task_id), ConsistentRead=True
            )
        )
        state = answer.get("Item")
        if state is None or self._expired(state):
            raise TaskNotFound(task_id)
        return task_from_item(state, await self._side(task_id, needs_side(state)))

    async def ping(self) -> None:
        await run(
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={PK: s("PING"), SK: s("PING")},
            )
        )
