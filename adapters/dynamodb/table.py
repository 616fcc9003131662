"""The table's shape: key names, index names, the sort keys of each kind of item, and
how a task id picks its index shard. ``adapters/aws_provision.py`` creates the table
from these names."""

from __future__ import annotations

import hashlib

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
PAYLOAD_SK = "PAYLOAD"
RESULT_SK_PREFIX = "RESULT#"
WORKERS_PK = "WORKERS"
IDEMPOTENCY_SK = "IDEM"
COUNTS_PK = "COUNTS"
"""The one item holding the exact counts per status, the stream checkpoint and the
aggregator's lease (``adapters/dynamodb/stream_counts.py``)."""
FLOW_PK = "FLOW"
"""The partition of the task types' flow records, one item per type (sort key: the type;
``adapters/dynamodb/flow_control.py``)."""

WRITE_UNIT_BYTES = 1024
"""DynamoDB bills a write 1 WRU per started KB of the item (an update: of the larger of
its old and new size); a state item kept under this costs 1 WRU per status change."""
STATE_ITEM_HEADROOM_BYTES = 192
"""Room kept in a task's state item for what later transitions add (finish time, a
short error, a small result), so that a payload stored inline still leaves the item
under ``WRITE_UNIT_BYTES`` at the finish."""


def stable_shard(task_id: str, shards: int) -> int:
    """The shard of ``task_id`` among ``shards``: a stable hash (not Python's salted
    ``hash()``), so every process agrees on it."""
    digest = hashlib.blake2b(task_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % shards
