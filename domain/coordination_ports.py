"""The ports of the state every process shares to coordinate: the periodic schedules
(domain/schedules.py) and the task types' flow records (domain/flow_control.py). Their
docstrings are the specification; tests/contract/ checks every adapter against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.flow_control import FlowRecord
from domain.schedules import Schedule


class ScheduleStore(Protocol):
    """The periodic schedules (domain/schedules.py), shared by every process.

    Raises ``InfrastructureError`` when the store cannot be reached.
    """

    async def put(self, schedule: Schedule) -> bool:
        """Store ``schedule``, replacing one of the same name. Returns True when no
        schedule had that name. Raises ``InvalidInput`` (field ``name``) when it is new
        and ``domain.limits.MAX_SCHEDULES`` are stored already."""
        ...

    async def get(self, name: str) -> Schedule | None:
        """The schedule named ``name``, or None."""
        ...

    async def list(self) -> list[Schedule]:
        """Every schedule, by name."""
        ...

    async def delete(self, name: str) -> None:
        """Remove the schedule. Raises ``ScheduleNotFound`` when there is none."""
        ...

    async def mark_fired(self, name: str, through: datetime) -> None:
        """Record that the fires of ``name`` at or before ``through`` are settled: its
        ``fired_through`` becomes ``through`` unless it is already later (concurrent
        schedulers only move it forward). A schedule that is gone is left gone."""
        ...


class FlowControlStore(Protocol):
    """The task types' flow records (domain/flow_control.py), shared by every process:
    run-time settings, permits of running tasks, rate tokens. One record per type that
    has any; a record changes only by compare-and-set on its version.

    Raises ``InfrastructureError`` when the store cannot be reached.
    """

    async def get(self, task_type: str) -> FlowRecord | None:
        """The type's record as last stored (read consistently), or None."""
        ...

    async def all(self) -> list[FlowRecord]:
        """Every stored record, in any order."""
        ...

    async def put(self, record: FlowRecord) -> FlowRecord:
        """Store ``record`` if the stored version is still ``record.version`` (0: none
        is stored); return it with its new version (one more). Raises
        ``FlowRecordConflict`` when another write came first."""
