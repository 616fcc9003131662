"""Calling a task type's handler within its timeout, and saying where it failed.

A handler past its timeout is cancelled (an async one) or abandoned to its thread (a
sync one: Python cannot stop a thread); either way ``HandlerTimeout`` carries the stack
where the handler was when its time ran out.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from types import FrameType
from typing import Any

from domain import deadlines
from domain.errors import HandlerNotIsolatable, HandlerTimeout
from domain.models import JSON, Task
from domain.ports import HandlerSandbox
from domain.registry import TaskType

log = logging.getLogger("taskq.processing")

STACK_HEADER = "Stack of the handler when its time ran out (most recent call last):\n"


async def call_handler(
    task_type: TaskType,
    task: Task,
    *,
    sandbox: HandlerSandbox | None,
    stoppable: HandlerSandbox | None,
    executor: Executor | None,
) -> Any:
    """Run ``task``'s handler where it belongs: an isolated task in ``sandbox`` (its
    child process), a ``stoppable`` type's in a process that can be killed, any other
    in this process (``call_in_process``)."""
    timeout = task.timeout_seconds or task_type.timeout_seconds
    if task.isolated and sandbox is not None:
        # The sandbox stops the child at the timeout, or when this is cancelled.
        try:
            return await sandbox.run(task_type, task.payload, timeout_seconds=timeout)
        except HandlerNotIsolatable as exc:  # bound to this process's services: run here
            log.warning("task %s runs in the worker's process: %s", task.id, exc)
    stopper = stoppable or sandbox
    if task_type.stoppable and stopper is not None:
        # Stopped alike: its process is killed at the timeout or on cancel.
        return await stopper.run(task_type, task.payload, timeout_seconds=timeout)
    return await call_in_process(task_type, task.payload, timeout, executor)


async def call_in_process(
    task_type: TaskType, payload: JSON, timeout: float, executor: Executor | None
) -> Any:
    """Run ``task_type``'s handler on ``payload`` in this process; ``HandlerTimeout``
    (with the handler's stack) after ``timeout`` seconds.

    An async handler is awaited in the caller's task (no task of its own); the stack is
    read when the time runs out, before the cancellation unwinds it."""
    loop = asyncio.get_running_loop()
    work: Awaitable[Any]
    if task_type.is_async:
        work = task_type.handler(payload)
        where: Callable[[], str | None] = lambda: _coroutine_stack(work)  # noqa: E731
    else:
        thread = _Thread()
        # In the handler's thread too, the run's span is current (its outbound calls
        # are its children): an executor does not carry the context by itself.
        in_context = contextvars.copy_context().run
        work = loop.run_in_executor(executor, in_context, thread.run, task_type.handler, payload)
        where = thread.stack
    task = asyncio.current_task()
    assert task is not None, "a handler is called in a task"
    stack: list[str | None] = []

    def time_is_up() -> None:
        stack.append(where())
        task.cancel()  # taken back below: only a cancellation left over goes on up

    # As asyncio.timeout does, without its scope object: one timer on a shared lane.
    timer = deadlines.call_later(timeout, time_is_up)
    try:
        result = await work
    except asyncio.CancelledError:
        if not stack or task.uncancel() > 0:
            raise  # not the timeout's, or a shutdown's too
    else:
        if not stack:
            return result
        task.uncancel()  # it swallowed its cancellation: late all the same
    finally:
        timer.cancel()
    raise HandlerTimeout(f"{task_type.name} timed out after {timeout:g}s", stack=stack[0])


def describe_traceback(exc: BaseException) -> str | None:
    """Where ``exc`` came from, as text: a handler's traceback, or for a timeout the
    stack the handler was at (None if unknown)."""
    if isinstance(exc, HandlerTimeout):
        return exc.stack
    return "".join(traceback.format_exception(exc))


def _coroutine_stack(work: Awaitable[Any]) -> str | None:
    """The await chain of an async handler's suspended coroutine, outermost first."""
    frames: list[tuple[FrameType, int]] = []
    awaited: Any = work
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            break
        frames.append((frame, frame.f_lineno))
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return _stack_text(traceback.StackSummary.extract(frames).format()) if frames else None


def _stack_text(lines: list[str]) -> str:
    return STACK_HEADER + "".join(lines)


class _Thread:
    """Runs a sync handler and remembers the thread it runs in, to read its frame."""

    def __init__(self) -> None:
        self.ident: int | None = None

    def run(self, handler: Callable[[JSON], Any], payload: JSON) -> Any:
        self.ident = threading.get_ident()
        try:
            return handler(payload)
        finally:
            self.ident = None

    def stack(self) -> str | None:
        ident = self.ident
        frame = sys._current_frames().get(ident) if ident is not None else None
        if frame is None:
            return None
        return _stack_text(traceback.format_stack(frame))
