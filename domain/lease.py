"""Keeping a running attempt's lease: the heartbeat, and the handler's progress.

While a handler runs, its lease is extended every ``every`` seconds, in the store
(compare-and-set on the version held) and on the queue (the message's visibility). The
keeper follows the stored version: a write by someone else (a cancel request) is read
back and, if the attempt is still ours, extended from. The heartbeat ends by itself when
the lease is lost or a cancel is requested; ``lost`` and ``cancel_requested`` say which.

The handler's progress reports (``note_progress``) are written onto the task by the
same keeper, one write at a time with the extensions (each from the version the last
one left): at most one every ``progress_interval`` seconds, the latest report winning.
A report still unwritten when the attempt ends is written then, so the last one counts.

Claim at finish (``domain/claim_at_finish.py``): the keeper may start with the claim
not yet written (``unclaimed``, the PENDING version stored). It writes the claim when
``claim_after`` has passed or before any other write (progress), then keeps the lease
as above. If the attempt ends first, nothing was written: its outcome is stored over
``unclaimed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from domain.errors import ConcurrencyConflict, InfrastructureError, TaskNotFound
from domain.limits import PROGRESS_INTERVAL_SECONDS
from domain.models import Delivery, Task, TaskStatus
from domain.ports import Clock, TaskQueue, TaskRepository, Timer
from domain.progress import Progress

log = logging.getLogger("taskq.processing")


RESULT_WRITE_ATTEMPTS = 4
"""Tries to write an attempt's outcome through a store outage (0.5, 1, 2 s apart)."""


async def store_outcome(
    repository: TaskRepository, clock: Clock, new: Task, expected: Task
) -> bool:
    """Write an attempt's outcome, riding out a short store outage: a handler that ran
    to its end is not run again for want of one write. False if the lease is lost."""
    for attempt in range(RESULT_WRITE_ATTEMPTS):
        try:
            await repository.transition(new, expected=expected)
            return True
        except (ConcurrencyConflict, TaskNotFound):
            # A write whose answer was lost may have landed: then the stored task is
            # exactly ours.
            try:
                return await repository.get(new.id) == new
            except (TaskNotFound, InfrastructureError):
                return False
        except InfrastructureError as exc:
            if attempt == RESULT_WRITE_ATTEMPTS - 1:
                raise
            log.warning("recording task %s failed, retrying: %s", new.id, exc)
            await clock.sleep(0.5 * 2**attempt)
    return False


async def stored_attempt(repository: TaskRepository, claimed: Task) -> Task | None:
    """The stored task if it is still the attempt ``claimed`` (a cancel request
    changes its version but not its lease), else None."""
    try:
        stored = await repository.get(claimed.id)
    except TaskNotFound:
        return None
    if stored.status is TaskStatus.PROCESSING and stored.lease_token == claimed.lease_token:
        return stored
    return None


@dataclass(eq=False, kw_only=True)
class LeaseKeeper:
    """The heartbeat of one attempt, its progress writes, and the latest stored version
    of its task. Used on one event loop."""

    task: Task
    """The latest stored version of the running task (each write bumps it)."""
    delivery: Delivery
    repository: TaskRepository
    queue: TaskQueue
    clock: Clock
    lease_seconds: float
    every: float
    """Seconds between extensions."""
    progress_interval: float = PROGRESS_INTERVAL_SECONDS
    """Seconds at least between two progress writes."""
    unclaimed: Task | None = None
    """The stored PENDING version while the claim (``task``) is not written; else None."""
    claim_after: float = 0.0
    """Seconds after the start when an unwritten claim is written (at most ``every``)."""
    cancel_requested: bool = field(default=False, init=False)
    lost: bool = field(default=False, init=False)
    _ended: asyncio.Future[None] | None = field(default=None, init=False)
    _beating: asyncio.Future[None] | None = field(default=None, init=False)
    _timer: Timer | None = field(default=None, init=False)  # until the first beat
    _writes: set[asyncio.Future[bool]] = field(default_factory=set, init=False)
    _made_lock: asyncio.Lock | None = field(default=None, init=False)
    _pending: Progress | None = field(default=None, init=False)
    _next_progress_at: float = field(default=float("-inf"), init=False)
    _progress_writer: asyncio.Future[None] | None = field(default=None, init=False)
    _stopped: bool = field(default=False, init=False)

    def start(self, attempt: asyncio.Future[Any] | None = None) -> asyncio.Future[None]:
        """Keep the lease while ``attempt`` runs (without one: until ``attempt_ended``);
        the future ends when the attempt does, the lease is lost or a cancel is
        requested (or the heartbeat stops).

        The heartbeat is lazy: its task starts when the first extension is due, so an
        attempt shorter than ``every`` costs one timer, not a task."""
        self._ended = asyncio.get_running_loop().create_future()
        first = self.every if self.unclaimed is None else min(self.claim_after, self.every)
        self._timer = self.clock.call_later(first, self._first_beat)
        if attempt is not None:
            attempt.add_done_callback(self._attempt_done)
        return self._ended

    def attempt_ended(self) -> None:
        """The attempt is over (when ``start`` was given none to follow)."""
        self._attempt_done(None)

    def _first_beat(self) -> None:
        self._timer = None
        if not (self._stopped or self._over or self._ended is None or self._ended.done()):
            self._beating = asyncio.ensure_future(self._beat())

    def _attempt_done(self, _: object) -> None:
        self._end()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def stop(self) -> None:
        """Stop the heartbeat, wait for a write already under way, and write a progress
        report still pending (the attempt is over: the last report counts)."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for running in (self._beating, self._progress_writer):
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
        while self._writes:
            await asyncio.wait(set(self._writes))
        if self._pending is not None:
            await self._write_pending()

    def note_progress(self, progress: Progress) -> None:
        """The handler's latest report: written at once if the last write is
        ``progress_interval`` old, else at that point (replacing any report waiting)."""
        if self._stopped or self.lost or self.cancel_requested:
            return
        self._pending = progress
        if self._progress_writer is None or self._progress_writer.done():
            self._progress_writer = asyncio.ensure_future(self._write_progress())

    @property
    def _lock(self) -> asyncio.Lock:
        """Made on the first write: most attempts end before any."""
        if self._made_lock is None:
            self._made_lock = asyncio.Lock()
        return self._made_lock

    @property
    def _over(self) -> bool:
        return self.lost or self.cancel_requested

    def _end(self) -> None:
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    def _spawn(self, write: Coroutine[Any, Any, bool]) -> asyncio.Future[bool]:
        """Run a write to its end even if its caller is cancelled: abandoning one that
        may already be committed would leave the version we hold stale. ``stop`` waits
        for it."""
        future = asyncio.ensure_future(write)
        self._writes.add(future)
        future.add_done_callback(self._written)
        return future

    def _written(self, future: asyncio.Future[bool]) -> None:
        self._writes.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("task %s: a lease write failed", self.task.id, exc_info=future.exception())

    async def _beat(self) -> None:
        try:
            if self.unclaimed is not None:  # the claim is due first
                await asyncio.shield(self._spawn(self._write_claim()))
                if not self._over:
                    await self.clock.sleep(max(0.0, self.every - self.claim_after))
            while not self._over:  # started when the first extension is due
                await asyncio.shield(self._spawn(self._extend_once()))
                if not self._over:
                    await self.clock.sleep(self.every)
        finally:
            self._end()

    async def _write_progress(self) -> None:
        while self._pending is not None and not self._over:
            wait = self._next_progress_at - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep(wait)
            await asyncio.shield(self._spawn(self._write_pending()))

    async def _write_claim(self) -> bool:
        async with self._lock:
            return self.unclaimed is not None and not self._over and await self._write(self.task)

    async def _extend_once(self) -> bool:
        async with self._lock:
            if self._over:
                return False
            current = self.task
            if not await self._write(current.extend_lease(self.clock.now(), self.lease_seconds)):
                return False
        try:
            await self.queue.extend(self.delivery, visibility_timeout=self.lease_seconds)
        except InfrastructureError as exc:
            log.warning("visibility extension of task %s failed: %s", current.id, exc)
        return True

    async def _write_pending(self) -> bool:
        async with self._lock:
            progress, self._pending = self._pending, None
            if progress is None or self._over:
                return False
            self._next_progress_at = self.clock.monotonic() + self.progress_interval
            written = await self._write(self.task.report_progress(progress, self.clock.now()))
            if not written and self._pending is None and not self._over and not self._stopped:
                self._pending = progress  # not stored: tried again at the next slot
            return written

    async def _write(self, new: Task) -> bool:
        """Store ``new`` over the version held; False if it was not stored: the lease
        is lost or a cancel requested (the heartbeat ends), the task was changed by
        someone else (the fresh version is held from now on), or the store failed. An
        unwritten claim is written first (``new`` is ``task``: the claim itself)."""
        if self.unclaimed is not None and new is not self.task and not await self._write(self.task):
            return False
        current = self.unclaimed or self.task
        try:
            try:
                await self.repository.transition(new, expected=current)
            except (ConcurrencyConflict, TaskNotFound):
                fresh = await stored_attempt(self.repository, self.task)
                if fresh is None:
                    self.lost = True
                    self._end()
                    return False
                self.task, self.unclaimed = fresh, None
                if fresh.cancel_requested:
                    self.cancel_requested = True
                    self._end()
                return False
        except InfrastructureError as exc:
            log.warning("writing task %s (lease, progress) failed, will retry: %s", current.id, exc)
            return False
        self.task, self.unclaimed = new, None
        return True
