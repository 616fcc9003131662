"""The worker goes first: fairness between the API and a worker on one event loop.

``taskq serve`` runs the HTTP API and a worker on one event loop. asyncio runs every
ready callback once per turn, so under a flood of requests the 32 or more request tasks
of a turn outnumber the worker's few steps: the API accepted ten tasks for each one
the worker finished and the backlog grew without bound (issue 18). ``WorkerFirst``
gives the worker priority over accepting more work: while more than ``ahead_limit``
tasks accepted by this process wait for this worker, a submission waits (at most
``max_wait`` seconds) for the worker to take some. Accepting then keeps pace with
finishing, and a client sees the load as latency, fairly spread, instead of a backlog.

Nobody waits when waiting cannot help: when the worker's slots are full and none has
finished for a while (slow tasks: it is busy, not starved), or when it asked for more
than it got (the queue holds nothing visible: the tasks were delayed, or another
process took them).
"""

from __future__ import annotations

import asyncio
import time

SLOW_FULL_SECONDS = 0.05
"""Slots full with no task finished for longer than this: the tasks are slow, and the
worker is busy, not starved."""
DEFAULT_MAX_WAIT_SECONDS = 0.5
"""The longest a submission waits for its turn: a bound for the unforeseen, not reached
under a flood (the worker takes its share within milliseconds)."""


class WorkerFirst:
    def __init__(
        self,
        ahead_limit: int,
        *,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        slow_full: float = SLOW_FULL_SECONDS,
    ) -> None:
        if ahead_limit < 1:
            raise ValueError(f"ahead_limit must be at least 1, not {ahead_limit}")
        self.ahead_limit = ahead_limit
        self.max_wait = max_wait
        self.slow_full = slow_full
        self._ahead = 0
        self._full_since: float | None = None
        """Since when every slot is busy with no task finished; None: a slot is free."""
        self._turn: asyncio.Event | None = None  # made on the loop that uses it

    @property
    def ahead(self) -> int:
        """Tasks accepted here that the worker has not taken yet (an estimate)."""
        return self._ahead

    # -- the API's side ----------------------------------------------------------------

    def accepted(self, count: int = 1) -> None:
        """``count`` tasks were accepted, due now."""
        self._ahead += count

    def must_wait(self) -> bool:
        if self._ahead <= self.ahead_limit:
            return False
        full_since = self._full_since
        return full_since is None or time.monotonic() - full_since < self.slow_full

    async def wait_turn(self) -> None:
        """Return at once unless the worker is behind; then when it has caught up, or
        after ``max_wait``."""
        if not self.must_wait():
            return
        if self._turn is None:
            self._turn = asyncio.Event()
        turn = self._turn
        turn.clear()
        try:
            async with asyncio.timeout(self.max_wait):
                await turn.wait()
        except TimeoutError:
            pass

    # -- the worker's side -------------------------------------------------------------

    def taken(self, received: int, asked: int) -> None:
        """The worker received ``received`` deliveries of the ``asked``: fewer means
        nothing else is visible, so nothing is ahead of it."""
        self._full_since = None
        self._ahead = 0 if received < asked else max(0, self._ahead - received)
        if self._turn is not None and self._ahead <= self.ahead_limit:
            self._turn.set()

    def full(self) -> None:
        """Every slot of the worker is busy."""
        if self._full_since is None:
            self._full_since = time.monotonic()

    def finished(self) -> None:
        """A task of the worker finished: it is making progress."""
        if self._full_since is not None:
            self._full_since = time.monotonic()
