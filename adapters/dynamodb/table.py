"""The table's shape: key names, index names, the sort keys of each kind of item, and
how a task id picks its index shard. ``adapters/aws_provision.py`` creates the table
from these names."""

from __future__ import annotations

import hashlib

from adapters.dynamodb.attributes import Item, s
from domain.models import TaskStatus

PK = "pk"
SK = "sk"
GSI1 = "gsi1"
GSI1_PK = "gsi1pk"
GSI1_SK = "gsi1sk"
HELD_INDEX = "held"
HELD_PK = "heldpk"
HELD_SK = "heldsk"
HELD_SHARDS = 4
"""Partitions of the held-task index: held tasks are few (only those due beyond the
queue's delay limit), so a few partitions spread the writes and one Query each finds
every due task."""
OLDEST_DUE_READ = 25
"""PENDING tasks read per status-index shard, oldest created first, to find the oldest
due one: the index is ordered by creation, not due time, so tasks scheduled for later
that were created earlier are read past, up to this many (a Query of small items)."""
TTL_ATTRIBUTE = "expires_at"
"""Epoch seconds after which DynamoDB's TTL may delete the item (within about 48 h)."""

TASK_SK = "TASK"
COUNTER_SK = "COUNT"
WORKERS_PK = "WORKERS"
IDEMPOTENCY_SK = "IDEM"


def counter_key(status: TaskStatus, shard: int) -> Item:
    """The key of one shard of the counter of ``status``."""
    return {PK: s(f"COUNT#{status.value}#{shard}"), SK: s(COUNTER_SK)}


def stable_shard(task_id: str, shards: int) -> int:
    """The shard of ``task_id`` among ``shards``: a stable hash (not Python's salted
    ``hash()``), so every process agrees on it."""
    digest = hashlib.blake2b(task_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % shards
