"""The Task and its state machine.

A ``Task`` is immutable: every transition returns a new ``Task`` with ``version``
incremented, so repositories can store it with a compare-and-set on the previous
``(status, version)``.
"""

from __future__ import annotations

import enum
import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.errors import IllegalTransition
from domain.limits import MAX_ERROR_LENGTH, MAX_TRACEBACK_BYTES
from domain.messages import RECEIVE_LIMIT_REASON as RECEIVE_LIMIT_REASON
from domain.messages import DeadLetter as DeadLetter
from domain.messages import Delivery as Delivery
from domain.messages import QueueDepth as QueueDepth
from domain.priorities import Priority
from domain.progress import Progress
from domain.slot_copy import slot_copier, slot_updater

JSON = Any
"""Any JSON value: what ``json.loads`` can return."""


class TaskStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

ALLOWED_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.PROCESSING, TaskStatus.CANCELLED}),
    # PROCESSING -> PROCESSING is a takeover after the previous lease expired;
    # PROCESSING -> CANCELLED ends a cooperative cancellation.
    TaskStatus.PROCESSING: frozenset(
        {
            TaskStatus.PENDING,
            TaskStatus.PROCESSING,
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.CANCELLED,
        }
    ),
    TaskStatus.COMPLETED: frozenset(),
    # FAILED -> PENDING is an operator's retry with a new attempt budget.
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING}),
    TaskStatus.CANCELLED: frozenset(),
}


_ids = random.Random(os.urandom(32))
"""Ids come from a generator seeded once from the OS: ``uuid4()`` reads os.urandom on
every call, which releases the GIL and, under load, costs ~30x more."""
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))  # no shared ids


def new_task_id() -> str:
    """A random (version 4) UUID, as ``str(uuid.UUID(int=..., version=4))`` writes it."""
    h = f"{_ids.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))  # the variant and version bits
_UUID4_SET = (0x8000 << 48) | (4 << 76)  # RFC 4122 variant, version 4


def new_lease_token() -> str:
    return f"{_ids.getrandbits(128):032x}"


def truncate_error(message: str) -> str:
    if len(message) <= MAX_ERROR_LENGTH:
        return message
    return message[: MAX_ERROR_LENGTH - 15] + "... [truncated]"


def truncate_traceback(text: str) -> str:
    """``text`` in at most ``MAX_TRACEBACK_BYTES`` of UTF-8, keeping its end (where the
    exception was raised)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= MAX_TRACEBACK_BYTES:
        return text
    marker = "[truncated] ...\n"
    tail = data[-(MAX_TRACEBACK_BYTES - len(marker)) :]
    return marker + tail.decode("utf-8", "ignore")


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    type: str
    payload: JSON
    status: TaskStatus
    created_at: datetime
    updated_at: datetime
    max_attempts: int = 3
    attempts: int = 0
    retry_count: int = 0
    timeout_seconds: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    traceback: str | None = None
    """Where the last failed attempt's handler raised (or was when its time ran out),
    truncated to ``MAX_TRACEBACK_BYTES``; None when no attempt failed that way."""
    result: JSON = None
    lease_token: str | None = None
    lease_expires_at: datetime | None = None
    run_at: datetime | None = None
    cancel_requested: bool = False
    isolated: bool = False
    """Set when an attempt was lost (its worker process died or stalled): from then on
    every attempt runs alone in a child process, so a crash is the task's own."""
    held: bool = False
    """Stored without a queue message because ``run_at`` is further off than the queue
    can delay one; the reconciler sends it when it comes within reach (see
    ``TaskRepository.list_due_held``). Only a PENDING task is held."""
    traceparent: str | None = None
    """The W3C trace context the task was submitted in (``domain.tracing``): the run
    spans are its children. None when the submission had none."""
    progress: Progress | None = None
    """What a handler last reported of its progress (``TaskContext.progress``), kept
    after the task finishes; None if none ever did."""
    priority: Priority = Priority.DEFAULT
    """Which of the queue's priorities its messages go to (domain/priorities.py)."""
    version: int = 0

    @classmethod
    def create(
        cls,
        task_type: str,
        payload: JSON,
        now: datetime,
        *,
        max_attempts: int = 3,
        timeout_seconds: float | None = None,
        run_at: datetime | None = None,
        task_id: str | None = None,
        held: bool = False,
        traceparent: str | None = None,
        priority: Priority = Priority.DEFAULT,
    ) -> Task:
        if held and run_at is None:
            raise ValueError("only a task with a run_at can be held")
        return _created(  # a blank task filled in: a frozen __init__ costs three times more
            _BLANK,
            task_id or new_task_id(),
            task_type,
            payload,
            now,
            now,
            max_attempts,
            timeout_seconds,
            run_at,
            held,
            traceparent,
            priority,
        )

    # -- transitions ------------------------------------------------------------------

    def _to(self, target: TaskStatus, now: datetime, **changes: Any) -> Task:
        if target not in ALLOWED_TRANSITIONS[self.status]:
            raise IllegalTransition(self.id, self.status.value, target.value)
        # A held task has no message; any move (a claim, a cancel) ends the hold.
        changes.update(status=target, updated_at=now, version=self.version + 1, held=False)
        return _copy(self, changes)

    def _unleased(self, target: TaskStatus, now: datetime, **changes: Any) -> Task:
        """A move to ``target`` that ends the current attempt's lease."""
        return self._to(target, now, lease_token=None, lease_expires_at=None, **changes)

    def _attempt_failed(
        self,
        target: TaskStatus,
        error: str,
        now: datetime,
        *,
        traceback: str | None = None,
        **changes: Any,
    ) -> Task:
        """A failed attempt, recorded: its error (and traceback, when it has one: else
        the last one is kept) and one more retry counted."""
        return self._unleased(
            target,
            now,
            error=truncate_error(error),
            traceback=_kept_traceback(traceback, self.traceback),
            retry_count=self.retry_count + 1,
            **changes,
        )

    def claim(self, lease_token: str, now: datetime, lease_seconds: float) -> Task:
        """PENDING -> PROCESSING, one more attempt. (A worker taking over a PROCESSING
        task whose lease expired calls ``take_over``, which settles the lost attempt.)"""
        if TaskStatus.PROCESSING not in ALLOWED_TRANSITIONS[self.status]:
            raise IllegalTransition(self.id, self.status.value, TaskStatus.PROCESSING.value)
        expires = now + timedelta(seconds=lease_seconds)
        # as _to makes it, without its keyword merges: on every delivery
        return _claimed(self, now, self.version + 1, self.attempts + 1, now, lease_token, expires)

    def settle_lost_attempt(self, now: datetime) -> Task:
        """The attempt of this PROCESSING task was lost: its lease expired with no result
        (the worker process crashed, was killed or stalled).

        - a cancel was requested: CANCELLED;
        - the attempt ran in the shared worker process: the crash may be a neighbour's,
          so the attempt is given back and the task runs isolated from now on;
        - the attempt ran isolated: it counts, so a task cannot loop forever:
          FAILED if it was the last, else PENDING to retry.
        """
        if self.status is not TaskStatus.PROCESSING:
            raise IllegalTransition(self.id, self.status.value, "settle a lost attempt")
        if self.cancel_requested:
            return self.cancel(now)
        if not self.isolated:
            return self._unleased(
                TaskStatus.PENDING,
                now,
                attempts=max(0, self.attempts - 1),
                isolated=True,
                error=truncate_error(
                    f"attempt {self.attempts} lost: lease expired (the worker crashed or "
                    "was killed, perhaps by another task); not counted, the next attempt "
                    "runs isolated"
                ),
            )
        lost = (
            f"attempt {self.attempts} of {self.max_attempts} lost: lease expired (the "
            "worker crashed or was killed while running this task isolated)"
        )
        return self.fail_attempt(lost, now)

    def take_over(self, lease_token: str, now: datetime, lease_seconds: float) -> Task:
        """A worker's claim of a PROCESSING task whose lease expired: the lost attempt
        is settled (``settle_lost_attempt``) and, if that leaves the task PENDING, it
        is claimed at once: one write. The result is PROCESSING, CANCELLED or FAILED."""
        if not self.lease_expired(now):
            raise IllegalTransition(self.id, self.status.value, "take over a live lease")
        settled = self.settle_lost_attempt(now)
        if settled.status is not TaskStatus.PENDING:
            return settled
        return settled.claim(lease_token, now, lease_seconds)

    def extend_lease(self, now: datetime, lease_seconds: float) -> Task:
        if self.status is not TaskStatus.PROCESSING:
            raise IllegalTransition(self.id, self.status.value, TaskStatus.PROCESSING.value)
        expires = now + timedelta(seconds=lease_seconds)
        return _copy(
            self, {"updated_at": now, "version": self.version + 1, "lease_expires_at": expires}
        )

    def report_progress(self, progress: Progress, now: datetime) -> Task:
        """The running attempt's latest progress report, recorded (its worker writes it
        with a compare-and-set, like a lease extension)."""
        if self.status is not TaskStatus.PROCESSING:
            raise IllegalTransition(self.id, self.status.value, "report progress")
        return _copy(self, {"progress": progress, "updated_at": now, "version": self.version + 1})

    def complete(self, result: JSON, now: datetime) -> Task:
        if TaskStatus.COMPLETED not in ALLOWED_TRANSITIONS[self.status]:
            raise IllegalTransition(self.id, self.status.value, TaskStatus.COMPLETED.value)
        # as _unleased makes it, without its keyword merges: on every delivery
        return _completed(self, now, self.version + 1, result, now)

    def fail(self, error: str, now: datetime, *, traceback: str | None = None) -> Task:
        return self._attempt_failed(
            TaskStatus.FAILED, error, now, traceback=traceback, finished_at=now
        )

    def fail_attempt(
        self,
        error: str,
        now: datetime,
        *,
        permanent: bool = False,
        traceback: str | None = None,
    ) -> Task:
        """An attempt of this PROCESSING task ended in ``error`` (raised where
        ``traceback`` says): FAILED if the error is ``permanent`` or the attempt was the
        last, else PENDING to retry."""
        if permanent or self.attempts >= self.max_attempts:
            return self.fail(error, now, traceback=traceback)
        return self.retry_later(error, now, traceback=traceback)

    def retry_later(self, error: str, now: datetime, *, traceback: str | None = None) -> Task:
        """A failed attempt with budget left: back to PENDING with the error recorded."""
        return self._attempt_failed(TaskStatus.PENDING, error, now, traceback=traceback)

    def release(self, now: datetime) -> Task:
        """Give back an attempt that never ran to an end (shutdown): the budget is kept."""
        return self._unleased(TaskStatus.PENDING, now, attempts=max(0, self.attempts - 1))

    def unhold(self, now: datetime) -> Task:
        """The reconciler sent the held task's message: PENDING like any other now."""
        if not self.held:
            raise IllegalTransition(self.id, self.status.value, "unheld (it is not held)")
        return _copy(self, {"held": False, "updated_at": now, "version": self.version + 1})

    def cancel(self, now: datetime) -> Task:
        return self._unleased(TaskStatus.CANCELLED, now, finished_at=now)

    def request_cancel(self, now: datetime) -> Task:
        """Flag a PROCESSING task: its worker cancels the handler at its next heartbeat."""
        if self.status is not TaskStatus.PROCESSING:
            raise IllegalTransition(self.id, self.status.value, "cancel requested")
        changes = {"cancel_requested": True, "updated_at": now, "version": self.version + 1}
        return _copy(self, changes)

    def retry_failed(self, now: datetime, extra_attempts: int) -> Task:
        """FAILED -> PENDING with ``extra_attempts`` more; attempts and error are kept."""
        return self._to(
            TaskStatus.PENDING,
            now,
            max_attempts=self.attempts + extra_attempts,
            finished_at=None,
            run_at=None,
        )

    # -- queries ----------------------------------------------------------------------

    @property
    def due_at(self) -> datetime:
        """When this task (PENDING) became due to run: its ``run_at``, else its creation;
        once an attempt started, when it came back to PENDING (``updated_at``): a retry's
        delay is not stored, so a retried task counts as due up to that delay early."""
        if self.started_at is not None:
            return self.updated_at
        return self.run_at or self.created_at

    def lease_expired(self, now: datetime) -> bool:
        return self.lease_expires_at is None or self.lease_expires_at <= now


_copy = slot_copier(Task)
"""A copy of a task with the ``changes`` given (by field name) made."""
_created = slot_updater(
    Task,
    ("id", "type", "payload", "created_at", "updated_at", "max_attempts", "timeout_seconds")
    + ("run_at", "held", "traceparent", "priority"),
)
_claimed = slot_updater(
    Task,
    ("updated_at", "version", "attempts", "started_at", "lease_token", "lease_expires_at"),
    {"status": TaskStatus.PROCESSING, "held": False},
)
_completed = slot_updater(
    Task,
    ("updated_at", "version", "result", "finished_at"),
    {"status": TaskStatus.COMPLETED, "held": False, "lease_token": None, "lease_expires_at": None},
)
"""A blank task filled in, a claim, a completion: made for every task, so each takes
its values as arguments (``slot_updater``), not in a dictionary of changes."""
_BLANK = Task("", "", None, TaskStatus.PENDING, datetime.min, datetime.min)
"""What ``Task.create`` fills in: the defaults of every other field."""


def _kept_traceback(new: str | None, last: str | None) -> str | None:
    """The traceback a failed attempt leaves on the task: its own, else the last one."""
    return last if new is None else truncate_traceback(new)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Task]
    next_cursor: str | None


DEFAULT_HEARTBEAT_SECONDS = 10.0
"""How often a worker records that it is alive, unless it says otherwise."""
MIN_LIVENESS_MARGIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker's heartbeat. It is live until one heartbeat interval plus a margin (half
    an interval, at least a second, for a slow write) after ``last_seen``: a worker
    killed without removing itself stops counting once it has missed a heartbeat."""

    worker_id: str
    host: str
    pid: int
    concurrency: int
    in_flight: int
    started_at: datetime
    last_seen: datetime
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS

    @property
    def live_until(self) -> datetime:
        margin = max(self.heartbeat_seconds / 2, MIN_LIVENESS_MARGIN_SECONDS)
        return self.last_seen + timedelta(seconds=self.heartbeat_seconds + margin)

    def is_live(self, now: datetime) -> bool:
        return now < self.live_until


COUNTS_NOTE = (
    "Exact. On the aws backend the counts come from the table's stream: they trail the "
    "writes by up to about 2 seconds (eventually consistent), and a finished task removed "
    "by its retention (DynamoDB TTL) leaves them when DynamoDB deletes it."
)
"""How far the counts per status can be trusted: said by ``/metrics`` (its OpenAPI
description) and the Prometheus help text of ``taskq_tasks``."""


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    counts: dict[TaskStatus, int]
    depth: QueueDepth
    dead_letter_queue_depth: int
    """Messages in the queue's dead-letter queue, poison messages (no readable task)
    included; what removes them depends on the backend (README, /metrics)."""
    active_workers: int
    """Worker slots: the live workers' concurrency, summed."""
    live_workers: int = 0
    """Worker processes that beat within their TTL."""
    busy_slots: int = 0
    """Slots running a task now, as the live workers last reported."""
    oldest_due_age_seconds: float = 0.0
    """How long the oldest due PENDING task has waited (``Task.due_at``); 0 if none."""
    max_backlog: int | None = None
    """PENDING tasks beyond which submissions are refused (503); None: unbounded."""
    backlog_refusals: int = 0
    """Submissions this API process refused because the backlog was full."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def dead_letter_tasks(self) -> int:
        """The tasks of the dead-letter view: FAILED tasks (a retry takes one out)."""
        return self.counts.get(TaskStatus.FAILED, 0)
