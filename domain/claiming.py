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
from typing import cast

from domain.models import Delivery, Task, new_lease_token
from domain.ports import ClaimsInOneWrite, TaskRepository


class OneWriteClaims:
    """Whether a repository claims in one write, checked once per repository: the
    check goes through its decorators' attribute lookups, not for every delivery."""

    def __init__(self) -> None:
        self._checked: TaskRepository | None = None
        self._claims: ClaimsInOneWrite | None = None

    def of(self, repository: TaskRepository) -> ClaimsInOneWrite | None:
        if repository is not self._checked:
            self._checked = repository
            found = isinstance(repository, ClaimsInOneWrite)
            self._claims = cast(ClaimsInOneWrite, repository) if found else None
        return self._claims


async def claim_in_one_write(
    repository: ClaimsInOneWrite | None,
    delivery: Delivery,
    *,
    now: datetime,
    lease_seconds: float,
) -> Task | None:
    """The task of ``delivery``, claimed in one write; None when the repository cannot
    do that (None) or declined (the caller reads the task and decides)."""
    if delivery.task_id is None or repository is None:
        return None
    return await repository.claim_pending(
        delivery.task_id, lease_token=new_lease_token(), now=now, lease_seconds=lease_seconds
    )
