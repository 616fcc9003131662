"""What happens to a delivery: the rules, as one pure decision.

``decide`` reads the delivered message, the stored task (or its absence) and the time,
and names the one action to take; ``TaskProcessor`` carries it out. It does no I/O and
reads no clock, so the whole table is tested without either
(``tests/unit/test_delivery_rules.py``). The first row that matches wins:

===========================================  =================  =====================
the delivery and its task                    action             outcome
===========================================  =================  =====================
body undecodable (no task id)                DeadLetterPoison   POISON
no task with that id                         AckOrphan          ORPHAN
task COMPLETED, FAILED or CANCELLED          AckFinished        SKIPPED_FINISHED
PROCESSING, lease live                       Defer(lease left)  DEFERRED
PENDING, ``run_at`` in the future            WaitUntilDue(..)   DEFERRED
PROCESSING, lease expired: the lost attempt  (settled by ``Task.settle_lost_attempt``)
  - a cancel was requested                   RecordCancel       CANCELLED
  - it ran isolated and was the last         FailLostAttempt    FAILED
  - otherwise (given back, or retried)       TakeOver           the handler's
PENDING, due (or no ``run_at``)              Claim              the handler's
type not registered (instead of the two      FailUnknownType    FAILED
  rows above)
===========================================  =================  =====================

A lease that expires exactly now is expired (``Task.lease_expired``). A delay is in
seconds: ``Defer`` waits at least a second, ``WaitUntilDue`` at most what the queue
allows; a task further off is held by the scheduler, so an early hop waits again.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime

from domain.limits import MAX_RELEASE_SECONDS
from domain.models import Delivery, Task, TaskStatus

MIN_DEFER_SECONDS = 1.0
"""The least a delivery of a task another worker runs waits before it comes back: a
lease about to end is not polled in a busy loop."""


@dataclass(frozen=True, slots=True)
class DeadLetterPoison:
    """The body names no task: move the message to the dead-letter queue."""


@dataclass(frozen=True, slots=True)
class AckOrphan:
    """No task has the message's id: delete the message."""


@dataclass(frozen=True, slots=True)
class AckFinished:
    """The task already ended (a redelivery after its result was stored): delete it."""


@dataclass(frozen=True, slots=True)
class Defer:
    """Another worker holds a live lease: give the message back until it may end."""

    delay_seconds: float


@dataclass(frozen=True, slots=True)
class WaitUntilDue:
    """The task is scheduled later (an early re-send, or a hop of a long delay): give
    the message back until it is due."""

    delay_seconds: float


@dataclass(frozen=True, slots=True)
class RecordCancel:
    """The attempt was lost after a cancel was requested: store the task CANCELLED
    and delete the message."""


@dataclass(frozen=True, slots=True)
class FailLostAttempt:
    """The lost attempt ran isolated and was the last: store the task FAILED and
    dead-letter the message."""


@dataclass(frozen=True, slots=True)
class TakeOver:
    """The attempt was lost with budget left: settle it and claim the task again in
    one write, then run the handler."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The task is due: claim it (one more attempt) and run the handler."""


@dataclass(frozen=True, slots=True)
class FailUnknownType:
    """The task would run but no handler is registered for its type: claim it and
    store it FAILED, rather than let the message loop."""


MessageAction = DeadLetterPoison | AckOrphan
"""Actions on a message that has no task to act on."""
TaskAction = (
    AckFinished
    | Defer
    | WaitUntilDue
    | RecordCancel
    | FailLostAttempt
    | TakeOver
    | Claim
    | FailUnknownType
)
"""Actions on a message and its stored task."""
Action = MessageAction | TaskAction


def decide(
    task: Task | None, delivery: Delivery, now: datetime, known_types: Container[str]
) -> Action:
    """The action for ``delivery`` of ``task`` (None: no task is stored under the
    message's id) at ``now``; ``known_types`` holds the task types with a handler."""
    if delivery.task_id is None:
        return DeadLetterPoison()
    if task is None:
        return AckOrphan()
    return _decide_for_task(task, now, known_types)


def _decide_for_task(task: Task, now: datetime, known_types: Container[str]) -> TaskAction:
    if task.status.is_final:
        return AckFinished()
    run: TakeOver | Claim
    if task.status is TaskStatus.PROCESSING:
        if task.lease_expires_at is not None and not task.lease_expired(now):
            left = (task.lease_expires_at - now).total_seconds()
            return Defer(max(MIN_DEFER_SECONDS, left))
        settled = task.settle_lost_attempt(now).status
        if settled is TaskStatus.CANCELLED:
            return RecordCancel()
        if settled is TaskStatus.FAILED:
            return FailLostAttempt()
        run = TakeOver()
    else:
        if task.run_at is not None and task.run_at > now:
            left = (task.run_at - now).total_seconds()
            return WaitUntilDue(min(left, MAX_RELEASE_SECONDS))
        run = Claim()
    if task.type not in known_types:
        return FailUnknownType()
    return run
