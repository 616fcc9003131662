"""``CpuPool`` on a standard ``ProcessPoolExecutor``: CPU-bound work off the event loop.

``TASKQ_CPU_WORKERS`` processes (default: the core count), started on first use from
multiprocessing's fork server (never ``fork``: the worker has threads and a loop).
A call past its timeout raises ``HandlerTimeout``, but a standard pool cannot stop one
task: its process finishes the call and is then free again. The stoppable pool (one
child per slot, terminated and replaced) takes this one's place behind the same port.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from domain.errors import HandlerTimeout

R = TypeVar("R")
START_METHOD = "forkserver"


class ProcessCpuPool:
    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            context = multiprocessing.get_context(START_METHOD)
            self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._executor

    async def run(self, function: Callable[..., R], *args: Any, timeout_seconds: float) -> R:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds!r}")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool(), function, *args)
        try:
            return await asyncio.wait_for(future, timeout_seconds)
        except TimeoutError:
            name = getattr(function, "__name__", repr(function))
            raise HandlerTimeout(f"{name} timed out after {timeout_seconds:g}s") from None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def open_cpu_pool(workers: int | None) -> Iterator[ProcessCpuPool]:
    """The pool as a container resource: its processes end at shutdown."""
    pool = ProcessCpuPool(workers)
    try:
        yield pool
    finally:
        pool.close()
