"""The FlowControlStore port (domain/ports.py), the same tests on every backend: records
change only by compare-and-set on their version, so two writers never both win."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from domain.coordination_ports import FlowControlStore
from domain.errors import FlowRecordConflict
from domain.flow_control import FlowRecord


async def test_a_record_is_stored_once_and_read_back(flow_store: FlowControlStore) -> None:
    assert await flow_store.get("report") is None
    assert await flow_store.all() == []
    record = FlowRecord("report", {"paused": True}, {"t1": 123.5}, 1.5, 100.0)
    stored = await flow_store.put(record)
    assert stored == replace(record, version=1)
    assert await flow_store.get("report") == stored
    assert await flow_store.all() == [stored]


async def test_a_write_over_a_stale_version_is_refused(flow_store: FlowControlStore) -> None:
    first = await flow_store.put(FlowRecord("report"))
    with pytest.raises(FlowRecordConflict):
        await flow_store.put(FlowRecord("report"))  # "not stored yet": it is
    second = await flow_store.put(replace(first, overrides={"rate": 2.0}))
    with pytest.raises(FlowRecordConflict):
        await flow_store.put(replace(first, overrides={"rate": 9.0}))  # stale version
    assert await flow_store.get("report") == second
    assert second.version == 2


async def test_of_concurrent_writers_of_one_version_exactly_one_wins(
    flow_store: FlowControlStore,
) -> None:
    base = await flow_store.put(FlowRecord("report"))
    writes = [flow_store.put(replace(base, permits={f"t{i}": 1.0})) for i in range(5)]
    results = await asyncio.gather(*writes, return_exceptions=True)
    won = [r for r in results if isinstance(r, FlowRecord)]
    assert len(won) == 1
    assert all(isinstance(r, FlowRecordConflict) for r in results if r not in won)
    assert await flow_store.get("report") == won[0]


async def test_records_of_different_types_are_apart(flow_store: FlowControlStore) -> None:
    await flow_store.put(FlowRecord("a", {"paused": True}))
    await flow_store.put(FlowRecord("b", {"max_concurrency": 2}))
    found = {r.task_type: r.overrides for r in await flow_store.all()}
    assert found == {"a": {"paused": True}, "b": {"max_concurrency": 2}}
