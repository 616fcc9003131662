"""The operator's side of flow control: see and change a task type's limits and pause.

A change is merged into the type's flow record by compare-and-set (the permits and
tokens in it are kept), and takes effect at once in this process (its ``FlowGate``
remembers the record written); every other process reads it within
``TASKQ_FLOW_REFRESH_SECONDS`` plus one read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.coordination_ports import FlowControlStore
from domain.errors import FlowRecordConflict, TaskTypeNotFound
from domain.flow_control import FlowLimits, FlowRecord, change, check_change
from domain.flow_gate import RACE_PAUSE_SECONDS, FlowGate
from domain.limits import FLOW_WRITE_ATTEMPTS
from domain.ports import Clock


@dataclass(frozen=True, slots=True)
class TypeFlow:
    """A task type's limits as they stand, and its tasks holding a permit."""

    task_type: str
    limits: FlowLimits
    running: int | None
    """Tasks of the type holding a permit now; None when it has no ``max_concurrency``
    (then none is counted)."""


@dataclass(eq=False)
class TaskTypeLimits:
    store: FlowControlStore
    gate: FlowGate
    clock: Clock

    def _flow(self, task_type: str, record: FlowRecord | None) -> TypeFlow:
        limits = self.gate.limits_of(task_type, record)
        running = None
        if limits.max_concurrency is not None:
            now = self.clock.now().timestamp()
            running = 0 if record is None else record.running(now)
        return TypeFlow(task_type, limits, running)

    async def all(self) -> dict[str, TypeFlow]:
        """Every registered type's flow, read from the store now."""
        await self.gate.refresh(force=True)
        records = self.gate.records()
        names = self.gate.task_types.names()
        return {name: self._flow(name, records.get(name)) for name in names}

    def known(self) -> dict[str, TypeFlow]:
        """Every registered type's flow as this process last read it (no store call)."""
        records = self.gate.records()
        return {n: self._flow(n, records.get(n)) for n in self.gate.task_types.names()}

    async def change(self, task_type: str, overrides: Mapping[str, Any]) -> TypeFlow:
        """Set some of ``max_concurrency``, ``rate``, ``burst``, ``paused`` of a
        registered type (``None``: no such limit). Raises ``TaskTypeNotFound`` and
        ``InvalidInput`` naming the setting."""
        if task_type not in self.gate.task_types:
            raise TaskTypeNotFound(task_type, self.gate.task_types.names())
        checked = check_change(overrides)
        for _ in range(FLOW_WRITE_ATTEMPTS):
            record = await self.store.get(task_type) or FlowRecord(task_type)
            new = change(record, checked)
            self.gate.limits_of(task_type, new)  # the whole, checked once more
            try:
                stored = await self.store.put(new)
            except FlowRecordConflict:
                await asyncio.sleep(RACE_PAUSE_SECONDS)
                continue
            self.gate.remember(stored)
            return self._flow(task_type, stored)
        raise FlowRecordConflict(task_type)
