"""Processing one delivery: the heart of the worker.

The order of writes is what makes delivery safe:

1. claim: conditional PENDING -> PROCESSING (attempts + 1, a new lease token);
2. run the handler, extending the lease (queue and record) while it runs;
3. record the outcome conditionally on the claimed version, *then* ack or release.

A worker whose lease was lost fails at step 3's compare-and-set and does not touch the
message; a crash between 3 and the ack leads to a redelivery of a finished task, which
is acked and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from domain.errors import (
    ConcurrencyConflict,
    HandlerTimeout,
    InfrastructureError,
    PermanentTaskError,
    TaskNotFound,
    UnknownTaskType,
)
from domain.limits import result_too_large
from domain.models import Delivery, Task, TaskStatus, new_lease_token
from domain.ports import Clock, TaskQueue, TaskRepository
from domain.registry import HandlerRegistry, TaskType
from domain.retry import RetryPolicy

log = logging.getLogger("taskq.processing")

RESULT_WRITE_ATTEMPTS = 4
"""Tries to record a finished attempt (waiting 0.5, 1, 2 s between) before giving up
and letting the lease run out."""
MAX_RELEASE_SECONDS = 43200
"""A message's visibility can be changed to at most 12 hours (the SQS limit)."""


class Outcome(enum.StrEnum):
    COMPLETED = "completed"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    SKIPPED_FINISHED = "skipped_finished"
    DEFERRED = "deferred"  # another worker holds a live lease on the task
    LOST_LEASE = "lost_lease"
    POISON = "poison"  # undecodable body: dead-lettered
    ORPHAN = "orphan"  # no task with that id: acked and counted
    RELEASED = "released"  # shutdown: given back for immediate redelivery
    CANCELLED = "cancelled"  # cancelled while running, at the operator's request


@dataclass(frozen=True)
class ProcessorSettings:
    visibility_timeout: float = 30.0
    """The lease a claim takes, in seconds (the queue's visibility timeout)."""
    heartbeat_interval: float | None = None
    """How often a running task's lease is extended; default a third of the lease."""

    @property
    def heartbeat_every(self) -> float:
        return self.heartbeat_interval or max(0.05, self.visibility_timeout / 3)


class _LeaseLost(Exception):
    pass


class TaskProcessor:
    def __init__(
        self,
        repository: TaskRepository,
        queue: TaskQueue,
        clock: Clock,
        registry: HandlerRegistry,
        retry_policy: RetryPolicy,
        settings: ProcessorSettings | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.repository = repository
        self.queue = queue
        self.clock = clock
        self.registry = registry
        self.retry_policy = retry_policy
        self.settings = settings or ProcessorSettings()
        self.executor = executor
        self.outcomes: dict[Outcome, int] = dict.fromkeys(Outcome, 0)

    async def process(self, delivery: Delivery) -> Outcome:
        outcome = await self._process(delivery)
        self.outcomes[outcome] += 1
        return outcome

    async def _process(self, delivery: Delivery) -> Outcome:
        if delivery.task_id is None:
            log.warning("undecodable message %s dead-lettered", delivery.message_id)
            await self.queue.dead_letter(delivery, reason="undecodable message body")
            return Outcome.POISON
        try:
            task = await self.repository.get(delivery.task_id)
        except TaskNotFound:
            log.warning("message for unknown task %s acked", delivery.task_id)
            await self.queue.ack(delivery)
            return Outcome.ORPHAN

        now = self.clock.now()
        if task.status.is_final:
            await self.queue.ack(delivery)
            return Outcome.SKIPPED_FINISHED
        if task.status is TaskStatus.PROCESSING:
            if not task.lease_expired(now):
                assert task.lease_expires_at is not None
                remaining = (task.lease_expires_at - now).total_seconds()
                await self.queue.release(delivery, delay_seconds=max(1.0, remaining))
                return Outcome.DEFERRED
            if task.cancel_requested:  # its worker died before it saw the request
                return await self._record_cancel(task, delivery)
            if task.attempts >= task.max_attempts:
                return await self._fail_lost_worker(task, delivery)

        if task.status is TaskStatus.PENDING and task.run_at is not None and task.run_at > now:
            # Early (a re-send, or a hop of a long delay): wait on the queue until due.
            remaining = (task.run_at - now).total_seconds()
            await self.queue.release(delivery, delay_seconds=min(remaining, MAX_RELEASE_SECONDS))
            return Outcome.DEFERRED

        try:
            task_type = self.registry.get(task.type)
        except UnknownTaskType as exc:
            return await self._finish_failed(task, delivery, str(exc), claimed=False)

        try:
            claimed = await self._claim(task, now)
        except ConcurrencyConflict:
            # Someone else claimed or finished it first; their delivery owns it.
            return Outcome.DEFERRED
        return await self._run(claimed, task_type, delivery)

    async def _claim(self, task: Task, now: datetime) -> Task:
        token = new_lease_token()
        lease = self.settings.visibility_timeout
        claimed = task.claim(token, now, lease)
        if task.status is TaskStatus.PROCESSING:
            # A takeover: the previous holder's lease expired, so its attempt was lost.
            claimed = replace(
                claimed,
                retry_count=task.retry_count + 1,
                error=f"attempt {task.attempts} lost: lease expired (worker crashed or stalled)",
            )
        await self.repository.transition(claimed, expected=task)
        return claimed

    async def _fail_lost_worker(self, task: Task, delivery: Delivery) -> Outcome:
        reason = (
            f"attempt {task.attempts} of {task.max_attempts} lost: lease expired "
            "(the worker crashed or was killed while running this task)"
        )
        return await self._finish_failed(task, delivery, reason, claimed=True)

    async def _finish_failed(
        self, task: Task, delivery: Delivery, reason: str, *, claimed: bool
    ) -> Outcome:
        try:
            current = task
            if not claimed:
                current = task.claim(new_lease_token(), self.clock.now(), 0)
                await self.repository.transition(current, expected=task)
            failed = current.fail(reason, self.clock.now())
            await self.repository.transition(failed, expected=current)
        except ConcurrencyConflict:
            return Outcome.LOST_LEASE
        await self.queue.dead_letter(delivery, reason=reason)
        return Outcome.FAILED

    # -- running ---------------------------------------------------------------------

    async def _run(self, task: Task, task_type: TaskType, delivery: Delivery) -> Outcome:
        holder = _LeaseHolder(task)
        heartbeat = asyncio.ensure_future(self._heartbeat(holder, delivery))
        handler = asyncio.ensure_future(self._call(task_type, task))
        try:
            await asyncio.wait({handler, heartbeat}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Shutdown: give the attempt back so another worker starts it at once.
            handler.cancel()
            await asyncio.shield(self._stop_heartbeat(heartbeat, holder))
            await asyncio.shield(self._release(holder, delivery))
            raise
        if not handler.done():
            # The heartbeat ended first: a cancel request, or the lease was lost.
            handler.cancel()
            with contextlib.suppress(BaseException):
                await handler
        await self._stop_heartbeat(heartbeat, holder)
        if holder.cancel_requested:
            return await self._record_cancel(holder.task, delivery)
        if holder.lost or handler.cancelled():
            return Outcome.LOST_LEASE

        now = self.clock.now()
        current = holder.task
        exc = handler.exception() or result_too_large(handler.result())
        if exc is None:
            new = current.complete(handler.result(), now)
            outcome = Outcome.COMPLETED
        elif isinstance(exc, PermanentTaskError) or current.attempts >= current.max_attempts:
            new = current.fail(_describe(exc), now)
            outcome = Outcome.FAILED
        else:
            new = current.retry_later(_describe(exc), now)
            outcome = Outcome.RETRY_SCHEDULED
        if not await self._record(new, current, delivery):
            fresh = await self._still_ours(current)
            if fresh is not None and fresh.cancel_requested:
                return await self._record_cancel(fresh, delivery)
            return Outcome.LOST_LEASE
        return outcome

    async def _store(self, new: Task, expected: Task) -> bool:
        """Write an attempt's result, riding out a short store outage: a handler that
        ran to its end is not run again for want of one write. False if the lease is
        lost."""
        for attempt in range(RESULT_WRITE_ATTEMPTS):
            try:
                await self.repository.transition(new, expected=expected)
                return True
            except (ConcurrencyConflict, TaskNotFound):
                # A write whose answer was lost may have landed: then the stored task
                # is exactly ours.
                try:
                    return await self.repository.get(new.id) == new
                except (TaskNotFound, InfrastructureError):
                    return False
            except InfrastructureError as exc:
                if attempt == RESULT_WRITE_ATTEMPTS - 1:
                    raise
                log.warning("recording task %s failed, retrying: %s", new.id, exc)
                await self.clock.sleep(0.5 * 2**attempt)
        return False

    async def _still_ours(self, claimed: Task) -> Task | None:
        """The stored task if it is still the attempt we claimed (a cancel request
        changes its version but not its lease), else None."""
        try:
            stored = await self.repository.get(claimed.id)
        except TaskNotFound:
            return None
        if stored.status is TaskStatus.PROCESSING and stored.lease_token == claimed.lease_token:
            return stored
        return None

    async def _record_cancel(self, current: Task, delivery: Delivery) -> Outcome:
        try:
            await self.repository.transition(current.cancel(self.clock.now()), expected=current)
        except (ConcurrencyConflict, TaskNotFound):
            return Outcome.LOST_LEASE
        await self.queue.ack(delivery)
        return Outcome.CANCELLED

    async def _record(self, new: Task, expected: Task, delivery: Delivery) -> bool:
        """Store the attempt's result, then settle the message. False if the lease was lost."""
        if not await self._store(new, expected):
            log.info("task %s: lease lost before its result was recorded", new.id)
            return False
        if new.status is TaskStatus.COMPLETED:
            await self.queue.ack(delivery)
        elif new.status is TaskStatus.FAILED:
            await self.queue.dead_letter(delivery, reason=new.error or "failed")
        else:
            delay = self.retry_policy.backoff(new.retry_count)
            await self.queue.release(delivery, delay_seconds=delay)
        return True

    async def _call(self, task_type: TaskType, task: Task) -> Any:
        timeout = task.timeout_seconds or task_type.timeout_seconds
        if task_type.is_async:
            work: Any = task_type.handler(task.payload)
        else:
            loop = asyncio.get_running_loop()
            work = loop.run_in_executor(self.executor, task_type.handler, task.payload)
        try:
            return await asyncio.wait_for(work, timeout)
        except TimeoutError:
            raise HandlerTimeout(f"{task_type.name} timed out after {timeout:g}s") from None

    async def _heartbeat(self, holder: _LeaseHolder, delivery: Delivery) -> None:
        """Extend the lease until cancelled; return when the lease is lost or the task's
        cancellation is requested (``holder`` says which)."""
        while True:
            await self.clock.sleep(self.settings.heartbeat_every)
            # The write runs shielded: cancelling the heartbeat (the handler ended)
            # must not abandon a lease extension that may already be committed, or the
            # version we hold would be stale. _stop_heartbeat waits for it.
            holder.extending = asyncio.ensure_future(self._extend_once(holder, delivery))
            if not await asyncio.shield(holder.extending):
                return

    async def _extend_once(self, holder: _LeaseHolder, delivery: Delivery) -> bool:
        lease = self.settings.visibility_timeout
        current = holder.task
        extended = current.extend_lease(self.clock.now(), lease)
        try:
            try:
                await self.repository.transition(extended, expected=current)
            except (ConcurrencyConflict, TaskNotFound):
                fresh = await self._still_ours(current)
                if fresh is None:
                    holder.lost = True
                    return False
                holder.task = fresh
                if fresh.cancel_requested:
                    holder.cancel_requested = True
                    return False
                return True  # changed by something else; extend from the fresh version next
        except InfrastructureError as exc:
            log.warning("lease extension of task %s failed, will retry: %s", current.id, exc)
            return True
        holder.task = extended
        try:
            await self.queue.extend(delivery, visibility_timeout=lease)
        except InfrastructureError as exc:
            log.warning("visibility extension of task %s failed: %s", current.id, exc)
        return True

    @staticmethod
    async def _stop_heartbeat(heartbeat: asyncio.Future[None], holder: _LeaseHolder) -> None:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        if holder.extending is not None:
            with contextlib.suppress(Exception):
                await holder.extending

    async def _release(self, holder: _LeaseHolder, delivery: Delivery) -> None:
        current = holder.task
        if current.cancel_requested:
            await self._record_cancel(current, delivery)
            return
        with contextlib.suppress(ConcurrencyConflict, TaskNotFound):
            await self.repository.transition(current.release(self.clock.now()), expected=current)
        await self.queue.release(delivery, delay_seconds=0)


class _LeaseHolder:
    """The latest stored version of a running task (heartbeats bump it)."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.cancel_requested = False
        self.lost = False
        self.extending: asyncio.Future[bool] | None = None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
