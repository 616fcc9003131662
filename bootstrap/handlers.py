"""The task types a process knows: the built-in ones, and those of the ``TASKQ_HANDLERS``
modules, registered with ``domain.task_types.task_type`` or defined with ``taskq.task``.

Importing a module registers its ``task_type`` handlers; its ``taskq.task`` definitions
(any module attribute that carries one) are collected after it is imported and made
task types by ``adapters/handlers/typed.py``.

Before anything is imported, the application's own top-level packages are checked
against the engine's (``domain``, ``adapters``, ...): two packages of one name cannot
both be imported, and the application's would otherwise fail deep inside with a
``ModuleNotFoundError`` that names neither.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from adapters.handlers.typed import typed_task_type
from domain.task_types import HandlerRegistry, default_task_types
from taskq.definition import definition_of

ENGINE_PACKAGES = ("domain", "adapters", "entrypoints", "bootstrap")
"""The engine's own top-level packages: an application may not have one of these names."""


class HandlerSetupError(Exception):
    """The ``TASKQ_HANDLERS`` modules cannot be loaded as they are (a package named like
    one of the engine's, two task types of one name); the message says what to change."""


def load_task_types(
    handler_modules: list[str],
    max_attempts_limit: int | None = None,
    *,
    builtins: Callable[[HandlerRegistry], HandlerRegistry],
) -> HandlerRegistry:
    """The built-in types plus every type the ``TASKQ_HANDLERS`` modules define.

    Modules are found among the installed packages and, as ``python -m`` and uvicorn
    do, in the current directory: the installed ``taskq`` script's own path is its bin
    directory, where a team's ``mypkg/tasks.py`` is not.

    Raises ``ImportError`` naming a module that cannot be imported, and
    ``HandlerSetupError`` for a shadowed engine package, two definitions of one name,
    or a type whose ``max_attempts`` is above ``max_attempts_limit``. ``builtins`` adds
    the built-in types (bound to what they work on) to the registry it is given.
    """
    if handler_modules and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    check_no_shadowing(handler_modules)
    modules = [_import(name) for name in handler_modules]
    task_types = builtins(default_task_types.copy())
    _add_definitions(task_types, modules, max_attempts_limit)
    return task_types


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)  # registers into default_task_types
    except ImportError as exc:
        raise ImportError(
            f"TASKQ_HANDLERS names {module!r}, which cannot be imported: {exc}"
        ) from exc


def _add_definitions(
    task_types: HandlerRegistry, modules: list[ModuleType], max_attempts_limit: int | None
) -> None:
    """Every ``taskq.task`` definition found in ``modules``, as a task type. One
    definition imported into several modules is one type."""
    found: dict[str, str] = {}  # type name -> where its definition was found
    seen: set[int] = set()
    for module in modules:
        for attribute, value in list(vars(module).items()):
            definition = definition_of(value)
            if definition is None or id(definition) in seen:
                continue
            seen.add(id(definition))
            where = f"{module.__name__}.{attribute}"
            name = definition.name
            if name in found or name in task_types:
                first = found.get(name, "a built-in type or one registered with task_type")
                raise HandlerSetupError(
                    f"two task types are named {name!r}: {first} and {where}; "
                    "a task type's name must be unique"
                )
            limit = max_attempts_limit
            if limit is not None and (definition.max_attempts or 0) > limit:
                raise HandlerSetupError(
                    f"task type {name!r} ({where}) sets max_attempts={definition.max_attempts}, "
                    f"above the limit of {limit} (TASKQ_MAX_RECEIVE_COUNT minus one)"
                )
            found[name] = where
            task_types.add(typed_task_type(definition, module=module.__name__, attribute=attribute))


def check_no_shadowing(handler_modules: list[str]) -> None:
    """Raise ``HandlerSetupError`` if the application the ``handler_modules`` belong to
    has a top-level package (or module) named like one of the engine's: it looks in
    the directory each handler module's top-level package is found in, and in the
    current directory (which is put on the path for them)."""
    roots = {Path.cwd()} if handler_modules else set()
    for module in handler_modules:
        top = _location(importlib.machinery.PathFinder.find_spec(module.split(".")[0], sys.path))
        if top is not None:
            roots.add(top.parent)
    for root in sorted(roots):
        if _is_engine_checkout(root):
            continue  # the engine's own source (installed from it): not the application's
        for package in ENGINE_PACKAGES:
            theirs = _location(importlib.machinery.PathFinder.find_spec(package, [str(root)]))
            if theirs is not None and theirs != _engine_location(package):
                raise HandlerSetupError(
                    f"the application of TASKQ_HANDLERS ({', '.join(handler_modules)}) has "
                    f"its own top-level package {package!r} at {theirs}, named like one of "
                    f"the engine's ({', '.join(ENGINE_PACKAGES)}): Python cannot import "
                    "both. Rename the application's package (for example to "
                    f"'<app>_{package}'), or move it under the application's own package"
                )


def _is_engine_checkout(root: Path) -> bool:
    """``root`` holds the engine's source: all its packages, the container among them."""
    packages = all((root / package / "__init__.py").is_file() for package in ENGINE_PACKAGES)
    return packages and (root / "bootstrap" / "container.py").is_file()


def _location(spec: importlib.machinery.ModuleSpec | None) -> Path | None:
    """The package directory (or module file) ``spec`` names, resolved. A directory
    without ``__init__.py`` (a namespace package) counts only if it holds Python files:
    a web application's ``bootstrap/`` of stylesheets is no package."""
    if spec is None:
        return None
    if spec.origin is not None and spec.origin != "namespace":
        origin = Path(spec.origin).resolve()
        return origin.parent if spec.submodule_search_locations else origin
    for directory in spec.submodule_search_locations or ():
        if any(Path(directory).glob("*.py")):
            return Path(directory).resolve()
    return None


def _engine_location(package: str) -> Path | None:
    return _location(importlib.import_module(package).__spec__)
