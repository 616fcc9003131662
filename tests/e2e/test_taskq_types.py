"""``mypy --strict`` on a sample application infers the types a producer relies on:
``resize.submit(..., client=...)`` gives ``TaskHandle[ResizeOut]`` (awaited) or
``SyncTaskHandle[ResizeOut]``, and ``result()`` a ``ResizeOut``; a wrong input is an
error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT

pytestmark = pytest.mark.e2e

APPLICATION = """
from __future__ import annotations

from pydantic import BaseModel

import taskq


class ResizeIn(BaseModel):
    image: str
    width: int


class ResizeOut(BaseModel):
    key: str


@taskq.task("resize", timeout=60, max_attempts=5)
async def resize(inp: ResizeIn, ctx: taskq.TaskContext) -> ResizeOut:
    return ResizeOut(key=inp.image)


@taskq.task("count")
def count(words: list[str]) -> int:
    return len(words)


async def produce(client: taskq.AsyncClient) -> None:
    handle = await resize.submit(ResizeIn(image="a.png", width=8), client=client, max_attempts=2)
    reveal_type(handle)
    reveal_type(await handle.result(timeout=30))
    untyped = await client.submit("email", "a@b.io")
    reveal_type(untyped)


def produce_sync(client: taskq.Client) -> None:
    handle = resize.submit(ResizeIn(image="a.png", width=8), client=client)
    reveal_type(handle)
    reveal_type(handle.result())
    reveal_type(count.submit(["a", "b"], client=client).result())
    reveal_type(client.submit("email", "a@b.io", parse=str).result())
"""
MISTAKES = """
from app import ResizeIn, count, resize

import taskq


def wrong(client: taskq.Client) -> None:
    resize.submit({"image": "a.png"}, client=client)
    count.submit(["a"], client=client, max_attempt=3)
    out: str = resize.submit(ResizeIn(image="a.png", width=8), client=client).result()
"""


def mypy(tmp_path: Path, module: str, kind: str) -> list[tuple[int, str]]:
    """mypy's ``kind`` lines ("note", "error") on ``module``: (line number, text)."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", f"{module}.py"],
        cwd=tmp_path,
        # This checkout's taskq, not the one an editable install may point at.
        env={**os.environ, "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = re.findall(rf"^{module}\.py:(\d+): {kind}: (.*)$", done.stdout, re.MULTILINE)
    return [(int(line), text) for line, text in found]


def test_mypy_infers_the_handles_and_results(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APPLICATION)
    (tmp_path / "mistakes.py").write_text(MISTAKES)

    assert mypy(tmp_path, "app", "error") == []
    assert [text for _, text in mypy(tmp_path, "app", "note")] == [
        'Revealed type is "taskq.handles.TaskHandle[app.ResizeOut]"',
        'Revealed type is "app.ResizeOut"',
        'Revealed type is "taskq.handles.TaskHandle[Any]"',
        'Revealed type is "taskq.handles.SyncTaskHandle[app.ResizeOut]"',
        'Revealed type is "app.ResizeOut"',
        'Revealed type is "int"',
        'Revealed type is "str"',
    ]
    errors = mypy(tmp_path, "mistakes", "error")
    assert sorted({line for line, _ in errors}) == [8, 9, 10]  # each mistake, no other line
    text = "\n".join(message for _, message in errors)
    assert 'No overload variant of "submit" of "TypedTask" matches argument types "dict' in text
    assert 'Unexpected keyword argument "max_attempt"' in text
    assert 'expression has type "ResizeOut", variable has type "str"' in text
