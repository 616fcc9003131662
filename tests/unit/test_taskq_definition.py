"""taskq.task records a definition read from the function's hints, and importing taskq
imports nothing from the engine."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pydantic
import pytest
from pydantic import BaseModel

from taskq import TaskContext, definition_of, task


class ResizeIn(BaseModel):
    image: str
    width: int


class ResizeOut(BaseModel):
    key: str


@task("resize", timeout=60, max_attempts=5)
async def resize(inp: ResizeIn, ctx: TaskContext) -> ResizeOut:
    return ResizeOut(key=f"{inp.image}-{inp.width}")


@task("legacy")
def legacy(payload):  # type: ignore[no-untyped-def]
    return payload


def test_definition_comes_from_hints() -> None:
    found = definition_of(resize)
    assert found is not None and found is resize.definition
    assert (found.name, found.timeout, found.max_attempts) == ("resize", 60, 5)
    assert found.takes_context and found.is_async
    assert found.input_schema() == ResizeIn.model_json_schema()
    assert found.parse_input({"image": "a.png", "width": "3"}) == ResizeIn(image="a.png", width=3)
    assert found.dump_output(ResizeOut(key="k")) == {"key": "k"}
    assert found.parse_output({"key": "k"}) == ResizeOut(key="k")
    with pytest.raises(pydantic.ValidationError) as caught:
        found.parse_input({"image": "a.png"})
    assert caught.value.errors()[0]["loc"] == ("width",)


def test_untyped_function_takes_any_json() -> None:
    found = legacy.definition
    assert not found.takes_context and not found.is_async
    assert found.input_schema() is None and found.output_schema() is None
    payload: Any = {"anything": [1, 2]}
    assert found.parse_input(payload) is payload
    assert legacy("x") == "x"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"timeout": 0}, "timeout must be positive"), ({"max_attempts": 0}, "at least 1")],
)
def test_bad_definition_names_the_problem(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        task("bad", **kwargs)(lambda payload: payload)


def _three(a: int, b: int, c: int) -> int:
    return a


def test_three_parameters_are_refused() -> None:
    with pytest.raises(TypeError, match="not 3 parameters"):
        task("bad")(_three)  # type: ignore[arg-type]


def test_importing_taskq_imports_no_engine_package() -> None:
    code = (
        "import sys, taskq; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'domain', 'adapters', 'entrypoints', 'bootstrap'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
