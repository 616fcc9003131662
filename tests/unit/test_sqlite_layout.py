"""The SQLite adapter's shape: a package of small modules that read rows by column name,
with every public name still importable from ``adapters.sqlite``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "adapters" / "sqlite"
MODULES = (
    "database",
    "database_thread",
    "transaction",
    "write_lock",
    "schema",
    "codec",
    "repository",
    "queue",
    "workers",
    "flow_control",
)
MAX_LINES = 450

PUBLIC_NAMES = (
    "SqliteDatabase",
    "SqliteTaskRepository",
    "SqliteTaskQueue",
    "SqliteWorkerRegistry",
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "migrate",
    "POLL_INTERVAL_SECONDS",
    "PURGE_CHUNK",
    "MAX_OPS_PER_TRANSACTION",
    "DEFAULT_BUSY_TIMEOUT_MS",
    "DEFAULT_WRITE_LOCK_WAIT_SECONDS",
    "WriteLockStats",
)


def test_the_sqlite_adapter_is_a_package_of_one_module_per_concept() -> None:
    assert PACKAGE.is_dir()
    assert {path.stem for path in PACKAGE.glob("*.py")} == {"__init__", *MODULES}
    too_long = {
        path.name: lines
        for path in PACKAGE.glob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_public_name_is_importable_from_the_package(name: str) -> None:
    package = importlib.import_module("adapters.sqlite")
    assert getattr(package, name) is not None
    assert name in package.__all__


def _positional_reads(source: str) -> list[int]:
    """Lines that index something by an integer literal (``row[0]``, ``row[-1]``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Subscript):
            continue
        index = node.slice
        if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub):
            index = index.operand
        if isinstance(index, ast.Constant) and isinstance(index.value, int):
            lines.append(node.lineno)
    return lines


def test_the_check_for_positional_reads_finds_them() -> None:
    assert _positional_reads("a = row[19]\nb = conn.execute(q).fetchone()[0]\nc = x[-1]") == [
        1,
        2,
        3,
    ]
    assert _positional_reads("a = row['id']\nb = rows[limit - 1]") == []


@pytest.mark.parametrize("module", MODULES)
def test_rows_are_read_by_column_name_never_by_position(module: str) -> None:
    assert _positional_reads((PACKAGE / f"{module}.py").read_text()) == []
