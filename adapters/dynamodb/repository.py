"""``DynamoDbTaskRepository``: the TaskRepository port on one DynamoDB table.

Its writes are in ``writes.py`` (and the one-write claim in ``claims.py``), its reads
over many tasks in ``queries.py``; the
reads of one task are here: one strongly consistent Query of the task's partition,
which holds its state item and, when they are large, its payload and result items.
"""

from __future__ import annotations

from adapters.dynamodb.attributes import req_s, s
from adapters.dynamodb.calls import partition, run
from adapters.dynamodb.claims import TaskClaims
from adapters.dynamodb.queries import TaskQueries
from adapters.dynamodb.table import PK, SK, TASK_SK
from adapters.dynamodb.task_items import task_from_item
from adapters.dynamodb.writes import TaskWrites
from domain.errors import TaskNotFound
from domain.models import Task


class DynamoDbTaskRepository(TaskWrites, TaskQueries, TaskClaims):
    async def get(self, task_id: str) -> Task:
        items = await partition(self._client, self.table_name, f"TASK#{task_id}")
        by_sk = {req_s(item, SK): item for item in items}
        state = by_sk.pop(TASK_SK, None)
        if state is None or self._expired(state):
            raise TaskNotFound(task_id)
        return task_from_item(state, by_sk)

    async def ping(self) -> None:
        await run(
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={PK: s("PING"), SK: s("PING")},
            )
        )
