"""A DynamoDB stream in memory, for the counts aggregator's tests: several shards, a
split (a closed parent and its children), and a trim horizon, which moto's one shard
that never splits cannot show. It honours the ``ChangeStream`` protocol."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.dynamodb.change_stream import RECORDS_PER_READ, Record, Shard, StreamTrimmed


@dataclass
class FakeShard:
    shard_id: str
    parent_id: str | None = None
    closed: bool = False
    records: list[Record] = field(default_factory=list)
    trimmed_below: int = 0
    """Records with a lower sequence number are no longer kept."""


class FakeChangeStream:
    def __init__(self, arn: str = "arn:fake-stream") -> None:
        self._arn = arn
        self.shards_by_id: dict[str, FakeShard] = {}
        self.reads: list[str] = []
        """The shard of every read, in order."""
        self._sequence = 100

    def add_shard(self, shard_id: str, parent_id: str | None = None) -> FakeShard:
        shard = FakeShard(shard_id, parent_id)
        self.shards_by_id[shard_id] = shard
        return shard

    def change(self, shard_id: str, task_id: str, old: str | None, new: str | None) -> None:
        """Append the record of a task's state item going from status ``old`` to
        ``new`` (None: absent; an INSERT or a REMOVE)."""
        self._sequence += 1
        change: Record = {
            "SequenceNumber": str(self._sequence),
            "Keys": {"pk": {"S": f"TASK#{task_id}"}, "sk": {"S": "TASK"}},
        }
        if old is not None:
            change["OldImage"] = {"status": {"S": old}}
        if new is not None:
            change["NewImage"] = {"status": {"S": new}}
        name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
        self.shards_by_id[shard_id].records.append({"eventName": name, "dynamodb": change})

    async def arn(self) -> str:
        return self._arn

    async def shards(self) -> list[Shard]:
        return [Shard(s.shard_id, s.parent_id, s.closed) for s in self.shards_by_id.values()]

    async def iterator(self, shard_id: str, after: str | None) -> str:
        shard = self.shards_by_id[shard_id]
        if after is None:
            return f"{shard_id}|0"
        if int(after) < shard.trimmed_below:
            raise StreamTrimmed(shard_id)
        sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in shard.records]
        return f"{shard_id}|{sum(1 for seq in sequences if seq <= int(after))}"

    async def latest(self, shard_id: str) -> str:
        return f"{shard_id}|{len(self.shards_by_id[shard_id].records)}"

    async def read(self, iterator: str) -> tuple[list[Record], str | None]:
        shard_id, _, index = iterator.partition("|")
        shard = self.shards_by_id[shard_id]
        self.reads.append(shard_id)
        start = int(index)
        records = shard.records[start : start + RECORDS_PER_READ]
        end = start + len(records)
        if shard.closed and end >= len(shard.records):
            return records, None
        return records, f"{shard_id}|{end}"
