"""Back-pressure (issue 18): past TASKQ_MAX_BACKLOG accepted, unstarted tasks, a local
backend answers 503 with Retry-After instead of growing without bound; /metrics shows
the bound and the refusals."""

from __future__ import annotations

import httpx
import pydantic
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bootstrap.container import build_container
from bootstrap.settings import Settings
from domain.limits import DEFAULT_MEMORY_MAX_BACKLOG
from entrypoints.http.app import create_app
from tests.support.http_app import Serve, completed, processing

NOOP = {"type": "email", "payload": "a@b.io"}


async def test_past_the_bound_a_submission_is_503_with_retry_after(serve: Serve) -> None:
    container = build_container(Settings(backend="memory", max_backlog=2))
    async with serve(create_app(container)) as client:
        first = await client.post("/tasks", json=NOOP)
        await client.post("/tasks", json=NOOP)
        refused = await client.post("/tasks", json=NOOP)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"].isdigit()
        error = refused.json()["error"]
        assert "backlog is full" in error and "TASKQ_MAX_BACKLOG" in error
        # nothing was created by the refused request
        assert (await client.get("/metrics")).json()["total_tasks"] == 2
        # a started task leaves the backlog: there is room again
        await processing(container, first.json()["id"])
        assert (await client.post("/tasks", json=NOOP)).status_code == 201


async def test_a_batch_that_would_pass_the_bound_is_refused_whole(serve: Serve) -> None:
    container = build_container(Settings(backend="memory", max_backlog=3))
    async with serve(create_app(container)) as client:
        assert (await client.post("/tasks", json=NOOP)).status_code == 201
        batch = {"tasks": [NOOP, NOOP, NOOP]}
        refused = await client.post("/tasks/batch", json=batch)
        assert refused.status_code == 503, refused.text
        assert "Retry-After" in refused.headers
        assert (await client.get("/metrics")).json()["total_tasks"] == 1
        fits = await client.post("/tasks/batch", json={"tasks": [NOOP, NOOP]})
        assert [r["status"] for r in fits.json()["results"]] == [201, 201]


async def test_metrics_show_the_bound_and_the_refusals(serve: Serve) -> None:
    container = build_container(Settings(backend="memory", max_backlog=1))
    async with serve(create_app(container)) as client:
        task = (await client.post("/tasks", json=NOOP)).json()
        for _ in range(3):
            assert (await client.post("/tasks", json=NOOP)).status_code == 503
        await completed(container, task["id"])
        metrics = (await client.get("/metrics")).json()
        assert metrics["max_backlog"] == 1
        assert metrics["backlog_refusals"] == 3
        text = (await client.get("/metrics", headers={"Accept": "text/plain"})).text
    families = {
        f.name: f.samples[0].value for f in text_string_to_metric_families(text) if f.samples
    }
    assert families["taskq_max_backlog"] == 1
    assert families["taskq_backlog_refusals"] == 3


async def test_sqlite_is_unbounded_by_default_and_memory_is_not(
    http_client: httpx.AsyncClient,
) -> None:
    assert (await http_client.get("/metrics")).json()["max_backlog"] == DEFAULT_MEMORY_MAX_BACKLOG
    assert Settings(backend="sqlite").backlog_bound is None
    assert Settings(backend="sqlite", max_backlog=500).backlog_bound == 500
    assert Settings(backend="memory", max_backlog="unbounded").backlog_bound is None


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"backend": "memory", "max_backlog": 0}, "at least 1"),
        ({"backend": "aws", "max_backlog": 10}, "SQS"),
    ],
)
def test_a_bound_that_cannot_hold_is_a_clear_error(settings: dict[str, object], named: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=named):
        Settings(**settings)  # type: ignore[arg-type]


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKQ_MAX_BACKLOG", "unbounded")
    assert Settings(backend="memory").backlog_bound is None
    monkeypatch.setenv("TASKQ_MAX_BACKLOG", "250")
    assert Settings(backend="memory").backlog_bound == 250
