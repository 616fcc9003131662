"""Task types defined with ``taskq.task``, run by a real worker on the memory and SQLite
backends and driven over real HTTP: typed input validated at submit (422 naming the
location), typed output stored as JSON, the type's attempt budget as the default, and
the handler context (progress on the task, cancellation seen by the handler)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.clock import ManualClock
from adapters.isolation import ProcessHandlerSandbox
from bootstrap.handlers import load_task_types
from domain.models import Task
from domain.progress import Progress
from domain.run_context import RunContext
from tests.support import typed_handlers
from tests.support.service_rig import add_builtins
from tests.support.typed_service import HANDLERS, submitted, task_when, typed_service

BACKENDS = ["memory", "sqlite"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_typed_task_runs_and_stores_its_typed_result(backend: str, tmp_path: Path) -> None:
    async with typed_service(backend, tmp_path) as (client, _):
        task = await submitted(
            client, "typed-resize", {"image": "cat.png", "width": 3, "height": "2"}
        )
        done = await task_when(client, task["id"], "COMPLETED", "FAILED")
        summed = await submitted(client, "typed-sum", [1, 2, 3])
        total = await task_when(client, summed["id"], "COMPLETED", "FAILED")

    assert done["status"] == "COMPLETED", done
    assert done["result"] == {"key": "cat.png@3x2", "pixels": 6}
    assert done["progress"]["percent"] == 50
    assert done["progress"]["message"] == "resizing cat.png"
    assert done["progress"]["updated_at"].endswith("Z")
    # The payload is stored as sent; the function got it parsed ("2" as the int 2).
    assert done["payload"] == {"image": "cat.png", "width": 3, "height": "2"}
    assert (total["status"], total["result"]) == ("COMPLETED", 6)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_payload_that_does_not_fit_the_input_type_is_refused_at_submit(
    backend: str, tmp_path: Path
) -> None:
    async with typed_service(backend, tmp_path) as (client, _):
        missing = await client.post(
            "/tasks", json={"type": "typed-resize", "payload": {"image": "a.png", "width": 3}}
        )
        two = await client.post(
            "/tasks",
            json={"type": "typed-resize", "payload": {"image": "a.png", "width": 0}},
        )
        listed = await client.post("/tasks", json={"type": "typed-sum", "payload": [1, "x"]})
        stored = (await client.get("/metrics")).json()["total_tasks"]

    assert missing.status_code == 422
    assert missing.json()["error"] == "payload.height: Field required"
    assert two.status_code == 422
    assert two.json()["error"] == (
        "payload.width: Input should be greater than or equal to 1; payload.height: Field required"
    )
    assert listed.status_code == 422
    assert listed.json()["error"] == (
        "payload[1]: Input should be a valid integer, unable to parse string as an integer"
    )
    assert stored == 0


async def test_the_task_types_max_attempts_is_the_default_of_its_tasks(tmp_path: Path) -> None:
    async with typed_service("memory", tmp_path) as (client, _):
        resize = {"image": "a.png", "width": 1, "height": 1}
        by_type = await submitted(client, "typed-resize", resize)
        asked = await client.post(
            "/tasks", json={"type": "typed-resize", "payload": resize, "max_attempts": 2}
        )
        engine_default = await submitted(client, "typed-sum", [1])

    assert by_type["max_attempts"] == 5
    assert asked.json()["max_attempts"] == 2
    assert engine_default["max_attempts"] == 3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("task_type", ["typed-hold", "typed-hold-sync"])
async def test_a_running_handler_reports_progress_and_sees_its_cancellation(
    backend: str, task_type: str, tmp_path: Path
) -> None:
    async with typed_service(backend, tmp_path) as (client, _):
        task = await submitted(client, task_type, "job-1")
        running = await task_when(client, task["id"], "PROCESSING", progress=True)
        cancel = await client.post(f"/tasks/{task['id']}/cancel")
        ended = await task_when(client, task["id"], "CANCELLED", "COMPLETED", "FAILED")

    assert running["progress"]["percent"] in (40, 25)
    assert running["progress"]["message"].startswith("holding job-1")
    assert cancel.status_code == 200
    assert ended["status"] == "CANCELLED"
    assert typed_handlers.SEEN_CANCELLED[task["id"]] is True


async def test_the_handlers_log_records_carry_the_tasks_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="taskq.handler")
    async with typed_service("memory", tmp_path) as (client, _):
        task = await submitted(client, "typed-resize", {"image": "z", "width": 1, "height": 1})
        await task_when(client, task["id"], "COMPLETED")
        await asyncio.sleep(0)

    [record] = [r for r in caplog.records if r.name == "taskq.handler"]
    assert record.getMessage() == "resized z"
    fields = vars(record)
    assert (fields["task_id"], fields["type"], fields["attempt"]) == (task["id"], "typed-resize", 1)


async def test_an_isolated_typed_task_runs_in_a_child_process_with_a_detached_context() -> None:
    sandbox = ProcessHandlerSandbox(preload=[HANDLERS])
    resize = load_task_types([HANDLERS], builtins=add_builtins).get("typed-resize")
    clock = ManualClock()
    task = Task.create("typed-resize", None, clock.now()).claim("lease", clock.now(), 30)
    reports: list[Progress] = []
    context = RunContext(task, deadline=clock.now(), clock=clock, report=reports.append)

    result = await sandbox.run(
        resize.bound_to(context), {"image": "a", "width": 2, "height": 3}, timeout_seconds=30
    )

    assert result == {"key": "a@2x3", "pixels": 6}
    assert reports == []  # in the child, progress goes nowhere
