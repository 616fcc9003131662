"""``TASKQ_METRICS=false``: no request middleware, no task event counting; ``/metrics``
keeps its JSON and the cluster gauges, failures are still logged, the access log still
works when asked for."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from adapters.observability.task_log import TaskEventLog
from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.waiting import CompletionWaiters
from entrypoints.http.app import create_app
from entrypoints.http.observe import ObserveMiddleware
from tests.support.http_app import Serve, created


def observing(app: Starlette) -> bool:
    """Whether the app has the request metrics / access log middleware."""
    return any(
        getattr(m.cls, "__name__", "") == ObserveMiddleware.__name__ for m in app.user_middleware
    )


def test_the_setting_reads_taskq_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().metrics is True
    monkeypatch.setenv("TASKQ_METRICS", "false")
    assert Settings().metrics is False


async def test_metrics_off_keeps_the_json_and_the_cluster_gauges(serve: Serve) -> None:
    container = build_container(Settings(backend="memory", metrics=False))
    app = create_app(container)
    assert not observing(app)
    observers = container.task_events().observers
    kinds = [type(o) for o in observers]
    assert kinds == [TaskEventLog, CompletionWaiters], "failures are still logged"

    async with serve(app) as client:
        await created(client)
        metrics = (await client.get("/metrics")).json()
        text = (await client.get("/metrics", headers={"Accept": "text/plain"})).text

    assert (metrics["total_tasks"], metrics["pending_tasks"]) == (1, 1)
    assert metrics["oldest_due_task_age_seconds"] >= 0
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"taskq_tasks", "taskq_oldest_due_task_age_seconds"} <= names
    assert not {"taskq_http_requests", "taskq_tasks_submitted"} & names


async def test_metrics_on_by_default(serve: Serve) -> None:
    container = build_container(Settings(backend="memory"))
    app = create_app(container)
    assert observing(app)
    assert len(container.task_events().observers) == 3  # metrics, log, waiters


async def test_the_access_log_works_with_metrics_off(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    container = build_container(Settings(backend="memory", metrics=False, access_log=True))
    with caplog.at_level(logging.INFO, logger="taskq.access"):
        async with serve(create_app(container)) as client:
            await created(client)
    lines = [r for r in caplog.records if r.name == "taskq.access"]
    assert [r.__dict__["route"] for r in lines] == ["/tasks"]
