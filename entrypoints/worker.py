"""The worker runner: keeps ``concurrency`` deliveries in flight.

It receives only as many messages as it has free slots (so no prefetched message sits
unleased past its visibility timeout), long-polls when idle instead of sleeping, and on
stop: stops receiving, lets in-flight tasks finish within the grace period, then cancels
the rest, which the processor releases for immediate redelivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from domain.errors import InfrastructureError
from domain.limits import MAX_LONG_POLL_SECONDS
from domain.models import Delivery, WorkerInfo
from domain.ports import Clock, TaskQueue, WorkerRegistry
from domain.processing import TaskProcessor
from domain.reconcile import Reconciler
from domain.scheduler import Scheduler
from entrypoints.worker_first import WorkerFirst

log = logging.getLogger("taskq.worker")

RECEIVE_ERROR_BACKOFF_MAX = 10.0


@dataclass(frozen=True)
class WorkerSettings:
    concurrency: int = 5
    visibility_timeout: float = 30.0
    poll_wait_seconds: float = float(MAX_LONG_POLL_SECONDS)
    shutdown_grace_seconds: float = 30.0
    worker_ttl_seconds: float = 30.0
    """How long this worker stays listed among the live workers after its last beat;
    it beats every third of that."""
    reconcile_interval_seconds: float = 60.0
    receive_pace_seconds: float = 0.0
    """While receives bring some messages but not a full batch, the next one waits this
    long after the last, so messages gather into fewer receives (a request each, billed
    on SQS); after a receive that found nothing, the worker long-polls at once, so a lone
    task starts at once. 0: receive as soon as a slot frees."""
    cancel_wait_seconds: float = 10.0
    """After the grace, how long the cancelled attempts get to end: a handler that
    swallows its cancel does not hold the shutdown beyond this (its task comes back
    when its lease expires)."""


@dataclass(eq=False)
class Worker:
    processor: TaskProcessor
    queue: TaskQueue
    workers: WorkerRegistry
    """Where this worker beats while it runs, and is removed from when it stops."""
    clock: Clock
    settings: WorkerSettings
    reconciler: Reconciler | None = None
    """Run every ``settings.reconcile_interval_seconds`` alongside, when given."""
    first: WorkerFirst | None = None
    """Shared with the API on the same event loop: it waits while this worker is behind."""
    scheduler: Scheduler | None = None
    """Submits the periodic schedules' tasks alongside, when given."""
    worker_id: str = field(
        init=False,
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}",
    )
    started_at: datetime = field(init=False)
    _in_flight: set[asyncio.Task[object]] = field(init=False, default_factory=set)
    _slot_freed: asyncio.Future[None] | None = field(init=False, default=None)
    _backlog: bool = field(init=False, default=False)
    """The last receive came back full: the next one tries without waiting first."""
    _received_at: float = field(init=False, default=0.0)
    """When the last receive returned (the event loop's clock), for the pace."""
    _received_short: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.started_at = self.clock.now()
        self.processor.worker_id = self.processor.worker_id or self.worker_id  # its events

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker %s started: concurrency %d", self.worker_id, self.settings.concurrency)
        background = [asyncio.create_task(self._beat_until(stop))]
        if self.reconciler is not None:
            background.append(asyncio.create_task(self._reconcile_until(stop, self.reconciler)))
        if self.scheduler is not None:
            background.append(asyncio.create_task(self.scheduler.run(stop)))
        try:
            await self._receive_until(stop)
        finally:
            await self._drain()
            for job in background:
                job.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            with contextlib.suppress(InfrastructureError):
                await self.workers.remove(self.worker_id)
            log.info("worker %s stopped", self.worker_id)

    async def _receive_until(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        stopping.add_done_callback(self._wake)
        error_backoff = 0.5
        try:
            while not stop.is_set():
                free = self.settings.concurrency - len(self._in_flight)
                if free <= 0:
                    if self.first is not None:
                        self.first.full()
                    # One future that a finishing delivery (or stop) resolves: not a
                    # wait on every delivery in flight, each time a slot frees.
                    self._slot_freed = asyncio.get_running_loop().create_future()
                    await self._slot_freed
                    continue
                asked = min(free, self.queue.max_batch)
                await self._pace(stop)
                try:
                    deliveries = await self._receive(asked, stopping)
                except InfrastructureError as exc:
                    log.warning("receive failed, retrying in %.1fs: %s", error_backoff, exc)
                    await self._sleep_unless(stop, error_backoff)
                    error_backoff = min(RECEIVE_ERROR_BACKOFF_MAX, error_backoff * 2)
                    continue
                if deliveries is None:
                    break
                self._received_at = asyncio.get_running_loop().time()
                self._received_short = 0 < len(deliveries) < asked
                error_backoff = 0.5
                if self.first is not None:
                    self.first.taken(len(deliveries), asked)
                if stop.is_set():
                    await self._give_back(deliveries)
                    break
                for delivery in deliveries:
                    self._start(delivery)
        finally:
            stopping.cancel()

    async def _receive(self, asked: int, stopping: asyncio.Task[object]) -> list[Delivery] | None:
        """Up to ``asked`` deliveries; None if ``stopping`` ended the wait. While the last
        receive came back full (a backlog), a receive that does not wait comes first:
        it needs no task to be interruptible by stop."""
        receive = self.queue.receive
        timeout = self.settings.visibility_timeout
        if self._backlog:
            deliveries = await receive(
                max_messages=asked, visibility_timeout=timeout, wait_seconds=0
            )
            self._backlog = len(deliveries) == asked
            if deliveries:
                return deliveries
        receiving = asyncio.create_task(
            receive(
                max_messages=asked,
                visibility_timeout=timeout,
                wait_seconds=self.settings.poll_wait_seconds,
            )
        )
        await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not receiving.done():
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiving
        if receiving.cancelled():
            return None
        deliveries = receiving.result()
        self._backlog = len(deliveries) == asked
        return deliveries

    async def _pace(self, stop: asyncio.Event) -> None:
        """Space a receive ``receive_pace_seconds`` after the last one while that one
        brought some messages but not a full batch. After a receive that found nothing
        (an idle worker) or a full one (a backlog), receive at once."""
        pace = self.settings.receive_pace_seconds
        if pace and self._received_short:
            left = self._received_at + pace - asyncio.get_running_loop().time()
            if left > 0:
                await self._sleep_unless(stop, left)

    def _start(self, delivery: Delivery) -> None:
        task = asyncio.create_task(self._process(delivery))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._in_flight.discard(task)
        if self.first is not None:
            self.first.finished()
        self._wake()

    def _wake(self, _: object = None) -> None:
        waiter = self._slot_freed
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _process(self, delivery: Delivery) -> object:
        try:
            return await self.processor.process(delivery)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The delivery is not settled: it reappears when its lease expires.
            log.exception("processing message %s failed", delivery.message_id)
            return None

    async def _give_back(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            with contextlib.suppress(InfrastructureError):
                await self.queue.release(delivery, delay_seconds=0)

    async def _drain(self) -> None:
        if not self._in_flight:
            return
        pending = set(self._in_flight)
        log.info(
            "waiting up to %.1fs for %d in-flight tasks",
            self.settings.shutdown_grace_seconds,
            len(pending),
        )
        _, still_running = await asyncio.wait(pending, timeout=self.settings.shutdown_grace_seconds)
        if still_running:
            log.warning("releasing %d unfinished tasks for redelivery", len(still_running))
            for task in still_running:
                task.cancel()
            _, stuck = await asyncio.wait(still_running, timeout=self.settings.cancel_wait_seconds)
            if stuck:
                log.error(
                    "%d handlers ignored their cancel; their tasks come back when their "
                    "lease expires",
                    len(stuck),
                )

    async def _beat_until(self, stop: asyncio.Event) -> None:
        interval = self.settings.worker_ttl_seconds / 3
        while not stop.is_set():
            info = WorkerInfo(
                worker_id=self.worker_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                concurrency=self.settings.concurrency,
                in_flight=len(self._in_flight),
                started_at=self.started_at,
                last_seen=self.clock.now(),
                heartbeat_seconds=interval,
            )
            try:
                await self.workers.beat(info, ttl_seconds=self.settings.worker_ttl_seconds)
            except InfrastructureError as exc:
                log.warning("worker heartbeat failed: %s", exc)
            await self._sleep_unless(stop, interval)

    async def _reconcile_until(self, stop: asyncio.Event, reconciler: Reconciler) -> None:
        while not stop.is_set():
            await self._sleep_unless(stop, self.settings.reconcile_interval_seconds)
            if stop.is_set():
                return
            try:
                await reconciler.run_once()
            except InfrastructureError as exc:
                log.warning("reconciler run failed: %s", exc)

    @staticmethod
    async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
