"""The worker's side of flow control: may this delivery's task start now?

``FlowGate.admission`` is entered just before a claim. For a type without limits that
is not paused it answers at once from this process's copy of the types' run-time
settings (read again once it is ``refresh_seconds`` old): no store call per delivery.
Otherwise it takes the type's permit and token by compare-and-set on its flow record
(domain/flow_control.py has the rules), holds the permit while the task runs (extended
with the lease) and gives it back after the outcome is written.

A refused delivery is deferred: a new message is sent with a short, jittered delay and
the delivered one acknowledged. So the deferral spends no attempt (nothing was claimed)
and no receive of the message toward the queue's ``maxReceiveCount`` (a new message
starts at none): a type paused for a day loses nothing, and its slots go to other
types at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from domain.coordination_ports import FlowControlStore
from domain.errors import FlowRecordConflict, InfrastructureError
from domain.flow_control import (
    CONCURRENCY_RECHECK_SECONDS,
    Admitted,
    FlowLimits,
    FlowRecord,
    Refused,
    admit,
    defer_seconds,
    extend,
    release,
)
from domain.limits import (
    DEFER_PHASE_SECONDS,
    FLOW_REFRESH_SECONDS,
    FLOW_WRITE_ATTEMPTS,
    PAUSED_RECHECK_SECONDS,
)
from domain.models import Delivery, Task
from domain.ports import Clock, TaskQueue
from domain.task_types import HandlerRegistry

log = logging.getLogger("taskq.flow")

RACE_PAUSE_SECONDS = 0.01
"""The most a lost compare-and-set waits (at random) before it reads again."""


class Admissions(Protocol):
    """What ``TaskProcessor`` asks before a claim."""

    def admission(self, task: Task, delivery: Delivery) -> AbstractAsyncContextManager[bool]:
        """True inside: claim and run the task, its permit held until the block ends.
        False: the delivery was deferred (already re-sent and acknowledged)."""
        ...

    async def all_free(self) -> bool:
        """True when no task type has a limit or a pause: a delivery may be claimed
        before its task (and so its type) is read."""
        ...

    async def free(self, task_type: str) -> bool:
        """True when ``task_type`` has no limit and no pause: a task of it needs no
        admission, and may run before its claim is written (claim at finish)."""
        ...


class OpenGate:
    """Admits every task: a processor without flow control."""

    @asynccontextmanager
    async def admission(self, task: Task, delivery: Delivery) -> AsyncIterator[bool]:
        yield True

    async def all_free(self) -> bool:
        return True

    async def free(self, task_type: str) -> bool:
        return True


@dataclass(eq=False)
class FlowGate:
    store: FlowControlStore
    queue: TaskQueue
    clock: Clock
    task_types: HandlerRegistry
    """Where each type's decorator limits (its defaults) come from."""
    refresh_seconds: float = FLOW_REFRESH_SECONDS
    permit_seconds: float = 30.0
    """How long a permit lasts unless extended: the lease (visibility timeout)."""
    extend_every: float = 10.0
    """How often a held permit is extended: the lease's heartbeat."""
    jitter: Callable[[], float] = random.random
    deferred: Counter[tuple[str, str]] = field(init=False, default_factory=Counter)
    """Deferrals by (type, reason) in this process."""
    _records: dict[str, FlowRecord] = field(init=False, default_factory=dict)
    _read_at: float | None = field(init=False, default=None)
    _reading: asyncio.Future[None] | None = field(init=False, default=None)
    _later: set[asyncio.Future[None]] = field(init=False, default_factory=set)
    _all_free: tuple[int, bool] | None = field(init=False, default=None)
    """How many types there were, and whether none had a limit or a pause, as the
    records last read or stored say (None: to be worked out again)."""
    _writing: dict[str, asyncio.Lock] = field(init=False, default_factory=dict)
    """One compare-and-set at a time per type in this process: its own deliveries do
    not race each other (only other processes' do)."""

    # -- the types' settings, as this process knows them ------------------------------

    def limits_of(self, task_type: str, record: FlowRecord | None = None) -> FlowLimits:
        """The type's limits: its decorator's, changed by the record's overrides (by
        default the record this process last saw)."""
        record = record or self._records.get(task_type)
        defaults = self.task_types.flow_limits(task_type)
        return defaults if record is None else defaults.changed(record.overrides)

    def remember(self, record: FlowRecord) -> None:
        """A record this process just stored or read: in effect here at once."""
        known = self._records.get(record.task_type)
        if known is None or known.version <= record.version:
            self._records[record.task_type] = record
            self._all_free = None

    def records(self) -> dict[str, FlowRecord]:
        return dict(self._records)

    async def refresh(self, *, force: bool = False) -> None:
        """Read every record again if this process's copy is ``refresh_seconds`` old
        (or ``force``); concurrent callers share one read."""
        now = self.clock.monotonic()
        if not force and self._read_at is not None and now - self._read_at < self.refresh_seconds:
            return
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())
        await asyncio.shield(self._reading)

    async def _read(self) -> None:
        try:
            found = await self.store.all()
        except InfrastructureError as exc:
            log.warning("reading the task types' flow settings failed: %s", exc)
        else:
            self._records = {r.task_type: r for r in found}
            self._all_free = None
        self._read_at = self.clock.monotonic()

    # -- admission --------------------------------------------------------------------

    async def all_free(self) -> bool:
        """Worked out once per read of the records, not for every delivery."""
        await self.refresh()
        known = len(self.task_types)
        if self._all_free is None or self._all_free[0] != known:
            names = {*self.task_types.names(), *self._records}
            self._all_free = (known, all(self.limits_of(name).free for name in names))
        return self._all_free[1]

    async def free(self, task_type: str) -> bool:
        await self.refresh()
        return self.limits_of(task_type).free

    @asynccontextmanager
    async def admission(self, task: Task, delivery: Delivery) -> AsyncIterator[bool]:
        await self.refresh()
        limits = self.limits_of(task.type)
        if limits.free:
            yield True
            return
        if limits.paused:  # known here: no store call
            decision: Admitted | Refused = Refused("paused", PAUSED_RECHECK_SECONDS)
        else:
            decision = await self._take(task)
        if isinstance(decision, Refused):
            await self._defer(task, delivery, decision)
            yield False
            return
        if not decision.holds_permit:
            yield True
            return
        keeper = asyncio.ensure_future(self._keep(task.type, task.id))
        try:
            yield True
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await asyncio.shield(self._give_back(task.type, task.id))

    def _lock(self, task_type: str) -> asyncio.Lock:
        return self._writing.setdefault(task_type, asyncio.Lock())

    async def _take(self, task: Task) -> Admitted | Refused:
        async with self._lock(task.type):
            return await self._take_unlocked(task)

    async def _take_unlocked(self, task: Task) -> Admitted | Refused:
        """A start of ``task`` taken from its type's record, or why not."""
        for _ in range(FLOW_WRITE_ATTEMPTS):
            record = await self.store.get(task.type) or FlowRecord(task.type)
            limits = self.limits_of(task.type, record)
            now = self.clock.now().timestamp()
            decision = admit(record, limits, task.id, now, self.permit_seconds)
            if isinstance(decision, Refused):
                self.remember(record)
                return decision
            try:
                self.remember(await self.store.put(decision.record))
            except FlowRecordConflict:
                await asyncio.sleep(self.jitter() * RACE_PAUSE_SECONDS)
                continue
            return decision
        return Refused("contention", CONCURRENCY_RECHECK_SECONDS)

    async def _defer(self, task: Task, delivery: Delivery, refused: Refused) -> None:
        """Re-send the task's message with a short jittered delay, then acknowledge the
        delivered one (a crash between the two leaves two messages: the claim is a
        compare-and-set, so the task still runs once). Both happen after a random
        pause below a second, in the background: the slot is free at once."""
        delay = defer_seconds(refused.wait_seconds, self.jitter())
        pause = self.jitter() * DEFER_PHASE_SECONDS
        self.deferred[(task.type, refused.reason)] += 1
        log.debug("task %s deferred %ds (%s)", task.id, delay, refused.reason)
        if pause <= 0:
            await self._resend(task, delivery, delay, pause)
            return
        later = asyncio.ensure_future(self._resend(task, delivery, delay, pause))
        self._later.add(later)
        later.add_done_callback(self._later.discard)

    async def _resend(self, task: Task, delivery: Delivery, delay: int, pause: float) -> None:
        try:
            await self.clock.sleep(pause)
            await self.queue.send(task.id, delay_seconds=delay, priority=task.priority)
            await self.queue.ack(delivery)
        except InfrastructureError as exc:  # the message comes back after its lease
            log.warning("deferring task %s failed: %s", task.id, exc)

    async def _change(
        self, task_type: str, edit: Callable[[FlowRecord], FlowRecord | None]
    ) -> None:
        """Apply ``edit`` to the stored record by compare-and-set (None: nothing to
        write). Failures are logged: an unreturned permit expires with its lease."""
        try:
            async with self._lock(task_type):
                await self._change_unlocked(task_type, edit)
        except InfrastructureError as exc:
            log.warning("flow record of %r not written (its permit expires): %s", task_type, exc)

    async def _change_unlocked(
        self, task_type: str, edit: Callable[[FlowRecord], FlowRecord | None]
    ) -> None:
        for _ in range(FLOW_WRITE_ATTEMPTS):
            record = await self.store.get(task_type)
            new = None if record is None else edit(record)
            if new is None:
                return
            try:
                self.remember(await self.store.put(new))
                return
            except FlowRecordConflict:
                await asyncio.sleep(self.jitter() * RACE_PAUSE_SECONDS)

    async def _keep(self, task_type: str, task_id: str) -> None:
        """Extend the permit with the lease, while the task runs."""
        while True:
            await self.clock.sleep(self.extend_every)
            until = self.clock.now().timestamp() + self.permit_seconds
            await self._change(task_type, functools.partial(extend, task_id=task_id, until=until))

    async def _give_back(self, task_type: str, task_id: str) -> None:
        def drop(record: FlowRecord) -> FlowRecord | None:
            if task_id not in record.permits:
                return None
            return release(record, task_id, self.clock.now().timestamp())

        await self._change(task_type, drop)
