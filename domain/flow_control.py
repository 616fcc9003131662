"""Flow control of a task type: how many run at once, how fast they start, and pause.

A type's limits come from its decorator (``FlowLimits`` on the ``TaskType``) unless an
operator changed them at run time (``PUT /task-types/{type}``): those changes are the
``overrides`` of the type's ``FlowRecord``, which lives in the task store and is shared
by every process. The same record holds the state the limits need:

- the **permits** of the tasks of the type now running (task id -> expiry, epoch
  seconds), when it has a ``max_concurrency``. A permit is taken with the claim and
  given back once the outcome is written; it lasts one lease and is extended with it,
  so a crashed worker's permits expire with its leases;
- a **token bucket** for ``rate`` (starts per second): it holds at most ``burst``
  tokens, gains ``rate`` per second, and each start takes one.

Every rule is a pure function of a record, the limits and the time (``admit``,
``release``, ``extend``, ``change``): the record changes only by compare-and-set on its
``version`` (the ``FlowControlStore`` port), so two processes never both take the last
slot. A delivery ``admit`` refuses is deferred (domain/flow_gate.py), never failed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from domain.errors import InvalidInput
from domain.limits import (
    DEFER_JITTER_SECONDS,
    MAX_CONCURRENCY_LIMIT,
    MAX_DEFER_SECONDS,
    MAX_RATE_PER_SECOND,
    PAUSED_RECHECK_SECONDS,
)

FIELDS: Final = ("max_concurrency", "rate", "burst", "paused")
"""The settings of a type an operator may change; ``null`` removes a limit."""
CONCURRENCY_RECHECK_SECONDS: Final = 1.0
"""How long a delivery refused for want of a free slot waits (before jitter): when a
slot frees is not known, and a second keeps the polling of a full type cheap."""

Override = int | float | bool | None


@dataclass(frozen=True, slots=True)
class FlowLimits:
    """The limits of one task type; None: no such limit."""

    max_concurrency: int | None = None
    """Tasks of the type running at once, across every worker."""
    rate: float | None = None
    """Starts per second, across every worker."""
    burst: int | None = None
    """Starts allowed at once after a quiet spell (the bucket's size); None: the rate
    rounded up (at least 1). Meaningless without a rate."""
    paused: bool = False
    """No task of the type starts; submits are still accepted."""

    def __post_init__(self) -> None:
        check("max_concurrency", self.max_concurrency)
        check("rate", self.rate)
        check("burst", self.burst)
        check("paused", self.paused)

    @property
    def limited(self) -> bool:
        return self.max_concurrency is not None or self.rate is not None

    @property
    def free(self) -> bool:
        """Nothing to check: no limit, not paused (the fast path of every delivery)."""
        return not self.limited and not self.paused

    @property
    def bucket_size(self) -> float:
        if self.burst is not None:
            return float(self.burst)
        return float(max(1, math.ceil(self.rate or 1)))

    def changed(self, overrides: Mapping[str, Override]) -> FlowLimits:
        """These limits with an operator's ``overrides`` applied (a ``None`` pause: not
        paused)."""
        values = {name: overrides[name] for name in FIELDS if name in overrides}
        if "paused" in values:
            values["paused"] = bool(values["paused"])
        return replace(self, **values)  # type: ignore[arg-type]


def check(name: str, value: object) -> None:
    """Raise ``InvalidInput`` naming ``name`` if ``value`` is not a valid setting."""
    if name == "paused":
        if value is not None and not isinstance(value, bool):
            raise InvalidInput(name, f"must be true or false, not {value!r}")
        return
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(name, f"must be a number or null, not {value!r}")
    if name == "rate":
        if not (0 < value <= MAX_RATE_PER_SECOND) or math.isnan(value):
            raise InvalidInput(
                name, f"must be above 0 and at most {MAX_RATE_PER_SECOND:g}, not {value!r}"
            )
        return
    if not isinstance(value, int):
        raise InvalidInput(name, f"must be a whole number, not {value!r}")
    if not 1 <= value <= MAX_CONCURRENCY_LIMIT:
        raise InvalidInput(name, f"must be 1 to {MAX_CONCURRENCY_LIMIT}, not {value!r}")


def check_change(change: Mapping[str, Any]) -> dict[str, Override]:
    """An operator's change of settings, checked: only ``FIELDS``, each valid."""
    unknown = sorted(set(change) - set(FIELDS))
    if unknown:
        raise InvalidInput(unknown[0], f"is not a setting; the settings are {', '.join(FIELDS)}")
    for name, value in change.items():
        check(name, value)
    return dict(change)


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A type's shared flow state, as stored; ``version`` 0: not stored yet."""

    task_type: str
    overrides: Mapping[str, Override] = field(default_factory=dict)
    permits: Mapping[str, float] = field(default_factory=dict)
    """Task id -> when its permit expires (epoch seconds)."""
    tokens: float | None = None
    """Tokens in the bucket at ``refilled_at``; None: full."""
    refilled_at: float = 0.0
    version: int = 0

    def state_json(self) -> str:
        """What a store keeps of the record besides its type and version."""
        state = {
            "overrides": dict(self.overrides),
            "permits": dict(self.permits),
            "tokens": self.tokens,
            "refilled_at": self.refilled_at,
        }
        return json.dumps(state, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_state(cls, task_type: str, version: int, state: str) -> FlowRecord:
        data = json.loads(state)
        return cls(
            task_type,
            overrides=dict(data.get("overrides", {})),
            permits={k: float(v) for k, v in data.get("permits", {}).items()},
            tokens=None if data.get("tokens") is None else float(data["tokens"]),
            refilled_at=float(data.get("refilled_at", 0.0)),
            version=version,
        )

    def running(self, now: float) -> int:
        """Permits not expired at ``now``."""
        return sum(1 for until in self.permits.values() if until > now)


@dataclass(frozen=True, slots=True)
class Admitted:
    """The task may start: store ``record`` (compare-and-set), then claim it."""

    record: FlowRecord
    holds_permit: bool
    """True when a permit was taken: give it back once the outcome is written."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The task may not start now: look again in ``wait_seconds``."""

    reason: str
    """``paused``, ``concurrency`` or ``rate``."""
    wait_seconds: float


def admit(
    record: FlowRecord, limits: FlowLimits, task_id: str, now: float, permit_seconds: float
) -> Admitted | Refused:
    """Whether task ``task_id`` may start at ``now`` (epoch seconds) under ``limits``;
    a permit it takes lasts ``permit_seconds``. A task that holds a permit already (a
    takeover of its own lost attempt) does not count against itself."""
    if limits.paused:
        return Refused("paused", PAUSED_RECHECK_SECONDS)
    permits = {k: v for k, v in record.permits.items() if v > now and k != task_id}
    if limits.max_concurrency is not None and len(permits) >= limits.max_concurrency:
        return Refused("concurrency", CONCURRENCY_RECHECK_SECONDS)
    tokens, refilled_at = record.tokens, record.refilled_at
    if limits.rate is not None:
        size = limits.bucket_size
        held = size if tokens is None else tokens
        held = min(size, held + max(0.0, now - refilled_at) * limits.rate)
        if held < 1:
            return Refused("rate", (1 - held) / limits.rate)
        tokens, refilled_at = held - 1, now
    holds = limits.max_concurrency is not None
    if holds:
        permits[task_id] = now + permit_seconds
    new = replace(record, permits=permits, tokens=tokens, refilled_at=refilled_at)
    return Admitted(new, holds)


def release(record: FlowRecord, task_id: str, now: float) -> FlowRecord:
    """The record without ``task_id``'s permit (and without expired ones)."""
    permits = {k: v for k, v in record.permits.items() if v > now and k != task_id}
    return replace(record, permits=permits)


def extend(record: FlowRecord, task_id: str, until: float) -> FlowRecord | None:
    """``task_id``'s permit extended to ``until``; None if it holds none (it expired
    and was dropped: the task runs on, uncounted, as its lease does)."""
    if task_id not in record.permits:
        return None
    return replace(record, permits={**record.permits, task_id: until})


def change(record: FlowRecord, overrides: Mapping[str, Override]) -> FlowRecord:
    """The record with an operator's ``overrides`` merged into the stored ones. A new
    rate or burst starts from a full bucket."""
    merged = {**record.overrides, **overrides}
    refill = "rate" in overrides or "burst" in overrides
    return replace(record, overrides=merged, tokens=None if refill else record.tokens)


def defer_seconds(wait_seconds: float, jitter: float) -> int:
    """Whole seconds a refused delivery waits: ``wait_seconds`` plus ``jitter`` (0 to 1)
    of ``DEFER_JITTER_SECONDS``, at least 1, at most ``MAX_DEFER_SECONDS``."""
    wanted = math.ceil(wait_seconds + jitter * DEFER_JITTER_SECONDS)
    return max(1, min(MAX_DEFER_SECONDS, wanted))
