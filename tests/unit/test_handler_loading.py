"""Loading the TASKQ_HANDLERS modules (bootstrap/handlers.py): ``taskq.task``
definitions become task types beside ``task_type`` ones; two types of one name, an
attempt budget above the limit, or an application package named like one of the
engine's are refused at start with a message that says what to change."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest

from adapters.handlers.typed import typed_task_type
from bootstrap.handlers import HandlerSetupError, load_task_types
from domain.errors import InvalidInput
from taskq import definition_of
from tests.support import typed_handlers
from tests.support.service_rig import add_builtins

_names = itertools.count()


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An application's directory, the current one (as ``taskq serve`` is run in it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def module(app_dir: Path, source: str) -> str:
    """A module of the application, with a name no other test uses: its name."""
    name = f"team_tasks_{next(_names)}"
    (app_dir / f"{name}.py").write_text(textwrap.dedent(source))
    return name


TYPED = """
    from taskq import task

    @task({name!r}, max_attempts={attempts})
    def run(numbers: list[int]) -> int:
        return sum(numbers)
"""


def test_typed_and_task_type_handlers_load_side_by_side() -> None:
    task_types = load_task_types(
        ["tests.support.typed_handlers", "tests.unit.sample_handlers"], builtins=add_builtins
    )

    assert {"typed-resize", "typed-sum", "reverse", "email"} <= set(task_types.names())
    resize = task_types.get("typed-resize")
    assert (resize.max_attempts, resize.timeout_seconds, resize.takes_context) == (5, 30, True)
    assert resize.input_schema == typed_handlers.ResizeIn.model_json_schema()
    assert task_types.get("typed-sum").output_schema == {"type": "integer"}


def test_two_definitions_of_one_name_are_refused_naming_both(app_dir: Path) -> None:
    one = module(app_dir, TYPED.format(name="twice", attempts=None))
    two = module(app_dir, TYPED.format(name="twice", attempts=None))

    with pytest.raises(HandlerSetupError) as refused:
        load_task_types([one, two], builtins=add_builtins)

    assert str(refused.value) == (
        f"two task types are named 'twice': {one}.run and {two}.run; a task type's name "
        "must be unique"
    )


def test_a_definition_named_like_a_built_in_type_is_refused(app_dir: Path) -> None:
    name = module(app_dir, TYPED.format(name="email", attempts=None))

    with pytest.raises(HandlerSetupError, match="two task types are named 'email'"):
        load_task_types([name], builtins=add_builtins)


def test_one_definition_imported_into_two_modules_is_one_type(app_dir: Path) -> None:
    first = module(app_dir, TYPED.format(name="shared", attempts=None))
    second = module(app_dir, f"from {first} import run as also_run\n")

    assert "shared" in load_task_types([first, second], builtins=add_builtins)


def test_an_attempt_budget_above_the_limit_is_refused(app_dir: Path) -> None:
    name = module(app_dir, TYPED.format(name="greedy", attempts=25))

    with pytest.raises(HandlerSetupError) as refused:
        load_task_types([name], 19, builtins=add_builtins)

    assert "task type 'greedy'" in str(refused.value)
    assert "max_attempts=25, above the limit of 19" in str(refused.value)


def test_an_application_package_named_like_the_engines_is_refused_naming_its_path(
    app_dir: Path,
) -> None:
    (app_dir / "domain").mkdir()
    (app_dir / "domain" / "__init__.py").write_text("")
    (app_dir / "domain" / "rules.py").write_text("LIMIT = 3\n")
    name = module(app_dir, "from domain.rules import LIMIT\n")

    with pytest.raises(HandlerSetupError) as refused:
        load_task_types([name], builtins=add_builtins)

    message = str(refused.value)
    assert f"has its own top-level package 'domain' at {(app_dir / 'domain').resolve()}" in message
    assert "Rename the application's package" in message


def test_a_checkout_of_the_engine_itself_is_not_a_shadow(app_dir: Path) -> None:
    """``pip install .`` from a checkout, then ``taskq serve`` run in it: the checkout's
    packages are the engine's own source, not an application's."""
    for package in ("domain", "adapters", "entrypoints", "bootstrap"):
        (app_dir / package).mkdir()
        (app_dir / package / "__init__.py").write_text("")
    (app_dir / "bootstrap" / "container.py").write_text("")
    name = module(app_dir, TYPED.format(name="from-a-checkout", attempts=None))

    assert "from-a-checkout" in load_task_types([name], builtins=add_builtins)


def test_a_directory_without_python_files_is_no_package(app_dir: Path) -> None:
    (app_dir / "bootstrap" / "css").mkdir(parents=True)
    (app_dir / "bootstrap" / "css" / "bootstrap.min.css").write_text("body {}\n")
    name = module(app_dir, TYPED.format(name="styled", attempts=None))

    assert "styled" in load_task_types([name], builtins=add_builtins)


def test_a_payload_that_does_not_fit_names_each_location() -> None:
    definition = definition_of(typed_handlers.resize)
    assert definition is not None
    resize = typed_task_type(definition, module="m", attribute="a")

    with pytest.raises(InvalidInput) as refused:
        resize.validate({"image": "a.png", "width": "wide", "height": 1, "extra": {}})

    assert refused.value.field == "payload.width"
    assert refused.value.message == (
        "Input should be a valid integer, unable to parse string as an integer"
    )
