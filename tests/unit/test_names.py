"""Names that say what they hold (issue 11, item 8): one word never means two things."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from domain.errors import InvalidInput, TaskQueueError

ROOT = Path(__file__).resolve().parents[2]
CODE = ("domain", "adapters", "entrypoints", "bootstrap", "benchmarks", "scripts", "tests")
FORMER_MODULE = ROOT / "domain" / "registry.py"  # the re-export kept for users' imports


def python_files() -> list[Path]:
    return [
        path
        for folder in CODE
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != FORMER_MODULE
    ]


def names_bound_or_read(tree: ast.AST) -> set[str]:
    """Every variable, parameter and attribute named in ``tree``. (A keyword argument
    names the callee's parameter: ``registry=`` of prometheus_client is its name, not
    ours; our own parameters are caught where they are defined.)"""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
    return found


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_is_called_registry(path: Path) -> None:
    """A ``HandlerRegistry`` is held as ``task_types``, a ``WorkerRegistry`` as
    ``workers``: a bare ``registry`` would not say which."""
    names = names_bound_or_read(ast.parse(path.read_text()))
    assert "registry" not in names, (
        f"{path.relative_to(ROOT)}: call a HandlerRegistry task_types, a WorkerRegistry workers"
    )


WHERE_THE_OLD_NAME_LIVES = (Path(__file__).resolve(), ROOT / "domain" / "errors.py")
"""The deprecated alias is defined in one and checked in the other."""


@pytest.mark.parametrize(
    "path",
    [p for p in python_files() if p not in WHERE_THE_OLD_NAME_LIVES],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_validation_error_only_ever_means_pydantics(path: Path) -> None:
    """The domain's input error is ``InvalidInput``; ``ValidationError`` appears only as
    ``pydantic.ValidationError``, so the two can never be taken for each other."""
    tree = ast.parse(path.read_text())
    bare = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id == "ValidationError"
    ]
    imported = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and any(alias.name == "ValidationError" for alias in node.names)
    ]
    assert not bare + imported, (
        f"{path.relative_to(ROOT)} lines {bare + imported}: write pydantic.ValidationError "
        "for pydantic's, InvalidInput for the domain's"
    )


def test_the_former_name_of_invalid_input_still_works_with_a_warning() -> None:
    import domain.errors

    with pytest.deprecated_call(match="use domain.errors.InvalidInput"):
        former = domain.errors.ValidationError
    assert former is InvalidInput
    with pytest.deprecated_call():
        from domain.errors import ValidationError
    assert issubclass(ValidationError, TaskQueueError)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchError'"):
        getattr(domain.errors, "NoSuchError")  # noqa: B009
