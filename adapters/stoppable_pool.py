"""Worker processes that can be stopped one at a time: the ``CpuPool`` port, and the
runner of ``stoppable`` task types.

A standard ``ProcessPoolExecutor`` cannot stop one call: its workers are shared, and
terminating one breaks the pool. Here each slot is one warm child process (from the
same fork server as ``adapters/isolation.py``) that runs one call at a time. A call
past its timeout, or whose caller is cancelled (a task cancelled or a worker shutting
down), has its process killed there and then; the slot starts a new one on its next
call. A process that crashed is replaced alike.

A warm call costs a round trip on a pipe and two pickles: about 0.05 ms for a small
payload here (tests/integration/test_stoppable_pool.py measures it), against about
8 ms to fork a fresh child per call (``ProcessHandlerSandbox``). The first call of a
slot pays that start once.

A function travels to the child by reference (module and name), its arguments and
result by pickle: a module-level function, as every ``@task_type`` handler is.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from adapters.isolation import (
    EXIT_WAIT_SECONDS,
    START_METHOD,
    call_and_answer,
    crash_error,
    describe_raised,
    ignore_signal,
    preload_modules,
    rebuild_exception,
    start_child,
    wait_exited,
    wait_readable,
)
from domain.errors import HandlerNotIsolatable, HandlerTimeout
from domain.models import JSON
from domain.task_types import TaskType

R = TypeVar("R")

LARGE_MESSAGE_BYTES: Final = 64 * 1024
"""A call this large is written to its pipe off the event loop: a pipe holds 64 KiB
(Linux's default), past which the write waits for the child to read."""
CRASH_EXIT_SECONDS: Final = 0.5
"""How long a child that closed its pipe without an answer has to end by itself (so its
exit code or signal is known) before it is killed."""
SLOT_NICENESS: Final = 10
"""How much lower than the worker's a slot process's CPU priority is: on a machine whose
cores the pool fills (TASKQ_CPU_WORKERS is the core count), the worker's event loop
still gets the CPU first, so no-op tasks start as fast beside resizes (benchmark 10)."""
ORPHAN_CHECK_SECONDS: Final = 1.0
"""How often a child looks whether the worker that owns it is gone (it then exits)."""


class NotPicklable(TypeError):
    """The function or its arguments cannot be sent to a child process."""


class StoppableProcessPool:
    """``CpuPool`` on ``size`` warm child processes, one call at a time each; a call
    waits for a free slot (the timeout counts from when it starts running).

    Children are started on first use and killed by ``kill_all`` (or when the pool is
    collected, or at the interpreter's exit).
    """

    def __init__(
        self,
        size: int,
        *,
        preload: Sequence[str] = (),
        start_method: str = START_METHOD,
        name: str = "taskq-pool",
    ) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least 1 process, got {size!r}")
        if start_method == "fork":
            raise ValueError("a pool never forks the worker itself: use forkserver or spawn")
        self.size = size
        self._name = name
        self._context: Any = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._context.set_forkserver_preload(preload_modules(preload))
        self._idle: list[_Slot] = []
        self._busy = 0
        self._free: asyncio.Semaphore | None = None
        self._processes: set[Any] = set()
        """Every live child, for the finalizer: it must not hold the pool itself."""
        self._finalizer = weakref.finalize(self, _kill_all, self._processes)
        self.started = 0
        """How many child processes were started in all (replacements included)."""

    async def run(self, function: Callable[..., R], *args: Any, timeout_seconds: float) -> R:
        name = getattr(function, "__qualname__", repr(function))
        result: R = await self.call(name, function, args, timeout_seconds=timeout_seconds)
        return result

    async def call(
        self,
        name: str,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        timeout_seconds: float,
    ) -> Any:
        """``function(*args)`` in a free slot, ``name`` naming it in errors."""
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds!r}")
        try:
            request = pickle.dumps((function, args))
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise NotPicklable(f"{name} cannot be sent to a child process: {exc}") from None
        if self._free is None:
            self._free = asyncio.Semaphore(self.size)
        async with self._free:
            slot = self._idle.pop() if self._idle else None
            if slot is None:
                slot = await self._new_slot()
            try:
                outcome = await slot.call(request, timeout_seconds)
            except BaseException:
                self._processes.discard(slot.process)
                await asyncio.shield(slot.stop())
                raise
            if outcome is None:  # the child ended without an answer
                self._processes.discard(slot.process)
                raise crash_error(name, await asyncio.shield(slot.stop(at_once=False)))
            self._idle.append(slot)
        kind, value = outcome
        if kind == "ok":
            return value
        raise rebuild_exception(value)

    def kill_all(self) -> None:
        """Kill and reap every child (a call still running fails: its process crashed).
        The pool stays usable: a later call starts new processes."""
        idle, self._idle = self._idle, []
        for slot in idle:
            slot.conn.close()
        _kill_all(self._processes)

    async def _new_slot(self) -> _Slot:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_slot_main, args=(child_end,), name=f"{self._name}-{self.started}"
        )
        self.started += 1
        try:
            await start_child(process)
        finally:
            child_end.close()  # the child holds its end: EOF here means it is gone
        self._processes.add(process)
        return _Slot(process, parent_end)


class _Slot:
    """One child process and the parent's end of its pipe."""

    def __init__(self, process: Any, conn: multiprocessing.connection.Connection) -> None:
        self.process = process
        self.conn = conn

    async def call(self, request: bytes, timeout_seconds: float) -> tuple[str, Any] | None:
        """Send ``request``, wait for the answer; None if the child ended without one.
        ``HandlerTimeout`` past ``timeout_seconds`` (the caller stops the slot)."""
        try:
            if len(request) > LARGE_MESSAGE_BYTES:
                await asyncio.to_thread(self.conn.send_bytes, request)
            else:
                self.conn.send_bytes(request)
        except OSError:
            return None  # it died between two calls
        try:
            async with asyncio.timeout(timeout_seconds):
                await wait_readable(self.conn.fileno())
        except TimeoutError:
            raise HandlerTimeout(
                f"timed out after {timeout_seconds:g}s (its process was terminated)"
            ) from None
        try:
            answer: tuple[str, Any] = self.conn.recv()
        except (EOFError, OSError):
            return None
        return answer

    async def stop(self, *, at_once: bool = True) -> int | None:
        """Kill the child if it still runs (it ignores SIGTERM), reap it, close the
        pipe; its exit code (negative: the signal that ended it). Not ``at_once``: it
        closed its pipe (a crash) and may be exiting by itself: a moment to say how."""
        self.conn.close()
        if self.process.exitcode is None:
            if at_once or not await wait_exited(self.process, CRASH_EXIT_SECONDS):
                with contextlib.suppress(OSError):
                    self.process.kill()
        if not await wait_exited(self.process, EXIT_WAIT_SECONDS):
            return None
        exit_code: int | None = self.process.exitcode
        self.process.join()
        self.process.close()
        return exit_code


class PooledHandlerSandbox:
    """``HandlerSandbox`` on a ``StoppableProcessPool``: how the handlers of
    ``stoppable`` task types run (a warm process, killed at the timeout or on cancel)."""

    def __init__(self, pool: StoppableProcessPool) -> None:
        self.pool = pool

    async def run(self, task_type: TaskType, payload: JSON, *, timeout_seconds: float) -> JSON:
        try:
            return await self.pool.call(
                task_type.name, task_type.handler, (payload,), timeout_seconds=timeout_seconds
            )
        except NotPicklable as exc:
            raise HandlerNotIsolatable(task_type.name, str(exc)) from None
        except HandlerTimeout as exc:
            raise HandlerTimeout(f"{task_type.name} {exc}") from None


def _kill_all(processes: set[Any]) -> None:
    for process in list(processes):
        with contextlib.suppress(Exception):
            if process.exitcode is None:
                process.kill()
            process.join(EXIT_WAIT_SECONDS)
    processes.clear()


# -- in the child ---------------------------------------------------------------------


def _slot_main(conn: multiprocessing.connection.Connection) -> None:
    """Answer calls until the pipe closes: ``("ok", result)`` or ``("raised", ...)``.

    SIGINT and SIGTERM are ignored, as in an isolated child: only the worker stops its
    children (adapters/isolation.py says why). It runs at a lower CPU priority than
    the worker (``SLOT_NICENESS``)."""
    signal.signal(signal.SIGINT, ignore_signal)
    signal.signal(signal.SIGTERM, ignore_signal)
    os.nice(SLOT_NICENESS)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            function, args = pickle.loads(request)
        except Exception as exc:
            conn.send(("raised", describe_raised(exc)))
            continue
        call_and_answer(conn, function, *args)


def _exit_when_orphaned(parent: int) -> None:
    """The fork server (this child's parent) ends with the worker: then nobody wants
    what this child is doing."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os._exit(0)
