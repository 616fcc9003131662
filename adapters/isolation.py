"""Handlers run alone in a child process: the ``HandlerSandbox`` port.

Children come from multiprocessing's fork server: one small single-threaded process,
started on first use with the handler modules (and the program's main module) already
imported, that forks a child per call. The worker never forks itself: it has threads
and an event loop, which a child forked from it would inherit half-alive. A child of
the fork server starts in a few milliseconds, and shares no socket or loop with the
worker: only the pipe that carries its result back.

A handler function travels to the child by reference (its module and name), so it must
be a module-level function, as every ``@task_type`` handler is.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import types
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.process import BaseProcess
from typing import Any, Final

from domain.errors import (
    HandlerCrashed,
    HandlerNotIsolatable,
    HandlerTimeout,
    PermanentTaskError,
)
from domain.models import JSON
from domain.task_types import TaskType

START_METHOD: Final = "forkserver"
"""Never "fork": the worker has threads and an event loop a forked child would inherit."""
EXIT_GRACE_SECONDS: Final = 1.0
"""How long a child that sent its result has to exit by itself before it is killed."""
EXIT_WAIT_SECONDS: Final = 5.0
"""How long to wait for a child to be reaped once it closed its pipe or was killed."""
_PARENT_GONE_EXIT_CODE: Final = 70


class ProcessHandlerSandbox:
    """``HandlerSandbox`` on child processes of a fork server.

    ``preload`` names the modules the fork server imports once (the ``TASKQ_HANDLERS``
    modules), so that a child does not import them again on every call.
    """

    def __init__(
        self,
        *,
        preload: Sequence[str] = (),
        start_method: str = START_METHOD,
    ) -> None:
        if start_method == "fork":
            raise ValueError("a sandbox never forks the worker itself: use forkserver or spawn")
        self._context: Any = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._context.set_forkserver_preload(preload_modules(preload))

    async def run(self, task_type: TaskType, payload: JSON, *, timeout_seconds: float) -> JSON:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds!r}")
        try:
            pickle.dumps(task_type.handler)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise HandlerNotIsolatable(task_type.name, str(exc)) from None
        parent_end, child_end = self._context.Pipe(duplex=True)
        process: BaseProcess = self._context.Process(
            target=_child_main,
            args=(child_end, task_type.handler, payload),
            name=f"taskq-isolated-{task_type.name}",
        )
        try:
            await start_child(process)
            child_end.close()  # the child holds its end: EOF here means it is gone
            try:
                async with asyncio.timeout(timeout_seconds):
                    await wait_readable(parent_end.fileno())
            except TimeoutError:
                await self._stop(process)
                raise HandlerTimeout(
                    f"{task_type.name} timed out after {timeout_seconds:g}s "
                    "(its isolated process was terminated)"
                ) from None
            return await self._outcome(task_type, parent_end, process)
        finally:
            # Closing our end tells a child that is still there to exit (see
            # _exit_with_parent); _stop gives it a moment, then kills it.
            parent_end.close()
            child_end.close()
            await asyncio.shield(self._stop(process, at_once=False))
            with contextlib.suppress(ValueError):  # still running: left to the GC
                process.close()

    async def _outcome(
        self, task_type: TaskType, conn: multiprocessing.connection.Connection, process: Any
    ) -> JSON:
        try:
            kind, value = conn.recv()
        except (EOFError, OSError):
            if not await wait_exited(process, EXIT_WAIT_SECONDS):
                await self._stop(process)  # closed its pipe but lingers: crashed all the same
            raise crash_error(task_type.name, process.exitcode) from None
        if kind == "ok":
            return value
        raise rebuild_exception(value)

    async def _stop(self, process: Any, *, at_once: bool = True) -> None:
        """Kill the child if it still runs (``at_once``, or after ``EXIT_GRACE_SECONDS``),
        and reap it. SIGKILL: the child ignores SIGTERM (see ``_child_main``)."""
        if process.pid is None:
            return  # never started
        if not at_once:
            await wait_exited(process, EXIT_GRACE_SECONDS)
        if process.exitcode is None:
            with contextlib.suppress(OSError):
                process.kill()
            await wait_exited(process, EXIT_WAIT_SECONDS)
        if process.exitcode is not None:
            process.join()  # reaped already: returns at once


def preload_modules(handler_modules: Sequence[str]) -> list[str]:
    """What the fork server imports once: this module (the child's entry point), the
    handler modules, and what the program's main module imports. multiprocessing runs
    the main module again in each child (as ``__mp_main__``); with its imports already
    loaded that costs next to nothing, where for the ``taskq`` script it would otherwise
    import the whole engine every time (~0.3 s)."""
    modules = [__name__, "adapters.stoppable_pool", "adapters.handlers.builtin", *handler_modules]
    main = sys.modules.get("__main__")
    if main is None:
        return modules
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name and not spec_name.endswith("__main__"):
        modules.append(spec_name)
    for value in list(vars(main).values()):
        name = value.__name__ if isinstance(value, types.ModuleType) else None
        name = name or getattr(value, "__module__", None)
        # Only what imported cleanly here: the fork server survives only ImportError.
        if isinstance(name, str) and name in sys.modules and not name.startswith("__"):
            modules.append(name)
    return list(dict.fromkeys(modules))


async def start_child(process: BaseProcess) -> None:
    """Start the child off the event loop (the first start launches the fork server);
    a start under way when the caller is cancelled is finished, so the child is known
    and can be stopped."""
    starting = asyncio.ensure_future(asyncio.to_thread(process.start))
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await starting
        raise


async def wait_readable(fd: int) -> None:
    """Wait until ``fd`` is readable. Its blocking mode is kept: uvloop's ``add_reader``
    makes it non-blocking (libuv's poll handle), and a pipe's blocking ``send_bytes`` or
    ``recv`` of more than its buffer would then fail half-way."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    blocking = os.get_blocking(fd)

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
        with contextlib.suppress(OSError):  # closed meanwhile: nothing to restore
            os.set_blocking(fd, blocking)


async def wait_exited(process: Any, seconds: float) -> bool:
    """Wait up to ``seconds`` for the child to end; True if it has."""
    if process.exitcode is not None:
        return True
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wait_readable(process.sentinel)
    return process.exitcode is not None


def crash_error(handler_name: str, exit_code: int | None) -> HandlerCrashed:
    """What a child's ``exit_code`` (negative: the signal that ended it) says of the
    handler ``handler_name`` that ran in it."""
    if exit_code is not None and exit_code < 0:
        try:
            signal_name = signal.Signals(-exit_code).name
        except ValueError:
            signal_name = str(-exit_code)
        return HandlerCrashed(handler_name, exit_code, f"{signal_name} ({-exit_code})")
    return HandlerCrashed(handler_name, exit_code)


def rebuild_exception(raised: tuple[str, bool, bytes | None]) -> BaseException:
    """The handler's exception as the child pickled it, or one that says the same."""
    description, permanent, pickled = raised
    if pickled is not None:
        with contextlib.suppress(Exception):
            exc = pickle.loads(pickled)
            if isinstance(exc, Exception):
                return exc
    return PermanentTaskError(description) if permanent else RuntimeError(description)


# -- in the child ---------------------------------------------------------------------


def _child_main(conn: multiprocessing.connection.Connection, handler: Any, payload: JSON) -> None:
    """Run the handler, send ``("ok", result)`` or ``("raised", (text, permanent,
    pickled))`` back.

    The worker alone decides when its children stop. A Ctrl-C or a SIGTERM sent to the
    whole process group (a terminal, systemd's default stop) reaches the children too,
    and must not end an attempt as the handler's crash: the worker drains, then stops
    them itself (SIGKILL). Python-level handlers, not SIG_IGN: programs that a handler
    starts get the default dispositions back."""
    signal.signal(signal.SIGINT, ignore_signal)
    signal.signal(signal.SIGTERM, ignore_signal)
    threading.Thread(target=_exit_with_parent, args=(conn,), daemon=True).start()
    call_and_answer(conn, handler, payload)


def call_and_answer(
    conn: multiprocessing.connection.Connection, function: Callable[..., Any], *args: Any
) -> None:
    """In a child: ``function(*args)`` (awaited under a loop of its own if it is a
    coroutine), then ``("ok", result)`` or ``("raised", ...)`` sent back on ``conn``."""
    message: tuple[str, Any]
    try:
        result = function(*args)
        if inspect.isawaitable(result):
            result = asyncio.run(_wait(result))
        message = ("ok", result)
    except Exception as exc:
        message = ("raised", describe_raised(exc))
    try:
        conn.send(message)
    except Exception as exc:  # an unpicklable result
        conn.send(("raised", describe_raised(exc)))


def ignore_signal(signum: int, frame: object) -> None:
    pass


async def _wait(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _exit_with_parent(conn: multiprocessing.connection.Connection) -> None:
    """The worker never writes to the pipe: it becomes readable (EOF) only when the
    worker closed it or died. Then nobody wants the result: stop at once."""
    with contextlib.suppress(Exception):
        conn.poll(None)
    os._exit(_PARENT_GONE_EXIT_CODE)


def describe_raised(exc: Exception) -> tuple[str, bool, bytes | None]:
    text = str(exc)
    description = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    pickled: bytes | None
    try:
        pickled = pickle.dumps(exc)
        pickle.loads(pickled)
    except Exception:
        pickled = None
    return description, isinstance(exc, PermanentTaskError), pickled
