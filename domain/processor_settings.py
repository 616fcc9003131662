"""How a worker's processor runs deliveries: the lease, its heartbeat, the grace
periods, and how long a first delivery may run before its claim is written."""

from __future__ import annotations

from dataclasses import dataclass

from domain.limits import (
    CANCEL_GRACE_SECONDS,
    PROGRESS_INTERVAL_SECONDS,
    STORED_IN_TASK,
    TaskDataLimit,
)


@dataclass(frozen=True)
class ProcessorSettings:
    visibility_timeout: float = 30.0
    """The lease a claim takes, in seconds (the queue's visibility timeout)."""
    heartbeat_interval: float | None = None
    """How often a running task's lease is extended; default a third of the lease."""
    orphan_grace_seconds: float = 60.0
    """How long a message whose task is not stored is kept (released and received
    again) before it is acked as an orphan: the store write that follows a send may
    still land, or have failed."""
    cancel_grace_seconds: float = CANCEL_GRACE_SECONDS
    """How long a handler told it is cancelled (its ``TaskContext``) may take to stop by
    itself before it is cancelled."""
    progress_interval: float = PROGRESS_INTERVAL_SECONDS
    """Seconds at least between two writes of a running task's progress."""
    task_data: TaskDataLimit = STORED_IN_TASK
    """How large a result may be as JSON: larger with the claim check (bootstrap)."""
    claim_delay_seconds: float = 0.0
    """Claim at finish (``domain/claim_at_finish.py``): a first delivery's handler is
    started on the task as read, and its claim written only if it still runs after
    this long (or reports progress); one that ends sooner is stored once, PENDING ->
    its outcome. 0: every delivery is claimed before its handler starts."""

    @property
    def heartbeat_every(self) -> float:
        return self.heartbeat_interval or max(0.05, self.visibility_timeout / 3)

    @property
    def claim_after(self) -> float:
        """When an unwritten claim is written at the latest: the delay, or the first
        heartbeat if that comes sooner (the queue's lease must be kept); 0: at once."""
        return min(self.claim_delay_seconds, self.heartbeat_every)
