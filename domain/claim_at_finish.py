"""Claim at finish: a first delivery's short attempt stored in one write.

Claiming first costs a write the outcome then overwrites: PENDING -> PROCESSING, then
PROCESSING -> COMPLETED. For the first delivery of a due PENDING task whose type has
no flow limit and no pause (``Admissions.free``), the processor instead:

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

Only a task never claimed (``attempts == 0``) is run unclaimed, so a redelivery finding
one still PENDING and never claimed may follow an unclaimed attempt whose worker died (a
handler that kills its process), unless it comes within a lease of the task's creation,
which no lost attempt's can (a message given back unstarted, or released for want of
its row: that one runs unclaimed too). Any later one reads the task and claims it
first, and that claim makes it ``isolated`` (``isolate_if_lost``), as a lost attempt
does: a poison task crashes a worker once, as before. A shutdown gives an unclaimed
attempt back as a fresh message (``give_back_unclaimed``), so it is not taken for one
lost. Types with a flow limit or paused, isolated, held and scheduled
(``run_at``) tasks take the usual path.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeGuard

from domain import delivery_rules as rules
from domain.errors import TaskNotFound
from domain.models import Delivery, Task, TaskStatus
from domain.ports import TaskQueue, TaskRepository

CLOCK_SKEW = timedelta(seconds=1)
"""How far the API's clock (a task's ``created_at``) may be ahead of a worker's: a
redelivery that late within a lease of the creation is still taken for a lost attempt."""


def never_claimed(task: Task) -> bool:
    """A due PENDING task no attempt was ever stored for (nor lost: not isolated). A
    claim given back at shutdown (``Task.release``) leaves ``attempts`` at 0 but keeps
    ``started_at``: that task was claimed."""
    plain = task.run_at is None and not task.held and not task.isolated
    unclaimed = task.attempts == 0 and task.started_at is None
    return plain and unclaimed and task.status is TaskStatus.PENDING


def may_follow_a_lost_run(task: Task, delivery: Delivery, now: datetime, lease: timedelta) -> bool:
    """Whether an earlier receive of ``delivery``'s message may have run ``task``
    unclaimed and died (see the module's docstring). Such a message comes back only
    when the lease it was received with runs out (an unclaimed attempt extends
    nothing), and it was received after its task was made: a redelivery within a lease
    of the task's creation follows no lost attempt (a message given back unstarted at
    shutdown, or released for want of its row)."""
    if delivery.receive_count <= 1 or not never_claimed(task):
        return False
    skew = min(CLOCK_SKEW, lease / 2)  # ``created_at`` is another host's clock
    return now - task.created_at >= lease - skew


def isolate_if_lost(claimed: Task, task: Task, delivery: Delivery, delay_seconds: float) -> Task:
    """The claim of ``task`` on ``delivery``, isolated when an earlier receive of the
    message may have run it unclaimed and died (``may_follow_a_lost_run``)."""
    if delay_seconds > 0:
        assert claimed.started_at is not None and claimed.lease_expires_at is not None
        lease = claimed.lease_expires_at - claimed.started_at  # the queue's lease
        if may_follow_a_lost_run(task, delivery, claimed.started_at, lease):
            return replace(claimed, isolated=True)
    return claimed


def runs_unclaimed(
    task: Task | None,
    delivery: Delivery,
    now: datetime,
    known_types: Container[str],
    lease_seconds: float,
) -> TypeGuard[Task]:
    """Whether ``task`` as read is one to run before its claim: the delivery's action is
    a plain claim of a due PENDING task never claimed, nor held, scheduled or isolated,
    and no earlier receive of its message may have run it and died (a first receive,
    or a redelivery within a lease of the task's creation)."""
    if task is None or not never_claimed(task):
        return False
    if may_follow_a_lost_run(task, delivery, now, timedelta(seconds=lease_seconds)):
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


async def give_back_unclaimed(queue: TaskQueue, task: Task, delivery: Delivery) -> None:
    """Shutdown cut an unclaimed attempt short: its message is sent again, a first
    receive for the next worker (not taken for a lost attempt), and this one acked."""
    await queue.send(task.id, priority=task.priority)
    await queue.ack(delivery)
