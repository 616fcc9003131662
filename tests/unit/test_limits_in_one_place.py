"""Every limit is named once, in ``domain/limits.py``, and says where its number comes
from; the rest of the code imports it from there (issue 11, item 5)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import domain.limits

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("domain", "adapters", "entrypoints", "bootstrap")
LIMITS = ROOT / "domain" / "limits.py"
EXEMPT: tuple[str, ...] = ()
"""Modules allowed a limit of their own: none."""

COPIED_BEFORE = {
    "MAX_BATCH",
    "MAX_DELAY_SECONDS",
    "MAX_VISIBILITY_TIMEOUT",
    "MAX_WAIT_SECONDS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAX_REASON_CHARS",
    "MAX_ITEM_BYTES",
    "MAX_BATCH_GET_KEYS",
    "MAX_BACKOFF_CAP_SECONDS",
    "MAX_RELEASE_SECONDS",
    "MAX_ERROR_LENGTH",
    "MAX_PAYLOAD_DEPTH",
    "REDRIVE_RATE",
}
"""Names the limits had in the modules that kept copies of them."""


def limit_names() -> set[str]:
    return {name for name in vars(domain.limits) if name.isupper()} | COPIED_BEFORE


def modules() -> list[Path]:
    found = [path for layer in LAYERS for path in sorted((ROOT / layer).rglob("*.py"))]
    return [
        path
        for path in found
        if path != LIMITS and not str(path.relative_to(ROOT)).startswith(EXEMPT)
    ]


def assigned_names(tree: ast.Module) -> set[str]:
    """Names bound by an assignment at module level or in a class body."""
    bodies = [tree.body] + [node.body for node in tree.body if isinstance(node, ast.ClassDef)]
    names: set[str] = set()
    for body in bodies:
        for node in body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_defines_a_limit_of_its_own(path: Path) -> None:
    tree = ast.parse(path.read_text())
    copies = assigned_names(tree) & limit_names()
    assert not copies, f"{path.relative_to(ROOT)} defines {sorted(copies)}: import them"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_constants_are_imported_from_domain_limits_not_the_use_cases(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "domain.services":
            constants = [alias.name for alias in node.names if alias.name.isupper()]
            assert not constants, f"{path.relative_to(ROOT)} imports {constants}"


def test_every_limit_says_where_its_number_comes_from() -> None:
    body = ast.parse(LIMITS.read_text()).body
    for node, after in zip(body, body[1:], strict=False):
        if isinstance(node, ast.Assign) and all(
            isinstance(t, ast.Name) and t.id.isupper() and t.id != "SOURCE" for t in node.targets
        ):
            assert isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant), (
                f"line {node.lineno}: a limit without its docstring"
            )


def test_derived_limits_follow_their_quota() -> None:
    assert domain.limits.DEFAULT_MAX_ATTEMPTS_LIMIT == domain.limits.DEFAULT_MAX_RECEIVE_COUNT - 1
    assert domain.limits.MAX_TIMEOUT_SECONDS == domain.limits.MAX_VISIBILITY_TIMEOUT_SECONDS
    assert domain.limits.MAX_BACKOFF_CAP_SECONDS == domain.limits.MAX_QUEUE_DELAY_SECONDS
    assert domain.limits.DEFAULT_MAX_MESSAGE_BYTES <= domain.limits.MAX_MESSAGE_BYTES
    assert 2 * domain.limits.MAX_TASK_DATA_BYTES < domain.limits.DYNAMODB_ITEM_BYTES
