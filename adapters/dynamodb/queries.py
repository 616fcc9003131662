"""The repository's reads over many tasks: a page of one status, the held tasks that
are due, and the counts per status.

Listing one status reads ``index_shards`` partitions of the GSI ``gsi1`` in parallel
and merges them, instead of reading one hot partition. Held tasks are found in the
sparse GSI ``held`` (only held tasks carry its keys), ordered by due time: one Query
per shard, never a Scan. Counts are the sums of the counter shards. The oldest due
task is looked for among the first PENDING tasks of each ``gsi1`` shard, oldest first.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime

from adapters.cursor import decode_cursor, encode_cursor
from adapters.dynamodb.attributes import Item, get_s, req_int, req_s, s, utc_key
from adapters.dynamodb.calls import RETRY_PAUSE_SECONDS, query, run
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
    counter_key,
)
from adapters.dynamodb.task_items import task_from_item
from adapters.dynamodb.task_table import TaskTable
from domain.errors import InvalidCursor
from domain.limits import MAX_BATCH_GET_KEYS
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
        tasks = [
            task_from_item(item)
            for item in page
            if not self._expired(item) and get_s(item, "status") == status.value
        ]
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
        return [task_from_item(item) for item in merged[:limit]]

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
            for task in map(task_from_item, shard_items)
            if task.status is TaskStatus.PENDING and task.due_at <= now
        ]
        return min(due, default=None)

    async def count_by_status(self) -> dict[TaskStatus, int]:
        keys = [
            counter_key(status, shard)
            for status in TaskStatus
            for shard in range(self.counter_shards)
        ]
        counts = dict.fromkeys(TaskStatus, 0)
        for start in range(0, len(keys), MAX_BATCH_GET_KEYS):
            pending: list[Item] = keys[start : start + MAX_BATCH_GET_KEYS]
            attempt = 0
            while pending:
                if attempt:
                    await asyncio.sleep(RETRY_PAUSE_SECONDS * min(attempt, 10))
                attempt += 1
                request = {self.table_name: {"Keys": pending, "ConsistentRead": True}}
                response = await run(
                    functools.partial(self._client.batch_get_item, RequestItems=request)  # type: ignore[arg-type]
                )
                for item in response.get("Responses", {}).get(self.table_name, []):
                    status = TaskStatus(req_s(item, PK).split("#")[1])
                    counts[status] += req_int(item, "n")
                unprocessed = response.get("UnprocessedKeys", {}).get(self.table_name)
                pending = list(unprocessed["Keys"]) if unprocessed else []
        return counts
