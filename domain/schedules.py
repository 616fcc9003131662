"""Periodic schedules: a task type, a payload and a cron expression in a timezone.

A ``Schedule`` says which fires are due (``Schedule.plan``); the scheduler
(domain/scheduler.py) submits one task per fire, however many processes run it: each
fire is an idempotent insert under the key ``schedule:<name>:<fire time>``.

Cron expressions have 5 fields (minute hour day-of-month month day-of-week) or 6 with
seconds first. They are read in the schedule's timezone by a ``CronCalendar``
(domain/ports.py; adapters/cron.py), which also decides what a daylight-saving change
does to them (the README's "Periodic schedules" says what).

``missed``: fires more than ``SCHEDULE_ON_TIME_SECONDS`` old when a scheduler first
sees them (nothing ran then) are skipped (``skip``), or stand for one task, submitted
at once under the first missed fire's time (``run_once``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidInput
from domain.json_values import check_storable
from domain.limits import (
    MAX_SCHEDULE_FIRES_PER_PASS,
    MAX_SCHEDULE_NAME_LENGTH,
    SCHEDULE_ON_TIME_SECONDS,
    check_payload,
)
from domain.models import JSON
from domain.task_types import HandlerRegistry

DEFAULT_TIMEZONE = "UTC"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


class CronCalendar(Protocol):
    """When a cron expression fires, in a timezone (adapters/cron.py)."""

    def check(self, cron: str) -> None:
        """Raise ``ValueError`` saying what is wrong when ``cron`` is not 5 fields, or 6
        with seconds first, that the calendar can read."""
        ...

    def next_fire(self, cron: str, timezone: ZoneInfo, after: datetime) -> datetime:
        """The first fire of ``cron`` strictly after ``after`` (timezone-aware), as a
        UTC datetime. ``cron`` has passed ``check``."""
        ...


class MissedFires(enum.StrEnum):
    SKIP = "skip"
    RUN_ONCE = "run_once"


@dataclass(frozen=True)
class Schedule:
    name: str
    type: str
    cron: str
    created_at: datetime
    """When it was stored: the first fire is the first after this."""
    payload: JSON = None
    timezone: str = DEFAULT_TIMEZONE
    missed: MissedFires = MissedFires.SKIP
    enabled: bool = True
    fired_through: datetime | None = None
    """Fires at or before this are settled (submitted, skipped, or run once)."""
    declared: bool = False
    """Declared on a task type (``schedule=`` on its decorator), not through the API."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def settled_through(self) -> datetime:
        return self.fired_through or self.created_at

    def fire_key(self, fire_at: datetime) -> str:
        """The idempotency key of one fire: every scheduler makes the same one."""
        return f"schedule:{self.name}:{fire_at.astimezone(UTC).isoformat()}"

    def next_fire_at(self, calendar: CronCalendar, now: datetime) -> datetime | None:
        """The next fire not yet settled (None while disabled)."""
        if not self.enabled:
            return None
        return calendar.next_fire(self.cron, self.zone, max(self.settled_through, now))

    def plan(self, calendar: CronCalendar, now: datetime) -> FirePlan | None:
        """The fires to submit ``now``, and how far that settles; None when no fire is
        due (or the schedule is disabled)."""
        if not self.enabled:
            return None
        first = calendar.next_fire(self.cron, self.zone, self.settled_through)
        if first > now:
            return None
        late = now - timedelta(seconds=SCHEDULE_ON_TIME_SECONDS)
        fires: list[datetime] = []
        on_time = first
        if first <= late:
            if self.missed is MissedFires.RUN_ONCE:
                fires.append(first)
            on_time = calendar.next_fire(self.cron, self.zone, late)
        while on_time <= now:
            if len(fires) >= MAX_SCHEDULE_FIRES_PER_PASS:
                return FirePlan(fires, through=fires[-1])
            fires.append(on_time)
            on_time = calendar.next_fire(self.cron, self.zone, on_time)
        return FirePlan(fires, through=now)

    def same_definition(self, other: Schedule) -> bool:
        mine = (self.type, self.cron, self.payload, self.timezone, self.missed)
        return mine == (other.type, other.cron, other.payload, other.timezone, other.missed)


@dataclass(frozen=True)
class FirePlan:
    fires: list[datetime]
    """Fire times to submit a task for, earliest first."""
    through: datetime
    """What the schedule's ``fired_through`` becomes once they are submitted."""


@dataclass(frozen=True)
class ScheduleRequest:
    """A schedule as a client (or a task type's declaration) asks for it."""

    name: str
    type: str
    cron: str
    payload: JSON = None
    timezone: str = DEFAULT_TIMEZONE
    missed: str = MissedFires.SKIP.value
    enabled: bool = True


@dataclass(frozen=True)
class ScheduleRules:
    """What a schedule must satisfy: a known type, a payload it accepts, a cron
    expression the calendar reads, an IANA timezone."""

    task_types: HandlerRegistry
    calendar: CronCalendar

    def build(self, request: ScheduleRequest, now: datetime, *, declared: bool = False) -> Schedule:
        """The schedule ``request`` asks for, created ``now``; ``InvalidInput`` naming
        the first field that is wrong."""
        check_name(request.name)
        if not isinstance(request.type, str) or not request.type.strip():
            raise InvalidInput("type", "must be a non-empty string")
        task_type = self.task_types.get(request.type)
        check_storable("payload", request.payload)
        task_type.validate(request.payload)
        check_payload(request.payload)
        if not isinstance(request.cron, str):
            raise InvalidInput("cron", "must be a string")
        try:
            self.calendar.check(request.cron)
        except ValueError as exc:
            raise InvalidInput(
                "cron", f"{request.cron!r} is not a cron expression: {exc}"
            ) from None
        check_timezone(request.timezone)
        try:
            missed = MissedFires(request.missed)
        except ValueError:
            choices = " or ".join(repr(m.value) for m in MissedFires)
            raise InvalidInput("missed", f"must be {choices}, not {request.missed!r}") from None
        if not isinstance(request.enabled, bool):
            raise InvalidInput("enabled", "must be true or false")
        return Schedule(
            name=request.name,
            type=request.type,
            cron=" ".join(request.cron.split()),
            created_at=now,
            payload=request.payload,
            timezone=request.timezone,
            missed=missed,
            enabled=request.enabled,
            declared=declared,
        )


def check_name(name: object) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            "name",
            "must start with a letter or digit and hold only letters, digits, '.', '_', ':' "
            "and '-'",
        )
    if len(name) > MAX_SCHEDULE_NAME_LENGTH:
        raise InvalidInput("name", f"must be at most {MAX_SCHEDULE_NAME_LENGTH} characters")


def check_timezone(timezone: object) -> None:
    if not isinstance(timezone, str) or not timezone:
        raise InvalidInput("timezone", "must be an IANA timezone name such as 'Europe/Paris'")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "timezone", f"unknown timezone {timezone!r}: give an IANA name such as 'Europe/Paris'"
        ) from None


def declared_requests(declarations: Mapping[str, tuple[str, str]]) -> list[ScheduleRequest]:
    """Schedules declared on task types (``{type: (cron, timezone)}``): each named after
    its type, with no payload."""
    return [
        ScheduleRequest(name=name, type=name, cron=cron, timezone=timezone)
        for name, (cron, timezone) in sorted(declarations.items())
    ]


def adopt(declared: Schedule, stored: Schedule | None) -> Schedule | None:
    """What to store for a declaration when ``stored`` is there: the declaration when
    nothing is stored, the new declaration (keeping what was settled and whether it is
    enabled) when a declared one changed, else None (unchanged, or taken over through
    the API, which wins)."""
    if stored is None:
        return declared
    if not stored.declared or stored.same_definition(declared):
        return None
    return replace(
        declared,
        created_at=stored.created_at,
        fired_through=stored.fired_through,
        enabled=stored.enabled,
    )
