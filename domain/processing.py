"""Processing one delivery: the heart of the worker.

The order of writes is what makes delivery safe:

1. claim: conditional PENDING -> PROCESSING (attempts + 1, a new lease token);
2. run the handler, extending the lease (queue and record) while it runs;
3. record the outcome conditionally on the claimed version, *then* ack or release.

A worker whose lease was lost fails at step 3's compare-and-set and does not touch the
message; a crash between 3 and the ack leads to a redelivery of a finished task, which
is acked and skipped. A first delivery's short attempt may skip step 1's write and store
its outcome over the PENDING task in one write (``domain/claim_at_finish.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, assert_never

from domain import delivery_rules as rules
from domain.attempt import AttemptRun
from domain.claim_at_finish import (
    give_back_unclaimed,
    isolate_if_lost,
    runs_unclaimed,
    settle_unstored,
)
from domain.claiming import OneWriteClaims, claim_in_one_write
from domain.errors import (
    ConcurrencyConflict,
    HandlerTimeout,
    PermanentTaskError,
    TaskNotFound,
    UnknownTaskType,
)
from domain.events import NO_EVENTS, TaskEventKind, TaskEvents, new_event
from domain.flow_gate import Admissions, OpenGate
from domain.handler_call import call_handler, describe_traceback
from domain.lease import LeaseKeeper, store_outcome, stored_attempt
from domain.limits import result_too_large
from domain.models import Delivery, Task, TaskStatus, new_lease_token
from domain.ports import Clock, HandlerSandbox, TaskQueue, TaskRepository, Tracer
from domain.processor_settings import ProcessorSettings as ProcessorSettings
from domain.retry import RetryPolicy
from domain.run_context import RunContext
from domain.task_types import HandlerRegistry, TaskType
from domain.tracing import NoTracer

log = logging.getLogger("taskq.processing")

ROW_RECHECK_SECONDS = (0.05, 0.2)
"""Pauses before looking again for the task of a message that arrived before its row
(the send precedes the write by milliseconds), before giving the message back."""


class Outcome(enum.StrEnum):
    COMPLETED = "completed"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    SKIPPED_FINISHED = "skipped_finished"
    DEFERRED = "deferred"  # another worker holds a live lease on the task
    LOST_LEASE = "lost_lease"
    POISON = "poison"  # undecodable body: dead-lettered
    ORPHAN = "orphan"  # no task with that id after the grace: acked and counted
    AWAITING_TASK = "awaiting_task"  # no task with that id yet: released, looked at again
    RELEASED = "released"  # shutdown: given back for immediate redelivery
    CANCELLED = "cancelled"  # cancelled while running, at the operator's request
    THROTTLED = "throttled"  # its type over a limit, or paused: re-sent for later


@dataclass(eq=False)
class TaskProcessor:
    repository: TaskRepository
    queue: TaskQueue
    clock: Clock
    task_types: HandlerRegistry
    """The handlers of the task types this worker runs."""
    retry_policy: RetryPolicy
    settings: ProcessorSettings = field(default_factory=ProcessorSettings)
    executor: Executor | None = None
    """Where sync handlers run; None: the event loop's default executor."""
    sandbox: HandlerSandbox | None = None
    """Runs the attempts of isolated tasks; without one they run in this process."""
    stoppable: HandlerSandbox | None = None
    """Runs the handlers of ``stoppable`` task types in processes it terminates at the
    timeout or on cancel (None: ``sandbox`` does, a fresh process per call)."""
    tracer: Tracer = field(default_factory=NoTracer)
    """Puts each handler call in a span, a child of the task's submission."""
    events: TaskEvents = NO_EVENTS
    """Where what happens to tasks is recorded (metrics, logs)."""
    worker_id: str | None = None
    """Named in the events this processor records (the worker running it)."""
    flow: Admissions = field(default_factory=OpenGate)  # the type's limits, before a claim
    outcomes: dict[Outcome, int] = field(
        init=False, default_factory=lambda: dict.fromkeys(Outcome, 0)
    )
    """How many deliveries ended in each outcome."""
    _one_write: OneWriteClaims = field(init=False, default_factory=OneWriteClaims)

    def _emit(
        self, kind: TaskEventKind, task: Task, at: datetime | None = None, **details: Any
    ) -> None:
        """Record ``kind`` of ``task`` at ``at`` (None: now; a change just made: its
        ``updated_at``, the clock read once)."""
        at = at or self.clock.now()
        self.events.record(new_event(kind, task, at, self.worker_id, **details))

    async def process(self, delivery: Delivery) -> Outcome:
        outcome = await self._process(delivery)
        self.outcomes[outcome] += 1
        return outcome

    async def _process(self, delivery: Delivery) -> Outcome:
        if self.settings.claim_delay_seconds > 0:  # read, then decide
            # Claim at finish where free: a first run may start before its claim.
            return await self._handle(await self._load(delivery), delivery, unclaimed=True)
        if not await self.flow.all_free():  # a type's limit to check before a claim
            return await self._handle(await self._load(delivery), delivery)
        now = self.clock.now()
        claims = self._one_write.of(self.repository)
        lease = self.settings.visibility_timeout
        claimed = await claim_in_one_write(claims, delivery, now=now, lease_seconds=lease)
        if claimed is not None:  # the common case, without a read first
            return await self._started(claimed, delivery)
        return await self._handle(await self._load(delivery), delivery)

    async def _load(self, delivery: Delivery) -> Task | None:
        """The task the message names; None if the body names none or it is not stored."""
        if delivery.task_id is None:
            return None
        try:
            return await self.repository.get(delivery.task_id)
        except TaskNotFound:
            return None

    async def _handle(
        self, task: Task | None, delivery: Delivery, *, unclaimed: bool = False
    ) -> Outcome:
        """Decide what happens to ``delivery`` of ``task`` (domain/delivery_rules.py has
        the table), and do it; ``unclaimed``: a run may start before its claim."""
        now = self.clock.now()
        if (
            unclaimed
            and runs_unclaimed(
                task, delivery, now, self.task_types, self.settings.visibility_timeout
            )
            and await self.flow.free(task.type)
        ):
            return await self._started(self._claim(task, now), delivery, task)
        action = rules.decide(task, delivery, now, self.task_types)
        if isinstance(action, rules.DeadLetterPoison):
            log.warning("undecodable message %s dead-lettered", delivery.message_id)
            await self.queue.dead_letter(delivery, reason="undecodable message body")
            return Outcome.POISON
        if isinstance(action, rules.AckOrphan):
            return await self._orphan(delivery, unclaimed)
        assert task is not None  # every other action is about a stored task
        return await self._carry_out(action, task, delivery, now)

    async def _orphan(self, delivery: Delivery, unclaimed: bool) -> Outcome:
        """The message names a task that is not stored. A message is sent before its
        task is stored, so it can arrive before the row, or outlive a store that
        failed. On its first receive, look again after a moment; then give the message
        back, to come again after 1, 2, 4... seconds, until it has waited
        ``orphan_grace_seconds`` in all (counted by its receives, so no other host's
        clock is trusted); only then is it acked as an orphan."""
        assert delivery.task_id is not None
        for pause in ROW_RECHECK_SECONDS if delivery.receive_count == 1 else ():
            await self.clock.sleep(pause)
            try:
                found = await self.repository.get(delivery.task_id)
            except TaskNotFound:
                continue
            return await self._handle(found, delivery, unclaimed=unclaimed)
        grace = self.settings.orphan_grace_seconds
        waited = 2.0 ** (delivery.receive_count - 1) - 1  # released 1, 2, 4... s so far
        if waited >= grace:
            log.warning("message for unknown task %s acked after %gs", delivery.task_id, waited)
            await self.queue.ack(delivery)
            return Outcome.ORPHAN
        delay = min(2.0 ** (delivery.receive_count - 1), grace - waited)
        await self.queue.release(delivery, delay_seconds=delay)
        return Outcome.AWAITING_TASK

    async def _carry_out(
        self, action: rules.TaskAction, task: Task, delivery: Delivery, now: datetime
    ) -> Outcome:
        match action:
            case rules.AckFinished():
                await self.queue.ack(delivery)
                return Outcome.SKIPPED_FINISHED
            case rules.Defer(delay_seconds=delay) | rules.WaitUntilDue(delay_seconds=delay):
                await self.queue.release(delivery, delay_seconds=delay)
                return Outcome.DEFERRED
            case rules.RecordCancel():  # asked before its worker died
                cancelled = task.settle_lost_attempt(now)
                if not await self._first_write(cancelled, task):
                    return Outcome.DEFERRED
                await self.queue.ack(delivery)
                self._emit(TaskEventKind.CANCELLED, cancelled)
                return Outcome.CANCELLED
            case rules.FailLostAttempt():  # its last attempt was lost
                failed = task.settle_lost_attempt(now)
                if not await self._first_write(failed, task):
                    return Outcome.DEFERRED
                await self.queue.dead_letter(delivery, reason=failed.error or "failed")
                self._failed(failed, None)
                return Outcome.FAILED
            case rules.FailUnknownType():
                claimed = self._claim(task, now)
                if not await self._first_write(claimed, task):
                    return Outcome.DEFERRED
                return await self._fail_unknown_type(claimed, delivery)
            case rules.Claim() | rules.TakeOver():
                async with self.flow.admission(task, delivery) as admitted:
                    if not admitted:
                        return Outcome.THROTTLED
                    delay = self.settings.claim_delay_seconds
                    claimed = isolate_if_lost(self._claim(task, now), task, delivery, delay)
                    if not await self._first_write(claimed, task):
                        return Outcome.DEFERRED
                    return await self._started(claimed, delivery)
            case _:
                assert_never(action)

    def _claim(self, task: Task, now: datetime) -> Task:
        """A new attempt at ``task``: a claim of a PENDING task, or a takeover of one
        whose lease expired (its lost attempt settled in the same write)."""
        token = new_lease_token()
        lease = self.settings.visibility_timeout
        if task.status is TaskStatus.PROCESSING:
            return task.take_over(token, now, lease)
        return task.claim(token, now, lease)

    async def _first_write(self, new: Task, expected: Task) -> bool:
        """Store this delivery's first change to the task; False if someone else
        claimed or finished it first (their delivery owns it)."""
        try:
            await self.repository.transition(new, expected=expected)
        except ConcurrencyConflict:
            return False
        return True

    async def _started(
        self, claimed: Task, delivery: Delivery, unclaimed: Task | None = None
    ) -> Outcome:
        """Run the attempt just claimed, or fail it when no handler has its type.
        ``unclaimed``: the stored PENDING version, the claim not written yet."""
        if claimed.type not in self.task_types:
            return await self._fail_unknown_type(claimed, delivery)
        self._emit(TaskEventKind.STARTED, claimed, claimed.updated_at)
        return await self._run(claimed, self.task_types.get(claimed.type), delivery, unclaimed)

    async def _fail_unknown_type(self, claimed: Task, delivery: Delivery) -> Outcome:
        """No handler for the task's type: it fails (one attempt) rather than loop."""
        reason = str(UnknownTaskType(claimed.type, self.task_types.names()))
        try:
            failed = claimed.fail(reason, self.clock.now())
            await self.repository.transition(failed, expected=claimed)
        except (ConcurrencyConflict, TaskNotFound):
            return Outcome.LOST_LEASE
        await self.queue.dead_letter(delivery, reason=reason)
        self._failed(failed, None)
        return Outcome.FAILED

    # -- running ---------------------------------------------------------------------

    async def _run(
        self, task: Task, task_type: TaskType, delivery: Delivery, unclaimed: Task | None
    ) -> Outcome:
        lease = LeaseKeeper(
            task=task,
            delivery=delivery,
            repository=self.repository,
            queue=self.queue,
            clock=self.clock,
            lease_seconds=self.settings.visibility_timeout,
            every=self.settings.heartbeat_every,
            progress_interval=self.settings.progress_interval,
            unclaimed=unclaimed,
            claim_after=self.settings.claim_after,
        )
        context = self._context(task, task_type, lease)
        run = AttemptRun(lease, context, self.clock, self.settings.cancel_grace_seconds)
        try:  # the handler runs in this task, stopped if the heartbeat ends first
            handler = await run.run(self._call(task_type, task, context))
        except asyncio.CancelledError:
            # Shutdown: give the attempt back so another worker starts it at once
            # (an isolated handler's process is stopped on cancel).
            await asyncio.shield(lease.stop())
            await asyncio.shield(self._release(lease.task, delivery, lease.unclaimed is None))
            raise
        await lease.stop()
        if lease.cancel_requested:
            return await self._record_cancel(lease.task, delivery)
        if lease.lost or handler.cancelled():
            self._emit(TaskEventKind.LEASE_LOST, lease.task)
            return Outcome.LOST_LEASE
        return await self._finish(lease.task, handler, delivery, lease.unclaimed)

    async def _finish(
        self,
        current: Task,
        handler: asyncio.Future[Any],
        delivery: Delivery,
        unclaimed: Task | None,
    ) -> Outcome:
        """Record what the attempt came to, then settle the message; over the PENDING
        version (``unclaimed``) if the claim was never written."""
        now = self.clock.now()
        exc = handler.exception()
        trace = None
        if exc is None:
            new = self._complete(current, handler.result(), now)
        else:
            permanent = isinstance(exc, PermanentTaskError)
            trace = describe_traceback(exc)
            new = current.fail_attempt(_describe(exc), now, permanent=permanent, traceback=trace)
        if isinstance(exc, HandlerTimeout):  # logged once, with where it was, as a timeout
            self._emit(TaskEventKind.TIMED_OUT, current, error=new.error, traceback=trace)
            trace = None
        if not await self._record(new, unclaimed or current, delivery, trace):
            if unclaimed is not None:  # the result is discarded
                if await settle_unstored(self.repository, self.queue, delivery):
                    return Outcome.SKIPPED_FINISHED
                self._emit(TaskEventKind.LEASE_LOST, current)
                return Outcome.LOST_LEASE
            fresh = await stored_attempt(self.repository, current)
            if fresh is not None and fresh.cancel_requested:
                return await self._record_cancel(fresh, delivery)
            self._emit(TaskEventKind.LEASE_LOST, current)
            return Outcome.LOST_LEASE
        return _ATTEMPT_OUTCOMES[new.status]

    def _complete(self, current: Task, result: Any, now: datetime) -> Task:
        """The handler returned ``result``: the task as it is to be stored. A check of
        the result belongs here; the outcome and the message's fate follow the status
        returned (a FAILED task is dead-lettered and counted FAILED)."""
        too_large = result_too_large(result, self.settings.task_data)
        if too_large is not None:  # it cannot be stored: fail once, for good
            return current.fail(_describe(too_large), now)
        return current.complete(result, now)

    async def _record_cancel(self, current: Task, delivery: Delivery) -> Outcome:
        cancelled = current.cancel(self.clock.now())
        try:
            await self.repository.transition(cancelled, expected=current)
        except (ConcurrencyConflict, TaskNotFound):
            return Outcome.LOST_LEASE
        await self.queue.ack(delivery)
        self._emit(TaskEventKind.CANCELLED, cancelled)
        return Outcome.CANCELLED

    async def _record(
        self, new: Task, expected: Task, delivery: Delivery, trace: str | None = None
    ) -> bool:
        """Store the attempt's result, then settle the message. False if the lease was
        lost. ``trace``: the handler's traceback, told with the event."""
        if not await store_outcome(self.repository, self.clock, new, expected):
            log.info("task %s: lease lost before its result was recorded", new.id)
            return False
        if new.status is TaskStatus.COMPLETED:
            await self.queue.ack(delivery)
            self._emit(TaskEventKind.COMPLETED, new, new.updated_at)
        elif new.status is TaskStatus.FAILED:
            await self.queue.dead_letter(delivery, reason=new.error or "failed")
            self._failed(new, trace)
        else:
            delay = self.retry_policy.backoff(new.retry_count)
            await self.queue.release(delivery, delay_seconds=delay)
            self._emit(
                TaskEventKind.RETRIED, new, error=new.error, traceback=trace, delay_seconds=delay
            )
        return True

    def _failed(self, task: Task, trace: str | None) -> None:
        """``task`` is FAILED and its message dead-lettered."""
        self._emit(TaskEventKind.FAILED, task, error=task.error, traceback=trace)
        self._emit(TaskEventKind.DEAD_LETTERED, task, error=task.error)

    def _context(self, task: Task, task_type: TaskType, lease: LeaseKeeper) -> RunContext | None:
        """The attempt's ``TaskContext``, for a handler that takes one."""
        if not task_type.takes_context:
            return None
        timeout = task.timeout_seconds or task_type.timeout_seconds
        deadline = self.clock.now() + timedelta(seconds=timeout)
        return RunContext(task, deadline=deadline, clock=self.clock, report=lease.note_progress)

    async def _call(self, task_type: TaskType, task: Task, context: RunContext | None) -> Any:
        with self.tracer.run_span(task):
            try:
                return await call_handler(
                    task_type.bound_to(context),
                    task,
                    sandbox=self.sandbox,
                    stoppable=self.stoppable,
                    executor=self.executor,
                )
            finally:
                if context is not None:  # its outcome counts no more (a thread left on)
                    context.cancel()

    async def _release(self, current: Task, delivery: Delivery, stored: bool) -> None:
        """Give an attempt cut short by shutdown back (a cancel requested meanwhile is
        recorded instead), for another worker to start at once. ``stored``: whether its
        claim was written (else the task is still PENDING as it was)."""
        if current.cancel_requested:
            await self._record_cancel(current, delivery)
            return
        if not stored:
            await give_back_unclaimed(self.queue, current, delivery)
            return
        with contextlib.suppress(ConcurrencyConflict, TaskNotFound):
            await self.repository.transition(current.release(self.clock.now()), expected=current)
        await self.queue.release(delivery, delay_seconds=0)


_ATTEMPT_OUTCOMES = {
    TaskStatus.COMPLETED: Outcome.COMPLETED,
    TaskStatus.FAILED: Outcome.FAILED,
    TaskStatus.PENDING: Outcome.RETRY_SCHEDULED,
}
"""The outcome of a recorded attempt, by the status it left the task in."""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
