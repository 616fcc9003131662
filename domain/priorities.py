"""Task priorities, and the weighted order in which a worker looks at them.

A task is ``high``, ``default`` or ``low``. Every queue (memory, SQLite, SQS) keeps
the three apart and, on each receive, looks at them in the order ``PriorityOrder``
gives: mostly high first, but by weight, so a steady stream of high tasks never
starves the others. A receive takes what it can from the first priority of its order
and fills the rest of its batch from the next ones (so no slot is left idle while any
task is due); a round that starts with ``low`` delays a high task by that one round.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.errors import InvalidInput


class Priority(enum.StrEnum):
    HIGH = "high"
    DEFAULT = "default"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for high, 1 for default, 2 for low: the order of strict precedence."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: object, *, field_name: str = "priority") -> Priority:
        """``value`` as a priority; ``InvalidInput`` naming ``field_name`` otherwise."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        allowed = ", ".join(p.value for p in cls)
        raise InvalidInput(field_name, f"must be one of {allowed}, not {value!r}")


def needs_priority_queues(priority: Priority) -> InvalidInput:
    """The error for a priority other than ``default`` where the priority queues are
    off (aws without ``TASKQ_PRIORITIES``): a 422 that names the setting."""
    return InvalidInput(
        "priority",
        f"{priority.value!r} needs the priority queues, which this server does not poll: "
        "set TASKQ_PRIORITIES=true (and run `taskq init`), or send 'default'",
    )


_RANK = {Priority.HIGH: 0, Priority.DEFAULT: 1, Priority.LOW: 2}
PRIORITIES_BY_RANK = (Priority.HIGH, Priority.DEFAULT, Priority.LOW)
_RANK_BY_NAME = {p.value: rank for p, rank in _RANK.items()}

DEFAULT_WEIGHTS = {Priority.HIGH: 6, Priority.DEFAULT: 3, Priority.LOW: 1}
"""Our choice: of every 10 receive rounds, 6 look at high first, 3 at default, 1 at
low. Every weight is at least 1, so low is never starved."""


@dataclass(frozen=True)
class PriorityWeights:
    """How often each priority comes first in a receive round (weights ≥ 1)."""

    high: int = DEFAULT_WEIGHTS[Priority.HIGH]
    default: int = DEFAULT_WEIGHTS[Priority.DEFAULT]
    low: int = DEFAULT_WEIGHTS[Priority.LOW]

    def __post_init__(self) -> None:
        for priority in Priority:
            weight = self.of(priority)
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
                raise ValueError(
                    f"the weight of priority {priority.value!r} must be an integer of at "
                    f"least 1 (so it is never starved), not {weight!r}"
                )

    def of(self, priority: Priority) -> int:
        weight: int = getattr(self, priority.value)
        return weight

    @classmethod
    def parse(cls, text: str) -> PriorityWeights:
        """``high=6,default=3,low=1`` (any subset; the others keep their defaults)."""
        given: dict[str, int] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, number = (text.strip() for text in part.partition("="))
            if not sep or not number.isdigit() or name not in _RANK_BY_NAME:
                raise ValueError(
                    f"{part!r} is not PRIORITY=INTEGER with PRIORITY one of high, default, "
                    "low (e.g. high=6,default=3,low=1)"
                )
            priority = Priority(name)
            given[priority.value] = int(number)
        return cls(**given)


@dataclass
class PriorityOrder:
    """The order of priorities for each receive round: smooth weighted round robin
    (as nginx balances upstreams) picks the one that comes first, so over any
    ``sum(weights)`` rounds each priority comes first exactly its weight's times, and
    spread out; the others follow in rank order (high, default, low).

    ``only`` restricts the order to those priorities (an SQS queue polls only the
    queues that exist)."""

    weights: PriorityWeights = field(default_factory=PriorityWeights)
    only: tuple[Priority, ...] = PRIORITIES_BY_RANK
    _current: dict[Priority, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.only:
            raise ValueError("a priority order needs at least one priority")
        self.only = tuple(p for p in PRIORITIES_BY_RANK if p in set(self.only))
        self._current = dict.fromkeys(self.only, 0)

    def next_round(self) -> tuple[Priority, ...]:
        """The priorities to look at in the next receive round, first one first."""
        if len(self.only) == 1:
            return self.only
        total = 0
        for priority in self.only:
            self._current[priority] += self.weights.of(priority)
            total += self.weights.of(priority)
        first = max(self.only, key=lambda p: (self._current[p], -p.rank))
        self._current[first] -= total
        return (first, *(p for p in self.only if p is not first))


def by_priority(
    items: Iterable[tuple[Priority, str, int]],
) -> dict[Priority, list[tuple[str, int]]]:
    """``(priority, task_id, delay)`` grouped as ``send_batch`` takes them: one list of
    ``(task_id, delay)`` per priority, in rank order, each in the order given."""
    groups: dict[Priority, list[tuple[str, int]]] = {}
    for priority, task_id, delay in sorted(items, key=lambda item: item[0].rank):
        groups.setdefault(priority, []).append((task_id, delay))
    return groups
