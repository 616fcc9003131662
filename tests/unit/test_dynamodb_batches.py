"""The DynamoDB repository's batched reads and adds against a small stand-in for the
boto3 client that leaves part of every batch unprocessed, as DynamoDB may under load:
every item is still written and read, by asking again for what was left."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.dynamodb import DynamoDbTaskRepository
from adapters.dynamodb import batched as batched_module
from domain.errors import InfrastructureError, TaskNotFound
from domain.models import Task

NOW = datetime(2026, 3, 1, tzinfo=UTC)
TABLE = "tasks"


class StingyClient:
    """Processes at most ``per_call`` items of each batch call; the rest comes back
    unprocessed. ``per_call=0`` processes nothing, ever."""

    def __init__(self, per_call: int) -> None:
        self.per_call = per_call
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, int]] = []

    @staticmethod
    def _key(item: dict[str, Any]) -> tuple[str, str]:
        return item["pk"]["S"], item["sk"]["S"]

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:  # noqa: N803
        requests = RequestItems[TABLE]
        self.calls.append(("write", len(requests)))
        for request in requests[: self.per_call]:
            item = request["PutRequest"]["Item"]
            self.items[self._key(item)] = item
        left = requests[self.per_call :]
        return {"UnprocessedItems": {TABLE: left} if left else {}}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        keys = RequestItems[TABLE]["Keys"]
        assert RequestItems[TABLE]["ConsistentRead"] is True
        self.calls.append(("read", len(keys)))
        found = [self.items[k] for k in map(self._key, keys[: self.per_call]) if k in self.items]
        left = keys[self.per_call :]
        return {
            "Responses": {TABLE: found},
            "UnprocessedKeys": {TABLE: {"Keys": left}} if left else {},
        }


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batched_module, "RETRY_PAUSE_SECONDS", 0.0)


async def test_unprocessed_items_and_keys_are_asked_for_again() -> None:
    client = StingyClient(per_call=3)
    repo = DynamoDbTaskRepository(client, TABLE)  # type: ignore[arg-type]
    tasks = [Task.create("email", {"n": n, "text": "y" * (400 * (n % 2))}, NOW) for n in range(8)]
    await asyncio.gather(*(repo.add(task) for task in tasks))
    # 4 payloads beside their state items, then the 8 state items: 3 a call
    assert client.calls == [("write", 4), ("write", 1), ("write", 8), ("write", 5), ("write", 2)]
    client.calls.clear()

    missing = "00000000-0000-4000-8000-000000000000"
    ids = [task.id for task in tasks] + [missing]
    outcomes = await asyncio.gather(*(repo.get(i) for i in ids), return_exceptions=True)
    assert outcomes[:8] == tasks
    assert isinstance(outcomes[8], TaskNotFound)
    # 9 state keys, 3 a call; then the 4 payloads beside
    assert client.calls == [("read", 9), ("read", 6), ("read", 3), ("read", 4), ("read", 1)]


async def test_items_never_processed_fail_their_adds() -> None:
    client = StingyClient(per_call=0)
    repo = DynamoDbTaskRepository(client, TABLE)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(
        *(repo.add(Task.create("email", None, NOW)) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, InfrastructureError) for outcome in outcomes)
    assert "left unprocessed" in str(outcomes[0])
    assert len(client.calls) == batched_module.WRITE_ATTEMPTS
