"""Claim at finish: a first delivery's short attempt stored in one write.

Claiming first costs a write the outcome then overwrites: PENDING -> PROCESSING, then
PROCESSING -> COMPLETED. For the first delivery of a due PENDING task, when no task
type has a flow limit or a pause (``Admissions.all_free``), the processor instead:

1. reads the task (strongly consistent) and decides as ever (``delivery_rules``);
2. builds the claimed version in memory (``Task.claim``) without writing it, and
   starts the handler;
3. if the handler ends within ``ProcessorSettings.claim_after`` (the claim delay, or
   the first heartbeat if sooner), writes its outcome (completed, failed, retry later)
   in one compare-and-set over the PENDING version read: PENDING -> COMPLETED in one
   write, with ``started_at``, ``attempts`` and the lease fields as a claim leaves them;
4. else, or as soon as it reports progress, writes the claim then over the PENDING
   version (``LeaseKeeper.unclaimed``) and goes on as a claimed attempt. A claim that
   fails there (the task was cancelled, or a duplicate delivery claimed it) loses the
   attempt as a lost lease does: the handler is told to stop, nothing is recorded.

If the final write fails (a cancel, or another worker, got there first) the result is
discarded: a finished task's message is acked as its redelivery would be
(``settle_unstored``); otherwise the attempt is lost and the message left alone.

A redelivery (``receive_count > 1``) always claims first, so a task whose handler kills
its worker is counted and isolated as before (at most one extra crash). Flow limits,
paused types, isolated, held and scheduled (``run_at``) tasks take the usual path.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime

from domain import delivery_rules as rules
from domain.errors import TaskNotFound
from domain.models import Delivery, Task
from domain.ports import TaskQueue, TaskRepository


def claims_at_finish(delay_seconds: float, delivery: Delivery) -> bool:
    """Whether ``delivery`` may run before its claim is written: on, and a first one."""
    return delay_seconds > 0 and delivery.receive_count == 1 and delivery.task_id is not None


def runs_unclaimed(
    task: Task | None, delivery: Delivery, now: datetime, known_types: Container[str]
) -> bool:
    """Whether ``task`` as read is one to run before its claim: the delivery's action is
    a plain claim of a due PENDING task, never held, scheduled or isolated."""
    if task is None or task.run_at is not None or task.held or task.isolated:
        return False
    return isinstance(rules.decide(task, delivery, now, known_types), rules.Claim)


async def settle_unstored(repository: TaskRepository, queue: TaskQueue, delivery: Delivery) -> bool:
    """The outcome of an unclaimed attempt was not stored: someone else changed the
    task first. A task finished meanwhile (cancelled) has its message acked, as a
    finished task's redelivery is; True then. False: the attempt is lost, the message
    left to come back (another worker's attempt owns the task)."""
    assert delivery.task_id is not None
    try:
        task = await repository.get(delivery.task_id)
    except TaskNotFound:
        return False
    if not task.status.is_final:
        return False
    await queue.ack(delivery)
    return True
