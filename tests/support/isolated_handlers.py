"""Module-level handlers for the sandbox tests: a child process finds them by name.

Each writes its process id to ``payload["pidfile"]`` (when given) before it acts, so a
test can check that the child it ran in is gone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

from domain.errors import PermanentTaskError


def _note_pid(payload: Any) -> None:
    if isinstance(payload, dict) and payload.get("pidfile"):
        with open(payload["pidfile"], "w") as file:
            file.write(str(os.getpid()))


def where(payload: Any) -> Any:
    """The child's pid and its parent's: proof that it ran elsewhere."""
    return {"pid": os.getpid(), "echo": payload}


async def async_double(payload: Any) -> Any:
    await asyncio.sleep(0)
    return {"twice": payload * 2, "loop": type(asyncio.get_running_loop()).__name__}


def sigkill_self(payload: Any) -> Any:
    _note_pid(payload)
    os.kill(os.getpid(), signal.SIGKILL)


def exit_hard(payload: Any) -> Any:
    os._exit(3)


def segfault(payload: Any) -> Any:
    os.kill(os.getpid(), signal.SIGSEGV)


def sleep_long(payload: Any) -> Any:
    _note_pid(payload)
    time.sleep(float(payload.get("seconds", 60)))
    return "woke"


def raise_value_error(payload: Any) -> Any:
    raise ValueError(f"bad payload {payload!r}")


def raise_permanent(payload: Any) -> Any:
    raise PermanentTaskError("never going to work")


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickle calls cls(*args): one arg
        super().__init__(f"{a}+{b}")


def raise_unpicklable(payload: Any) -> Any:
    raise Unpicklable(1, 2)


def sleep_then_write(payload: Any) -> Any:
    """Sleeps ``payload["seconds"]``, then writes ``payload["path"]``: a side effect
    that must never land once the handler's time ran out."""
    _note_pid(payload)
    time.sleep(float(payload["seconds"]))
    with open(payload["path"], "w") as file:
        file.write("written after the sleep")
    return "wrote"


def square(n: int) -> int:
    return n * n
