"""The decision table of a delivery (domain/delivery_rules.py), without I/O.

Every combination of what the decision reads is crossed, even those the model never
produces (a PENDING task with a lease, say): the table then also shows which fields a
row ignores. The expected action of each combination is computed from the rules as
written in the module's docstring, independently of ``decide`` and of the model; a few
hand-written rows pin the edges.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from domain.delivery_rules import (
    AckFinished,
    AckOrphan,
    Action,
    Claim,
    DeadLetterPoison,
    Defer,
    FailLostAttempt,
    FailUnknownType,
    RecordCancel,
    TakeOver,
    WaitUntilDue,
    decide,
)
from domain.limits import MAX_RELEASE_SECONDS
from domain.models import Delivery, Task, TaskStatus

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
LEASE_LEFT = 20.0
"""Seconds a live lease still runs."""
DUE_IN = 90.0
"""Seconds until a future ``run_at``."""
KNOWN = frozenset({"known"})

Lease = Literal["live", "expired"]
Budget = Literal["left", "spent"]
RunAt = Literal["future", "past", "none"]
LEASES: tuple[Lease, ...] = ("live", "expired")
BUDGETS: tuple[Budget, ...] = ("left", "spent")
RUN_ATS: tuple[RunAt, ...] = ("future", "past", "none")
YES_NO = (False, True)


@dataclass(frozen=True)
class Row:
    status: TaskStatus
    lease: Lease
    cancel_requested: bool
    budget: Budget
    isolated: bool
    run_at: RunAt
    missing: bool
    undecodable: bool
    unknown_type: bool

    def task(self) -> Task | None:
        if self.undecodable or self.missing:
            return None
        lease_seconds = LEASE_LEFT if self.lease == "live" else -1.0
        run_at = {"future": DUE_IN, "past": -DUE_IN, "none": None}[self.run_at]
        return Task(
            id="t-1",
            type="unknown" if self.unknown_type else "known",
            payload=None,
            status=self.status,
            created_at=NOW - timedelta(hours=1),
            updated_at=NOW - timedelta(minutes=1),
            max_attempts=3,
            attempts=3 if self.budget == "spent" else 1,
            lease_token="lease",
            lease_expires_at=NOW + timedelta(seconds=lease_seconds),
            run_at=None if run_at is None else NOW + timedelta(seconds=run_at),
            cancel_requested=self.cancel_requested,
            isolated=self.isolated,
        )

    def delivery(self) -> Delivery:
        return Delivery(receipt="r-1", task_id=None if self.undecodable else "t-1", receive_count=1)

    def expected(self) -> Action:
        """The table of domain/delivery_rules.py, row by row."""
        if self.undecodable:
            return DeadLetterPoison()
        if self.missing:
            return AckOrphan()
        if self.status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
            return AckFinished()
        if self.status is TaskStatus.PROCESSING and self.lease == "live":
            return Defer(LEASE_LEFT)
        if self.status is TaskStatus.PENDING and self.run_at == "future":
            return WaitUntilDue(DUE_IN)
        if self.status is TaskStatus.PROCESSING:  # its attempt was lost
            if self.cancel_requested:
                return RecordCancel()
            if self.isolated and self.budget == "spent":
                return FailLostAttempt()
        if self.unknown_type:
            return FailUnknownType()
        return TakeOver() if self.status is TaskStatus.PROCESSING else Claim()

    @property
    def id(self) -> str:
        return "-".join(
            [
                self.status.value,
                f"lease_{self.lease}",
                "cancel" if self.cancel_requested else "no_cancel",
                f"budget_{self.budget}",
                "isolated" if self.isolated else "shared",
                f"run_at_{self.run_at}",
                "missing" if self.missing else "stored",
                "undecodable" if self.undecodable else "decodable",
                "unknown_type" if self.unknown_type else "known_type",
            ]
        )


ROWS = [
    Row(*combination)
    for combination in itertools.product(
        list(TaskStatus),
        LEASES,
        YES_NO,  # cancel_requested
        BUDGETS,
        YES_NO,  # isolated
        RUN_ATS,
        YES_NO,  # missing
        YES_NO,  # undecodable
        YES_NO,  # unknown_type
    )
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_the_decision_table(row: Row) -> None:
    assert decide(row.task(), row.delivery(), NOW, KNOWN) == row.expected()


def test_the_table_covers_every_combination_and_every_action() -> None:
    assert len(ROWS) == len(TaskStatus) * 2 * 2 * 2 * 2 * 3 * 2 * 2 * 2
    actions = {type(row.expected()) for row in ROWS}
    assert actions == {
        DeadLetterPoison,
        AckOrphan,
        AckFinished,
        Defer,
        WaitUntilDue,
        RecordCancel,
        FailLostAttempt,
        TakeOver,
        Claim,
        FailUnknownType,
    }


LOST_ATTEMPTS = [
    row
    for row in ROWS
    if row.status is TaskStatus.PROCESSING
    and row.lease == "expired"
    and not (row.missing or row.undecodable)
]


@pytest.mark.parametrize("row", LOST_ATTEMPTS, ids=[row.id for row in LOST_ATTEMPTS])
def test_a_lost_attempt_is_decided_as_the_model_settles_it(row: Row) -> None:
    """The decision reads the model's rule (``Task.settle_lost_attempt``), not a copy:
    what it names is what the processor's write then stores."""
    task = row.task()
    assert task is not None
    settled = task.take_over("new-lease", NOW, 30).status
    expected = {
        TaskStatus.CANCELLED: RecordCancel(),
        TaskStatus.FAILED: FailLostAttempt(),
        TaskStatus.PROCESSING: FailUnknownType() if row.unknown_type else TakeOver(),
    }[settled]
    assert decide(task, row.delivery(), NOW, KNOWN) == expected


# -- the edges, by hand ----------------------------------------------------------------


def pending(**changes: Any) -> Task:
    return replace(Task.create("known", None, NOW - timedelta(hours=1)), **changes)


def running(**changes: Any) -> Task:
    """Claimed at NOW with a 30 s lease."""
    claimed = Task.create("known", None, NOW - timedelta(hours=1)).claim("lease", NOW, 30)
    return replace(claimed, **changes)


DELIVERY = Delivery(receipt="r-1", task_id="t-1", receive_count=1)


EDGES = [
    pytest.param(
        running(lease_expires_at=NOW + timedelta(seconds=0.2)),
        Defer(1.0),
        id="a lease about to end is not polled in a busy loop: at least a second",
    ),
    pytest.param(
        running(lease_expires_at=NOW),
        TakeOver(),
        id="a lease that ends exactly now is expired",
    ),
    pytest.param(
        running(lease_expires_at=None),
        TakeOver(),
        id="a PROCESSING task with no lease recorded has none to wait for",
    ),
    pytest.param(
        running(lease_expires_at=NOW, attempts=3, max_attempts=3),
        TakeOver(),
        id="a lost attempt in the shared process is given back, even the last one",
    ),
    pytest.param(
        running(lease_expires_at=NOW, attempts=3, max_attempts=3, isolated=True),
        FailLostAttempt(),
        id="a lost isolated attempt counts: the last one fails the task",
    ),
    pytest.param(
        running(lease_expires_at=NOW, cancel_requested=True, isolated=True, type="unknown"),
        RecordCancel(),
        id="a cancel requested before the worker died wins over everything else",
    ),
    pytest.param(pending(run_at=NOW), Claim(), id="due exactly now is due"),
    pytest.param(
        pending(run_at=NOW + timedelta(days=2)),
        WaitUntilDue(MAX_RELEASE_SECONDS),
        id="far off: the message waits as long as the queue allows, then comes again",
    ),
    pytest.param(
        pending(run_at=NOW + timedelta(seconds=5), type="unknown"),
        WaitUntilDue(5.0),
        id="an unknown type is not failed before the task is due",
    ),
    pytest.param(
        running(type="unknown"),
        Defer(30.0),
        id="a task another worker runs is not failed for its type either",
    ),
    pytest.param(
        pending(attempts=3, max_attempts=4),
        Claim(),
        id="an operator's retry of a FAILED task is claimed again",
    ),
]


@pytest.mark.parametrize(("task", "expected"), EDGES)
def test_the_edges_of_the_table(task: Task, expected: Action) -> None:
    assert decide(task, DELIVERY, NOW, KNOWN) == expected


def test_an_undecodable_body_is_poison_whatever_else_is_known() -> None:
    poison = Delivery(receipt="r-1", task_id=None, receive_count=7, raw_body="{not json")
    assert decide(None, poison, NOW, KNOWN) == DeadLetterPoison()
    assert decide(running(), poison, NOW, KNOWN) == DeadLetterPoison()


def test_the_decision_reads_no_clock_the_same_inputs_give_the_same_action() -> None:
    task = running()
    later = NOW + timedelta(seconds=31)
    assert decide(task, DELIVERY, NOW, KNOWN) == Defer(30.0)
    assert decide(task, DELIVERY, later, KNOWN) == TakeOver()
    assert decide(task, DELIVERY, NOW, KNOWN) == Defer(30.0)
