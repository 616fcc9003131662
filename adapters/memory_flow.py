"""``InMemoryFlowControlStore``: the task types' flow records in this process."""

from __future__ import annotations

from dataclasses import replace

from domain.errors import FlowRecordConflict
from domain.flow_control import FlowRecord


class InMemoryFlowControlStore:
    """Records by type; a put compares versions like every other backend's."""

    def __init__(self) -> None:
        self._records: dict[str, FlowRecord] = {}

    async def get(self, task_type: str) -> FlowRecord | None:
        return self._records.get(task_type)

    async def all(self) -> list[FlowRecord]:
        return list(self._records.values())

    async def put(self, record: FlowRecord) -> FlowRecord:
        stored = self._records.get(record.task_type)
        if (stored.version if stored is not None else 0) != record.version:
            raise FlowRecordConflict(record.task_type)
        new = replace(record, version=record.version + 1)
        self._records[record.task_type] = new
        return new
