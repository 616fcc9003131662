"""Task types a team defines with ``taskq.task``, loaded with ``TASKQ_HANDLERS`` in tests:
typed input and output, the handler context, sync and async."""

from __future__ import annotations

import threading
import time

from pydantic import BaseModel, Field

from taskq import TaskContext, task

SEEN_CANCELLED: dict[str, bool] = {}
"""Task id -> whether its handler saw ``ctx.cancelled`` before it returned."""
SYNC_STARTED = threading.Event()
"""Set when ``hold_sync`` has started (and reported its progress)."""


class ResizeIn(BaseModel):
    image: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class ResizeOut(BaseModel):
    key: str
    pixels: int


@task("typed-resize", timeout=30, max_attempts=5)
async def resize(inp: ResizeIn, ctx: TaskContext) -> ResizeOut:
    await ctx.progress(50, f"resizing {inp.image}")
    ctx.logger.info("resized %s", inp.image)
    return ResizeOut(key=f"{inp.image}@{inp.width}x{inp.height}", pixels=inp.width * inp.height)


@task("typed-sum")
def add(numbers: list[int]) -> int:
    """A sync handler without a context: it runs in the worker's executor thread."""
    return sum(numbers)


@task("typed-hold", timeout=60)
async def hold(label: str, ctx: TaskContext) -> str:
    """Reports progress, then runs until its task is cancelled (or its lease lost)."""
    await ctx.progress(40, f"holding {label}")
    await ctx.wait_cancelled()
    SEEN_CANCELLED[ctx.task_id] = ctx.cancelled
    return "stopped"


@task("typed-hold-sync", timeout=60)
def hold_sync(label: str, ctx: TaskContext) -> str:
    """``hold`` for a sync handler: it polls ``ctx.cancelled`` in its thread."""
    ctx.progress_sync(25, f"holding {label} in a thread")
    SYNC_STARTED.set()
    deadline = time.monotonic() + 30
    while not ctx.cancelled and time.monotonic() < deadline:
        time.sleep(0.01)
    SEEN_CANCELLED[ctx.task_id] = ctx.cancelled
    return "stopped"
