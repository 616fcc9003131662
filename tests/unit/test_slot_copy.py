"""Copies of frozen slotted dataclasses (domain/slot_copy.py): the same values as
``dataclasses.replace``, still frozen, on both the twin-class path and the fallback."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from domain.events import TaskEvent, TaskEventKind, new_event
from domain.models import Task, TaskStatus
from domain.slot_copy import slot_copier, slot_maker, slot_updater


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


def test_an_update_sets_the_named_fields_and_the_fixed_ones_as_replace_would() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    task = Task.create("noop", {"x": 1}, now, max_attempts=5)
    update = slot_updater(Task, ("attempts", "lease_token"), {"status": TaskStatus.PROCESSING})
    changed = update(task, 1, "t")
    expected = dataclasses.replace(task, status=TaskStatus.PROCESSING, attempts=1, lease_token="t")
    assert type(changed) is Task and changed == expected
    assert task.status is TaskStatus.PENDING
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.attempts = 2  # type: ignore[misc]


def test_an_update_of_another_layout_goes_through_the_descriptors() -> None:
    changed = slot_updater(Derived, ("c",), {"b": "z"})(Derived(1, "x", 2.0), 3.0)
    assert type(changed) is Derived and changed == Derived(1, "z", 3.0)


@pytest.mark.parametrize(
    ("changing", "fixed"),
    [(("nope",), {}), (("a", "a"), {}), (("a",), {"a": 1}), ((), {"nope": 1})],
)
def test_an_update_names_each_field_once_and_only_fields(
    changing: tuple[str, ...], fixed: dict[str, int]
) -> None:
    with pytest.raises(ValueError, match="not each a field of Base once"):
        slot_updater(Base, changing, fixed)


def test_the_task_transitions_made_by_updaters_are_what_replace_makes() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    later = datetime(2026, 1, 2, 0, 0, 5, tzinfo=UTC)
    task = Task.create("noop", [1], now, max_attempts=4, timeout_seconds=9.0, task_id="t1")
    assert task == Task("t1", "noop", [1], TaskStatus.PENDING, now, now, 4, timeout_seconds=9.0)
    claimed = task.claim("lease", later, 30)
    assert claimed == dataclasses.replace(
        task,
        status=TaskStatus.PROCESSING,
        updated_at=later,
        version=1,
        attempts=1,
        started_at=later,
        lease_token="lease",
        lease_expires_at=datetime(2026, 1, 2, 0, 0, 35, tzinfo=UTC),
    )
    done = claimed.complete({"ok": True}, later)
    assert done == dataclasses.replace(
        claimed,
        status=TaskStatus.COMPLETED,
        version=2,
        lease_token=None,
        lease_expires_at=None,
        result={"ok": True},
        finished_at=later,
    )
