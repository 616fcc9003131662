"""Exact counts per status from the table's stream, written by one aggregator at a time.

Every write of a task's state item appears in the table's stream (``NEW_AND_OLD_IMAGES``)
with its old and new status: an INSERT counts +1, a status change -1 and +1, a REMOVE
(a delete, or TTL expiring a finished task) -1. One aggregator reads the shards and
writes the counts and its stream positions to the counts item (``counts_item.py``) in
one PutItem conditional on the item's version: a batch is counted once or not at all,
and an aggregator that lost the lease (another took over) fails its write and starts
again from what the new holder wrote. No write of a task pays for its count.

The lease is the counts item's ``holder`` and ``lease_until_us``: any process may run
an aggregator; one that finds the lease held by another, and not expired, only waits.
Shards are read parents first (a split's children after the parent was read to its
end). A checkpoint the stream no longer keeps (older than its 24 hours, or a shard
gone unfinished), a new stream, or no counts item at all: a full recount, one
``Select=COUNT`` Query per status and index shard, with the shards' positions set to
their ends when it starts. The recount is exact when no task changes during it; a
change that lands while it runs can be counted twice or missed (docs/aws.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from adapters.dynamodb.attributes import Item
from adapters.dynamodb.calls import run
from adapters.dynamodb.change_stream import (
    RECORDS_PER_READ,
    ChangeStream,
    IteratorExpired,
    Record,
    Shard,
    StreamTrimmed,
)
from adapters.dynamodb.counts_item import (
    SHARD_DONE,
    SHARD_FROM_RECOUNT,
    CountsState,
    count_index,
    counts_key,
)
from adapters.dynamodb.table import PK, SK, TASK_SK
from domain.models import TaskStatus
from domain.ports import Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger("taskq.dynamodb.counts")

LEASE_SECONDS = 10.0
"""How long the aggregator's lease lasts unless renewed: when its holder dies, counts
stop following the writes for at most this long, then another process takes over."""
POLL_SECONDS = 1.0
"""How often the lease holder reads the stream: counts trail the writes by about this
plus DynamoDB's own delay in publishing a record (well under a second)."""
STREAM_RETENTION_SECONDS = 24 * 3600
"""DynamoDB keeps stream records 24 hours: a checkpoint older than that is recounted."""
READS_PER_SHARD = 10
"""GetRecords calls per shard in one pass, at most. A page short of ``RECORDS_PER_READ``
ends it sooner: the shard was read to where it ended when asked, and what was written
since is read at the next pass (polling on until a page comes back empty cost a call
or more per pass on a busy table, and each call is billed)."""


class StreamCounts:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        stream: ChangeStream,
        *,
        holder: str,
        index_shards: int = 8,
        clock: Clock | None = None,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._client = client
        self.table_name = table_name
        self._stream = stream
        self.holder = holder
        self.index_shards = index_shards
        self._clock = clock
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._iterators: dict[str, str] = {}
        self._version = -1
        """The counts item's version the iterators above belong to."""
        self.recounts = 0

    @property
    def stream(self) -> ChangeStream:
        """The stream it reads (the benchmark counts its client's requests)."""
        return self._stream

    def _now_us(self) -> int:
        now = self._clock.now().timestamp() if self._clock is not None else time.time()
        return int(now * 1_000_000)

    async def run_once(self) -> bool:
        """One pass: take or keep the lease, count what the stream has, write. False
        when another aggregator holds the lease (or took it during the pass)."""
        state = await self._load()
        now = self._now_us()
        if state.exists and state.holder not in ("", self.holder) and state.lease_until_us > now:
            self._iterators.clear()
            return False
        arn = await self._stream.arn()
        if not arn:
            log.warning("table %s has no stream: run `taskq init`", self.table_name)
            return False
        too_old = now - state.checked_at_us > STREAM_RETENTION_SECONDS * 1_000_000
        if not state.exists or state.stream != arn or too_old:
            return await self.recount(state)
        if state.version != self._version:
            self._iterators.clear()
        try:
            changed = await self._read(state)
        except StreamTrimmed as error:
            log.warning("stream position lost (%s): counting again", error)
            return await self.recount(state)
        except IteratorExpired:
            self._iterators.clear()
            return True
        renew = state.holder != self.holder or state.lease_until_us - now < self._lease_us() / 2
        if changed or renew:
            return await self._write(state, now)
        return True

    async def recount(self, state: CountsState) -> bool:
        """Count every status again from the status index, the stream's positions set
        to where its open shards end now."""
        shards = await self._stream.shards()
        iterators = {
            s.shard_id: await self._stream.latest(s.shard_id) for s in shards if not s.closed
        }
        state.counts = await self._count_index()
        state.shards = {s.shard_id: SHARD_DONE if s.closed else SHARD_FROM_RECOUNT for s in shards}
        state.stream = await self._stream.arn()
        self.recounts += 1
        if not await self._write(state, self._now_us()):
            return False
        self._iterators = iterators
        return True

    async def release(self) -> None:
        """Give the lease up (shutdown), so another process takes over at once."""
        state = await self._load()
        if state.exists and state.holder == self.holder:
            state.lease_until_us = 0
            await self._put(state, expected=state.version)

    async def run_until(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop`` is set; the lease is released at the end."""
        while not stop.is_set():
            pause = self.poll_seconds
            try:
                if not await self.run_once():
                    pause = self.lease_seconds / 2  # another holds the lease: stand by
            except Exception as error:  # counts may trail; the next pass tries again
                log.warning("counting the stream failed: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
        with contextlib.suppress(Exception):
            await self.release()

    # -- reading the stream --------------------------------------------------------

    async def _read(self, state: CountsState) -> bool:
        shards = await self._stream.shards()
        listed = {shard.shard_id for shard in shards}
        changed = False
        for shard_id, position in list(state.shards.items()):
            if shard_id not in listed:
                if position != SHARD_DONE:
                    raise StreamTrimmed(shard_id)
                del state.shards[shard_id]  # read to its end, and now gone: forget it
                changed = True
        pending = [shard for shard in shards if state.shards.get(shard.shard_id) != SHARD_DONE]
        progress = True
        while progress:  # parents first: a child's records follow its parent's
            progress = False
            for shard in list(pending):
                parent = shard.parent_id
                if parent in listed and state.shards.get(parent or "") != SHARD_DONE:
                    continue
                pending.remove(shard)
                progress = True
                changed |= await self._read_shard(shard, state)
        return changed

    async def _read_shard(self, shard: Shard, state: CountsState) -> bool:
        position = state.shards.get(shard.shard_id)
        iterator = self._iterators.pop(shard.shard_id, None)
        if iterator is None:
            if position == SHARD_FROM_RECOUNT:
                iterator = await self._stream.latest(shard.shard_id)
            else:
                iterator = await self._stream.iterator(shard.shard_id, position)
        changed = False
        for _ in range(READS_PER_SHARD):
            records, following = await self._stream.read(iterator)
            for record in records:
                changed |= count_record(record, state.counts)
                state.shards[shard.shard_id] = record["dynamodb"]["SequenceNumber"]
            if following is None:
                state.shards[shard.shard_id] = SHARD_DONE
                return True
            iterator = following
            if len(records) < RECORDS_PER_READ:
                break
        self._iterators[shard.shard_id] = iterator
        return changed

    # -- the counts item -----------------------------------------------------------

    def _lease_us(self) -> int:
        return int(self.lease_seconds * 1_000_000)

    async def _load(self) -> CountsState:
        response = await run(
            lambda: self._client.get_item(
                TableName=self.table_name, Key=counts_key(), ConsistentRead=True
            )
        )
        return CountsState.read(response.get("Item"))

    async def _write(self, state: CountsState, now: int) -> bool:
        expected = state.version if state.exists else None
        state.holder = self.holder
        state.lease_until_us = now + self._lease_us()
        state.checked_at_us = now
        state.version += 1
        if await self._put(state, expected=expected):
            self._version = state.version
            return True
        self._iterators.clear()
        return False

    async def _put(self, state: CountsState, *, expected: int | None) -> bool:
        """Write the counts item if its version is still ``expected`` (None: if there
        is none yet). False when another aggregator wrote first."""
        item = state.to_item()
        if expected is None:
            condition, values = "attribute_not_exists(#pk)", None
        else:
            condition, values = "#v = :v", {":v": {"N": str(expected)}}
        names = {"#pk": PK} if expected is None else {"#v": "version"}
        try:
            await run(
                lambda: self._client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    **({"ExpressionAttributeValues": values} if values else {}),  # type: ignore[arg-type]
                ),
                passthrough=["ConditionalCheckFailedException"],
            )
        except ClientError:
            return False
        return True

    async def _count_index(self) -> dict[TaskStatus, int]:
        return await asyncio.to_thread(
            count_index, self._client, self.table_name, self.index_shards
        )


def count_record(record: Record, counts: dict[TaskStatus, int]) -> bool:
    """Apply one stream record to ``counts``; True when it changed them (a record of
    an item other than a task's state item, or keeping the status, changes nothing)."""
    change = record.get("dynamodb", {})
    keys: Item = change.get("Keys", {})
    if not str(keys.get(PK, {}).get("S", "")).startswith("TASK#"):
        return False
    if keys.get(SK, {}).get("S") != TASK_SK:
        return False
    old = change.get("OldImage", {}).get("status", {}).get("S")
    new = change.get("NewImage", {}).get("status", {}).get("S")
    if old == new:
        return False
    if old:
        counts[TaskStatus(old)] -= 1
    if new:
        counts[TaskStatus(new)] += 1
    return True
