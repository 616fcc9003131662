"""The repository's reads over many tasks: a page of one status, the held tasks that
are due, and the counts per status.

Listing one status reads ``index_shards`` partitions of the GSI ``gsi1`` in parallel
and merges them, instead of reading one hot partition. Held tasks are found in the
sparse GSI ``held`` (only held tasks carry its keys), ordered by due time: one Query
per shard, never a Scan. Counts are read from the one item the stream aggregator
keeps. The oldest due task is looked for among the first PENDING tasks of each
``gsi1`` shard, oldest first.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from adapters.cursor import decode_cursor, encode_cursor
from adapters.dynamodb.attributes import Item, get_s, req_s, s, utc_key
from adapters.dynamodb.calls import batch_get, query, run
from adapters.dynamodb.counts_item import counts_key, counts_of
from adapters.dynamodb.table import (
    GSI1,
    GSI1_PK,
    GSI1_SK,
    HELD_INDEX,
    HELD_PK,
    HELD_SHARDS,
    HELD_SK,
    OLDEST_DUE_READ,
    PK,
    SK,
)
from adapters.dynamodb.task_items import needs_side, side_key, task_from_item, task_without_side
from adapters.dynamodb.task_table import TaskTable
from domain.errors import InfrastructureError, InvalidCursor
from domain.models import Page, Task, TaskStatus


class TaskQueries(TaskTable):
    async def list_by_status(
        self, status: TaskStatus, *, limit: int, cursor: str | None = None
    ) -> Page:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        before: str | None = None
        if cursor is not None:
            key = decode_cursor(cursor, "k").get("k")
            if not isinstance(key, str):
                raise InvalidCursor()
            before = key
        # limit + 1 from each shard: if the merge holds more than ``limit``, there is a
        # next page; if not, every shard was read to its end.
        shards = await asyncio.gather(
            *(
                self._query_shard(f"STATUS#{status.value}#{shard}", before, limit + 1)
                for shard in range(self.index_shards)
            )
        )
        merged = sorted(
            (item for shard_items in shards for item in shard_items),
            key=lambda item: req_s(item, GSI1_SK),
            reverse=True,
        )
        page = merged[:limit]
        next_cursor = None
        if len(merged) > limit:
            next_cursor = encode_cursor({"k": req_s(page[-1], GSI1_SK)})
        tasks = await self._tasks(
            [
                item
                for item in page
                if not self._expired(item) and get_s(item, "status") == status.value
            ]
        )
        return Page(items=tasks, next_cursor=next_cursor)

    async def _query_shard(
        self, partition: str, before: str | None, want: int, *, oldest_first: bool = False
    ) -> list[Item]:
        """Up to ``want`` items of one index partition, newest first (or oldest first),
        those before the key ``before`` only when it is given."""
        condition = "#pk = :pk"
        names = {"#pk": GSI1_PK}
        values: Item = {":pk": s(partition)}
        if before is not None:
            condition += " AND #sk < :before"
            names["#sk"] = GSI1_SK
            values[":before"] = s(before)
        return await query(
            self._client,
            self.table_name,
            GSI1,
            want=want,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ScanIndexForward=oldest_first,
        )

    async def list_due_held(self, before: datetime, *, limit: int) -> list[Task]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # Keys are "<run_at>#<id>": everything below "<before>$" ('$' follows '#') is due.
        upper = f"{utc_key(before)}$"
        shards = await asyncio.gather(
            *(self._query_held(shard, upper, limit) for shard in range(HELD_SHARDS))
        )
        merged = sorted(
            (item for shard_items in shards for item in shard_items),
            key=lambda item: req_s(item, HELD_SK),
        )
        return await self._tasks(merged[:limit])

    async def _query_held(self, shard: int, upper: str, limit: int) -> list[Item]:
        return await query(
            self._client,
            self.table_name,
            HELD_INDEX,
            want=limit,
            KeyConditionExpression="#pk = :pk AND #sk < :upper",
            ExpressionAttributeNames={"#pk": HELD_PK, "#sk": HELD_SK},
            ExpressionAttributeValues={":pk": s(f"HELD#{shard}"), ":upper": s(upper)},
        )

    async def oldest_due_pending(self, now: datetime) -> datetime | None:
        partitions = (f"STATUS#{TaskStatus.PENDING.value}#{i}" for i in range(self.index_shards))
        shards = await asyncio.gather(
            *(self._query_shard(p, None, OLDEST_DUE_READ, oldest_first=True) for p in partitions)
        )
        due = [
            task.due_at
            for shard_items in shards
            for task in map(task_without_side, shard_items)
            if task.status is TaskStatus.PENDING and task.due_at <= now
        ]
        return min(due, default=None)

    async def count_by_status(self) -> dict[TaskStatus, int]:
        """The counts the stream aggregator last wrote (``stream_counts.py``): one
        strongly consistent GetItem. They trail the writes by the aggregator's poll
        (about a second) and its batch."""
        response = await run(
            lambda: self._client.get_item(
                TableName=self.table_name, Key=counts_key(), ConsistentRead=True
            )
        )
        return counts_of(response.get("Item") or {})

    async def _tasks(self, items: list[Item]) -> list[Task]:
        """The tasks of state items, their large payloads and results read beside them
        (one BatchGetItem for the page)."""
        tasks = []
        for task in await self._tasks_or_errors(items):
            if isinstance(task, InfrastructureError):
                raise task
            tasks.append(task)
        return tasks

    async def _tasks_or_errors(self, items: list[Item]) -> list[Task | InfrastructureError]:
        """As ``_tasks``, one outcome per item: a task whose item beside it is missing
        is an error of its own, not of the others."""
        keys = [side_key(req_s(item, "id"), sk) for item in items for sk in needs_side(item)]
        side: dict[tuple[str, str], Item] = {}
        if keys:
            for found in await batch_get(self._client, self.table_name, keys):
                side[(req_s(found, PK), req_s(found, SK))] = found
        tasks: list[Task | InfrastructureError] = []
        for item in items:
            pk = req_s(item, PK)
            beside = {sk: side[(pk, sk)] for sk in needs_side(item) if (pk, sk) in side}
            try:
                tasks.append(task_from_item(item, beside))
            except InfrastructureError as error:
                tasks.append(error)
        return tasks
