"""Clocks: the real one, and one that tests move by hand."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from domain import deadlines
from domain.ports import Timer


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return deadlines.call_later(seconds, callback)  # cheaper than the loop's, per delay


class ManualClock:
    """Time stands still until ``advance`` moves it; ``sleep`` waits for that.

    Sleepers wake in deadline order as ``advance`` passes their deadline, so a test can
    drive visibility timeouts, delays and heartbeats without real waiting.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + seconds, future))
        await future

    def call_later(self, seconds: float, callback: Callable[[], None]) -> asyncio.Future[None]:
        """A sleeper without a task: ``callback`` runs when ``advance`` passes it."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + seconds, future))
        future.add_done_callback(lambda done: None if done.cancelled() else callback())
        return future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper whose deadline passes, in order."""
        target = self._mono + seconds
        while True:
            due = sorted(
                (s for s in self._sleepers if s[0] <= target and not s[1].done()),
                key=lambda s: s[0],
            )
            if not due:
                break
            deadline, future = due[0]
            self._set(deadline)
            self._sleepers.remove((deadline, future))
            future.set_result(None)
            for _ in range(5):  # let the woken coroutine run on to its next await
                await asyncio.sleep(0)
        self._set(target)
        self._sleepers = [s for s in self._sleepers if not s[1].done()]
        await asyncio.sleep(0)

    def _set(self, mono: float) -> None:
        if mono > self._mono:
            self._now += timedelta(seconds=mono - self._mono)
            self._mono = mono
