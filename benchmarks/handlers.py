"""Task types for the benchmarks, loaded with ``TASKQ_HANDLERS=benchmarks.handlers``.

- ``noop``: returns at once, so a run measures the engine, not the work;
- ``sleep``: awaits ``payload`` seconds (a number), an I/O-bound handler.
"""

from __future__ import annotations

import asyncio

from domain.models import JSON
from domain.task_types import task_type


@task_type("noop")
async def noop(payload: JSON) -> None:
    return None


def _validate_seconds(payload: JSON) -> None:
    if isinstance(payload, bool) or not isinstance(payload, int | float) or payload < 0:
        raise ValueError("expected a number of seconds")


@task_type("sleep", validator=_validate_seconds)
async def sleep(payload: JSON) -> None:
    assert isinstance(payload, int | float)
    await asyncio.sleep(payload)
