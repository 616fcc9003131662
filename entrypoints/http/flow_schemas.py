"""The flow state of a task type as ``GET /metrics`` shows it (JSON)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field

from domain.flow_settings import TypeFlow


class TaskTypeFlowOut(BaseModel):
    max_concurrency: int | None
    rate: float | None = Field(description="Starts per second allowed; null: no limit.")
    burst: int | None
    paused: bool
    running: int | None = Field(description="Tasks holding a concurrency permit.")
    deferred: int = Field(description="Deliveries this server process deferred.")

    @classmethod
    def of(cls, flow: TypeFlow, deferred: Mapping[tuple[str, str], int]) -> TaskTypeFlowOut:
        limits = flow.limits
        return cls(
            max_concurrency=limits.max_concurrency,
            rate=limits.rate,
            burst=limits.burst,
            paused=limits.paused,
            running=flow.running,
            deferred=sum(n for (name, _), n in deferred.items() if name == flow.task_type),
        )
