"""The table a ``DynamoDbTaskRepository`` works on, and its settings: what its writes
(``writes.py``) and its queries (``queries.py``) share."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from adapters.dynamodb.attributes import Item, get_n
from adapters.dynamodb.table import TTL_ATTRIBUTE
from adapters.dynamodb.task_items import task_item
from domain.models import Task
from domain.ports import Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class TaskTable:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        retention_seconds: float | None = None,
        index_shards: int = 8,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self.table_name = table_name
        if index_shards < 1:
            raise ValueError("index_shards must be at least 1")
        self.retention_seconds = retention_seconds
        self.index_shards = index_shards
        self._clock = clock

    def _now_epoch(self) -> float:
        return self._clock.now().timestamp() if self._clock is not None else time.time()

    def _to_item(self, task: Task) -> Item:
        return task_item(
            task, index_shards=self.index_shards, retention_seconds=self.retention_seconds
        )

    def _expired(self, item: Item) -> bool:
        """Past its retention: DynamoDB's TTL deletes late (up to days), so reads hide it."""
        expires = get_n(item, TTL_ATTRIBUTE)
        return expires is not None and float(expires) <= self._now_epoch()
