"""The counts aggregator (adapters/dynamodb/stream_counts.py): its counts item on a real
local DynamoDB, the stream a fake with splits and a trim horizon (moto's stream has one
shard that never splits). Each change is counted exactly once, whoever holds the lease."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import ManualClock
from adapters.dynamodb import DynamoDbTaskRepository
from adapters.dynamodb.change_stream import RECORDS_PER_READ
from adapters.dynamodb.stream_counts import LEASE_SECONDS, StreamCounts
from domain.models import Task
from tests.support.aws import AwsResources, aws_endpoint, fresh_resources
from tests.support.fake_stream import FakeChangeStream

pytestmark = pytest.mark.aws

P, R, C, F = "PENDING", "PROCESSING", "COMPLETED", "FAILED"


@pytest.fixture
def aws() -> Iterator[AwsResources]:
    with fresh_resources(aws_endpoint()) as resources:
        yield resources


def aggregator(
    aws: AwsResources, stream: FakeChangeStream, clock: ManualClock, holder: str
) -> StreamCounts:
    return StreamCounts(aws.dynamodb, aws.table_name, stream, holder=holder, clock=clock)


async def counts(aws: AwsResources) -> dict[str, int]:
    found = await DynamoDbTaskRepository(aws.dynamodb, aws.table_name).count_by_status()
    return {status.value: n for status, n in found.items() if n}


async def started(aws: AwsResources) -> tuple[FakeChangeStream, ManualClock, StreamCounts]:
    """A stream with one shard, its first record counted by aggregator ``a``."""
    stream, clock = FakeChangeStream(), ManualClock(datetime.now(UTC))
    stream.add_shard("s1")
    a = aggregator(aws, stream, clock, "a")
    assert await a.run_once()  # a new stream: counted from the (empty) index
    stream.change("s1", "t0", None, P)
    assert await a.run_once()
    return stream, clock, a


async def test_every_change_is_counted_once_and_a_removal_leaves_the_counts(
    aws: AwsResources,
) -> None:
    stream, _, a = await started(aws)
    stream.change("s1", "t1", None, P)
    stream.change("s1", "t1", P, R)
    stream.change("s1", "t1", R, C)
    stream.change("s1", "t2", None, P)
    stream.change("s1", "t2", P, P)  # a heartbeat: no count moves
    assert await a.run_once()
    assert await a.run_once()  # nothing new: nothing counted twice
    assert await counts(aws) == {P: 2, C: 1}
    stream.change("s1", "t1", C, None)  # TTL deleted the finished task
    assert await a.run_once()
    assert await counts(aws) == {P: 2}


async def test_one_aggregator_at_a_time_and_a_takeover_counts_from_the_checkpoint(
    aws: AwsResources,
) -> None:
    stream, clock, a = await started(aws)
    b = aggregator(aws, stream, clock, "b")
    stream.change("s1", "t1", None, P)
    assert not await b.run_once()  # a holds the lease
    assert await counts(aws) == {P: 1}
    await clock.advance(LEASE_SECONDS + 1)  # a died: its lease ran out
    assert await b.run_once()
    assert not await a.run_once()  # a came back: b holds the lease now
    stream.change("s1", "t1", P, R)
    assert await b.run_once()
    assert await counts(aws) == {P: 1, R: 1}


async def test_two_aggregators_racing_for_an_expired_lease_count_each_change_once(
    aws: AwsResources,
) -> None:
    stream, clock, a = await started(aws)
    others = [aggregator(aws, stream, clock, name) for name in ("b", "c", "d")]
    for n in range(20):
        stream.change("s1", f"t{n}", None, P)
        stream.change("s1", f"t{n}", P, F if n % 2 else C)
    await clock.advance(LEASE_SECONDS + 1)
    for _ in range(3):
        await asyncio.gather(*(x.run_once() for x in [a, *others]))
    assert await counts(aws) == {P: 1, C: 10, F: 10}


async def test_a_split_shard_is_read_after_its_parent_and_forgotten_once_trimmed(
    aws: AwsResources,
) -> None:
    stream, clock, a = await started(aws)
    stream.change("s1", "t1", None, P)
    stream.shards_by_id["s1"].closed = True  # s1 split into s2 and s3
    stream.add_shard("s2", parent_id="s1")
    stream.add_shard("s3", parent_id="s1")
    stream.change("s2", "t1", P, R)
    stream.change("s3", "t0", P, C)
    stream.reads.clear()
    assert await a.run_once()
    assert stream.reads.index("s1") < min(stream.reads.index("s2"), stream.reads.index("s3"))
    assert await counts(aws) == {R: 1, C: 1}
    del stream.shards_by_id["s1"]  # 24 hours later the parent is trimmed away
    stream.change("s2", "t1", R, C)
    b = aggregator(aws, stream, clock, "b")
    await clock.advance(LEASE_SECONDS + 1)
    assert await b.run_once()
    assert await counts(aws) == {C: 2}
    assert b.recounts == 0


async def test_a_checkpoint_the_stream_no_longer_keeps_is_recounted_from_the_index(
    aws: AwsResources,
) -> None:
    repo = DynamoDbTaskRepository(aws.dynamodb, aws.table_name)
    now = datetime.now(UTC)
    tasks = [Task.create("email", None, now + timedelta(microseconds=n)) for n in range(3)]
    for task in tasks:
        await repo.add(task)
    claimed = tasks[0].claim("l", now, 30)
    await repo.transition(claimed, expected=tasks[0])
    stream, clock, a = await started(aws)  # its one record: a task the index lacks
    stream.shards_by_id["s1"].trimmed_below = 10**9  # the aggregator was away too long
    b = aggregator(aws, stream, clock, "b")
    await clock.advance(LEASE_SECONDS + 1)
    assert await b.run_once()
    assert b.recounts == 1
    assert await counts(aws) == {P: 2, R: 1}  # what the index holds


async def test_a_checkpoint_older_than_the_stream_keeps_is_recounted(aws: AwsResources) -> None:
    stream, clock, a = await started(aws)
    await clock.advance(25 * 3600)
    assert await a.run_once()
    assert a.recounts == 2  # the first on the new stream, then the stale checkpoint
    assert await counts(aws) == {}  # the index holds no task


async def test_a_pass_stops_at_a_short_page_and_the_next_pass_reads_on(
    aws: AwsResources,
) -> None:
    stream, _, a = await started(aws)
    stream.reads.clear()
    for n in range(RECORDS_PER_READ + 5):  # a full page and then a short one
        stream.change("s1", f"t{n}", None, P)
    assert await a.run_once()
    assert stream.reads == ["s1", "s1"]  # no third read to find an empty page
    stream.change("s1", "late", None, P)
    stream.reads.clear()
    assert await a.run_once()
    assert stream.reads == ["s1"]
    assert await counts(aws) == {P: RECORDS_PER_READ + 7}
