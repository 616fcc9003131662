"""Claiming a delivered task in one write, where the store offers it.

The usual delivery reads the task, decides (``domain/delivery_rules.py``), then claims
it with a compare-and-set: a read and a write. For the common case, a PENDING task with
no ``run_at`` (which ``decide`` always claims), a store implementing
``ClaimsInOneWrite`` does both in one conditional write that returns the claimed task.
Every other case is declined by the store, unchanged, and the processor reads and
decides as before. What the claim stores is ``Task.claim``'s result; the contract suite
checks that a store's one-write claim matches it field for field.
"""

from __future__ import annotations

from datetime import datetime

from domain.models import Delivery, Task, new_lease_token
from domain.ports import ClaimsInOneWrite, TaskRepository


async def claim_in_one_write(
    repository: TaskRepository, delivery: Delivery, *, now: datetime, lease_seconds: float
) -> Task | None:
    """The task of ``delivery``, claimed in one write; None when the repository cannot
    do that or declined (the caller reads the task and decides)."""
    if delivery.task_id is None or not isinstance(repository, ClaimsInOneWrite):
        return None
    return await repository.claim_pending(
        delivery.task_id, lease_token=new_lease_token(), now=now, lease_seconds=lease_seconds
    )
