"""Keeping a running attempt's lease: the heartbeat.

While a handler runs, its lease is extended every ``every`` seconds, in the store
(compare-and-set on the version held) and on the queue (the message's visibility). The
keeper follows the stored version: a write by someone else (a cancel request) is read
back and, if the attempt is still ours, extended from. The heartbeat ends by itself when
the lease is lost or a cancel is requested; ``lost`` and ``cancel_requested`` say which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from domain.errors import ConcurrencyConflict, InfrastructureError, TaskNotFound
from domain.models import Delivery, Task, TaskStatus
from domain.ports import Clock, TaskQueue, TaskRepository

log = logging.getLogger("taskq.processing")


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
    """The heartbeat of one attempt, and the latest stored version of its task."""

    task: Task
    """The latest stored version of the running task (each extension bumps it)."""
    delivery: Delivery
    repository: TaskRepository
    queue: TaskQueue
    clock: Clock
    lease_seconds: float
    every: float
    """Seconds between extensions."""
    cancel_requested: bool = field(default=False, init=False)
    lost: bool = field(default=False, init=False)
    _extending: asyncio.Future[bool] | None = field(default=None, init=False)
    _beating: asyncio.Future[None] | None = field(default=None, init=False)

    def start(self) -> asyncio.Future[None]:
        """Start the heartbeat; the future ends when the lease is lost or a cancel is
        requested."""
        self._beating = asyncio.ensure_future(self._beat())
        return self._beating

    async def stop(self) -> None:
        """Stop the heartbeat, and wait for an extension already under way."""
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
        if self._extending is not None:
            with contextlib.suppress(Exception):
                await self._extending

    async def _beat(self) -> None:
        while True:
            await self.clock.sleep(self.every)
            # The write runs shielded: cancelling the heartbeat (the handler ended)
            # must not abandon a lease extension that may already be committed, or the
            # version we hold would be stale. stop() waits for it.
            self._extending = asyncio.ensure_future(self._extend_once())
            if not await asyncio.shield(self._extending):
                return

    async def _extend_once(self) -> bool:
        current = self.task
        extended = current.extend_lease(self.clock.now(), self.lease_seconds)
        try:
            try:
                await self.repository.transition(extended, expected=current)
            except (ConcurrencyConflict, TaskNotFound):
                fresh = await stored_attempt(self.repository, current)
                if fresh is None:
                    self.lost = True
                    return False
                self.task = fresh
                if fresh.cancel_requested:
                    self.cancel_requested = True
                    return False
                return True  # changed by something else; extend from the fresh version next
        except InfrastructureError as exc:
            log.warning("lease extension of task %s failed, will retry: %s", current.id, exc)
            return True
        self.task = extended
        try:
            await self.queue.extend(self.delivery, visibility_timeout=self.lease_seconds)
        except InfrastructureError as exc:
            log.warning("visibility extension of task %s failed: %s", current.id, exc)
        return True
