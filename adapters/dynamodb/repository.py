"""``DynamoDbTaskRepository``: the TaskRepository port on one DynamoDB table.

The reads and adds of one task are coalesced into batch calls (``batched.py``); the
other writes are in ``writes.py`` (and the one-write claim in ``claims.py``), the reads
over many tasks in ``queries.py``.
"""

from __future__ import annotations

from adapters.dynamodb.attributes import s
from adapters.dynamodb.batched import TaskBatches
from adapters.dynamodb.calls import run
from adapters.dynamodb.claims import TaskClaims
from adapters.dynamodb.table import PK, SK


class DynamoDbTaskRepository(TaskBatches, TaskClaims):
    async def ping(self) -> None:
        await run(
            lambda: self._client.get_item(
                TableName=self.table_name,
                Key={PK: s("PING"), SK: s("PING")},
            )
        )
