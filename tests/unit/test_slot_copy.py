"""Copies of frozen slotted dataclasses (domain/slot_copy.py): the same values as
``dataclasses.replace``, still frozen, on both the twin-class path and the fallback."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from domain.events import TaskEvent, TaskEventKind, new_event
from domain.models import Task, TaskStatus
from domain.slot_copy import slot_copier, slot_maker


@dataclasses.dataclass(frozen=True, slots=True)
class Base:
    a: int
    b: str = "b"


@dataclasses.dataclass(frozen=True, slots=True)
class Derived(Base):
    c: float = 0.5


def test_a_task_copy_is_what_replace_makes_and_stays_frozen() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    task = Task.create("noop", {"x": [1, 2]}, now, max_attempts=5)
    copy = slot_copier(Task)
    changed = copy(task, {"status": TaskStatus.PROCESSING, "attempts": 1, "lease_token": "t"})
    expected = dataclasses.replace(task, status=TaskStatus.PROCESSING, attempts=1, lease_token="t")
    assert type(changed) is Task
    assert changed == expected
    assert changed.payload is task.payload  # values are shared, not copied deeply
    assert task.status is TaskStatus.PENDING  # the original is unchanged
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.status = TaskStatus.FAILED  # type: ignore[misc]


def test_a_class_of_another_layout_is_copied_by_its_descriptors() -> None:
    copy = slot_copier(Derived)  # slots on two classes: no twin of the same layout
    original = Derived(1, "x", 2.0)
    changed = copy(original, {"b": "y"})
    assert type(changed) is Derived
    assert changed == Derived(1, "y", 2.0)
    assert original == Derived(1, "x", 2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.a = 3  # type: ignore[misc]


def test_only_a_class_of_one_plain_layout_gets_a_twin() -> None:
    from domain.slot_copy import _twin

    assert _twin(Base, ["a", "b"]) is not None
    assert _twin(Derived, ["a", "b", "c"]) is None  # its slots are on two classes
    changed = slot_copier(Base)(Base(1), {"a": 2})
    assert changed == Base(2) and type(changed) is Base


def test_a_made_event_is_what_its_init_makes() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    task = Task.create("noop", None, now)
    made = new_event(TaskEventKind.RETRIED, task, now, "w1", error="boom", delay_seconds=2.0)
    assert type(made) is TaskEvent
    assert made == TaskEvent(TaskEventKind.RETRIED, task, now, "w1", "boom", None, 2.0)
    assert new_event(TaskEventKind.STARTED, task, now) == TaskEvent(
        TaskEventKind.STARTED, task, now
    )  # the defaults
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.error = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        new_event(TaskEventKind.STARTED, task)  # ``at`` is required, as in __init__


@dataclasses.dataclass(frozen=True, slots=True)
class WithFactory:
    items: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class Checked:
    n: int

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError("n must not be negative")


def test_a_class_with_a_default_factory_or_a_post_init_is_made_by_its_init() -> None:
    assert slot_maker(WithFactory) is WithFactory
    assert slot_maker(Checked) is Checked  # its check runs
    with pytest.raises(ValueError):
        slot_maker(Checked)(-1)
    assert slot_maker(Derived) is Derived  # another layout: no twin
    made = slot_maker(Base)(1)
    assert made == Base(1, "b") and type(made) is Base
