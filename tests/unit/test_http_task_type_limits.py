"""``PUT /task-types/{type}`` and the limits ``GET /task-types`` shows: the HTTP mapping
(the rules are tested on the use case: test_flow_gate.py, test_flow_control.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dependency_injector import providers

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.flow_control import FlowLimits
from domain.models import JSON
from domain.task_types import HandlerRegistry, TaskType
from entrypoints.http.app import create_app
from tests.support.http_app import Serve


async def noop(payload: JSON) -> JSON:
    return None


def container() -> Container:
    task_types = HandlerRegistry()
    task_types.add(replace(TaskType("report", noop), flow=FlowLimits(max_concurrency=3, rate=2)))
    task_types.add(TaskType("plain", noop))
    built = build_container(Settings(backend="memory"))
    built.task_types.override(providers.Object(task_types))
    return built


def listed(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in body["task_types"] if t["type"] == name)


async def test_the_decorator_limits_are_listed_and_an_operator_changes_them(serve: Serve) -> None:
    async with serve(create_app(container())) as client:
        report = listed((await client.get("/task-types")).json(), "report")
        assert (report["max_concurrency"], report["rate"], report["running"]) == (3, 2.0, 0)

        changed = await client.put("/task-types/report", json={"paused": True, "rate": None})
        assert changed.status_code == 200, changed.text
        assert changed.json()["paused"] is True
        assert changed.json()["rate"] is None  # null removes the limit
        assert changed.json()["max_concurrency"] == 3  # unnamed: kept

        report = listed((await client.get("/task-types")).json(), "report")
        assert (report["paused"], report["rate"], report["max_concurrency"]) == (True, None, 3)
        resumed = await client.put("/task-types/report", json={"paused": False, "burst": 4})
        assert (resumed.json()["paused"], resumed.json()["burst"]) == (False, 4)


async def test_a_change_of_an_unknown_type_is_404_naming_it(serve: Serve) -> None:
    async with serve(create_app(container())) as client:
        response = await client.put("/task-types/nope", json={"paused": True})
    assert response.status_code == 404
    assert "'nope'" in response.json()["error"] and "report" in response.json()["error"]


async def test_a_bad_setting_is_422_naming_it(serve: Serve) -> None:
    async with serve(create_app(container())) as client:
        for body, field in [
            ({"max_concurency": 2}, "max_concurency"),
            ({"max_concurrency": 0}, "max_concurrency"),
            ({"max_concurrency": "2"}, "max_concurrency"),
            ({"rate": -1}, "rate"),
            ({"paused": "yes"}, "paused"),
        ]:
            response = await client.put("/task-types/plain", json=body)
            assert response.status_code == 422, (body, response.text)
            assert field in response.json()["error"], (body, response.text)
        not_json = await client.put("/task-types/plain", content=b"[1]")
        assert not_json.status_code in (400, 422)


async def test_metrics_show_limits_and_paused_types_in_json_and_prometheus(serve: Serve) -> None:
    async with serve(create_app(container())) as client:
        await client.put("/task-types/plain", json={"paused": True})
        body = (await client.get("/metrics")).json()
        text = (await client.get("/metrics", headers={"Accept": "text/plain"})).text

    assert body["task_types"]["plain"]["paused"] is True
    assert body["task_types"]["report"]["max_concurrency"] == 3
    assert body["task_types"]["report"]["running"] == 0
    assert 'taskq_task_type_paused{type="plain"} 1.0' in text
    assert 'taskq_task_type_paused{type="report"} 0.0' in text
    assert 'taskq_task_type_max_concurrency{type="report"} 3.0' in text
    assert 'taskq_task_type_rate{type="report"} 2.0' in text
