"""Copies of frozen slotted dataclasses with some fields changed, at a tenth of the cost
of ``dataclasses.replace``: no ``__init__`` (whose frozen field assignments dominate).

The copy is filled in as an instance of a plain twin class with the same slots, where
a slot store is a plain attribute store, and then becomes an instance of ``cls``
(``__class__`` may change between two classes of the same layout). Where the layout is
not the same (a class with a ``__dict__`` or extra slots), each slot is set by its
descriptor instead: the same result, 2.5 times slower."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


def slot_copier(cls: type[T]) -> Callable[[T, dict[str, Any]], T]:
    """A function ``copy(instance, changes)``: ``instance`` with ``changes`` (by field
    name) made, as a new instance of ``cls``."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    twin = _twin(cls, names)
    scope: dict[str, Any] = {"new_object": object.__new__, "cls": cls, "twin": twin}
    if twin is not None:
        body = "".join(f"    new.{n} = c['{n}'] if '{n}' in c else t.{n}\n" for n in names)
        source = f"def copy(t, c):\n    new = new_object(twin)\n{body}    new.__class__ = cls\n"
    else:
        scope.update({f"set_{n}": getattr(cls, n).__set__ for n in names})
        body = "".join(f"    set_{n}(new, c['{n}'] if '{n}' in c else t.{n})\n" for n in names)
        source = f"def copy(t, c):\n    new = new_object(cls)\n{body}"
    exec(f"{source}    return new\n", scope)
    copy: Callable[[T, dict[str, Any]], T] = scope["copy"]
    return copy


def slot_maker(cls: type[T]) -> Callable[..., T]:
    """A function that makes an instance of ``cls`` from the fields' values, as its
    ``__init__`` does (the same parameters and defaults; no ``__post_init__``, no
    default factories), without the frozen ``__init__``'s cost."""
    declared = fields(cls)  # type: ignore[arg-type]
    names = [f.name for f in declared]
    twin = _twin(cls, names)
    if twin is None or hasattr(cls, "__post_init__"):
        return cls  # its own __init__
    scope: dict[str, Any] = {"new_object": object.__new__, "cls": cls, "twin": twin}
    params = []
    for f in declared:
        if f.default is not MISSING:
            scope[f"default_{f.name}"] = f.default
            params.append(f"{f.name}=default_{f.name}")
        elif f.default_factory is not MISSING:
            return cls
        else:
            params.append(f.name)
    body = "".join(f"    new.{n} = {n}\n" for n in names)
    exec(
        f"def make({', '.join(params)}):\n    new = new_object(twin)\n{body}"
        "    new.__class__ = cls\n    return new\n",
        scope,
    )
    make: Callable[..., T] = scope["make"]
    return make


def _twin(cls: type, names: list[str]) -> type | None:
    """A plain class whose instances can become ``cls``'s (the same slots, in order, on
    the same base); None if ``cls`` has another layout."""
    if getattr(cls, "__slots__", None) != tuple(names) or cls.__bases__ != (object,):
        return None
    twin = type(f"_{cls.__name__}Twin", (), {"__slots__": tuple(names)})
    probe: object = object.__new__(twin)
    try:
        probe.__class__ = cls
    except TypeError:
        return None
    return twin
