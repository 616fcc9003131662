"""Timers for the many calls scheduled with one same delay: a delivery's first
heartbeat, its handler's timeout. Almost all are cancelled long before they are due.

``loop.call_later`` costs about 2 µs a call here (a ``TimerHandle`` made, pushed on the
loop's heap with Python-level comparisons, and cancelled): twice a delivery. Timers of
one delay fall due in the order they were set, so they wait in a FIFO lane per delay,
with one loop timer armed for the lane's head: setting one is an append, cancelling it
a flag; cancelled ones are dropped from the front as the lane is read, and all at once
when they are half of it.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from collections.abc import Callable

COMPACT_AT = 64
"""Cancelled timers a lane may hold before it is rebuilt without them (when they are
also half of it)."""


class Deadline:
    """One scheduled call; ``cancel`` stops it (the ``Timer`` port)."""

    __slots__ = ("callback", "lane", "when")

    def __init__(self, when: float, callback: Callable[[], None], lane: _Lane) -> None:
        self.when = when
        self.callback: Callable[[], None] | None = callback
        self.lane = lane

    def cancel(self) -> None:
        if self.callback is not None:
            self.callback = None
            self.lane.cancelled_one()


class _Lane:
    """The timers of one delay on one loop, in the order they fall due."""

    def __init__(self, delay: float, lanes: _Lanes) -> None:
        # No reference to the loop is kept: the lanes are weakly keyed by it.
        self.delay = delay
        self.lanes = lanes
        self.entries: collections.deque[Deadline] = collections.deque()
        self.cancelled = 0
        self.armed = False
        """Whether a loop timer is set for the head (or for a head since dropped)."""

    def add(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> Deadline:
        deadline = Deadline(loop.time() + self.delay, callback, self)
        self.entries.append(deadline)
        if not self.armed:
            self.armed = True
            loop.call_at(deadline.when, self._fire)
        return deadline

    def cancelled_one(self) -> None:
        self.cancelled += 1
        entries = self.entries
        while entries and entries[0].callback is None:  # usually the oldest is done first
            entries.popleft()
            self.cancelled -= 1
        if self.cancelled > COMPACT_AT and self.cancelled * 2 > len(entries):
            live = [e for e in entries if e.callback is not None]
            entries.clear()  # in place: a firing lane may be reading it
            entries.extend(live)
            self.cancelled = 0

    def _fire(self) -> None:
        self.armed = False
        loop = asyncio.get_running_loop()
        entries = self.entries
        now = loop.time()
        while entries and (entries[0].callback is None or entries[0].when <= now):
            deadline = entries.popleft()
            callback, deadline.callback = deadline.callback, None
            if callback is None:
                self.cancelled -= 1
                continue
            try:
                callback()
            except Exception as exc:  # as the loop would treat a failing call_later
                loop.call_exception_handler(
                    {"message": "Exception in a timer callback", "exception": exc}
                )
        if entries:
            self.armed = True
            loop.call_at(entries[0].when, self._fire)
        else:
            self.lanes.pop(self.delay, None)  # no lane kept for a delay used once


_Lanes = dict[float, _Lane]
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lanes] = weakref.WeakKeyDictionary()
_last: tuple[Callable[[], asyncio.AbstractEventLoop | None], _Lanes] = (lambda: None, {})
"""The loop last seen (weakly: a closed loop is not kept) and its lanes."""


def call_later(seconds: float, callback: Callable[[], None]) -> Deadline:
    """Call ``callback`` on the running loop ``seconds`` from now, unless cancelled."""
    global _last
    loop = asyncio.get_running_loop()
    if _last[0]() is loop:  # the usual: one loop a process (a weak lookup costs 0.5 µs)
        lanes = _last[1]
    else:
        found = _by_loop.get(loop)
        if found is None:
            found = _by_loop[loop] = {}
        lanes = found
        _last = (weakref.ref(loop), lanes)
    lane = lanes.get(seconds)
    if lane is None:
        lane = lanes[seconds] = _Lane(seconds, lanes)
    return lane.add(loop, callback)
