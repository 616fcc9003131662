"""GET /metrics as a Prometheus scrape (by Accept), the request metrics' route
templates, and the opt-in access log: the HTTP mapping only."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.negotiation import (
    JSON,
    METRICS_TYPES,
    OPENMETRICS,
    PROMETHEUS_TEXT,
    preferred,
)
from tests.support.http_app import Serve, created

PROMETHEUS_SCRAPE = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        ("text/html,application/xhtml+xml,*/*;q=0.8", JSON),  # a browser
        ("text/plain; version=0.0.4", PROMETHEUS_TEXT),
        ("text/plain;version=0.0.4;q=0.3,*/*;q=0.2", PROMETHEUS_TEXT),
        (PROMETHEUS_SCRAPE, OPENMETRICS),
        ("application/json;q=0.1, application/openmetrics-text", OPENMETRICS),
        ("application/json, text/plain;q=0.9", JSON),
        ("text/*", PROMETHEUS_TEXT),
        ("image/png", JSON),  # nothing acceptable: the default
        ("text/plain;q=nonsense, */*", JSON),
    ],
)
def test_accept_chooses_the_metrics_format(accept: str | None, answer: str) -> None:
    assert preferred(accept, METRICS_TYPES) == answer


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


async def test_a_scraper_gets_the_exposition_with_the_cluster_gauges(
    http_client: httpx.AsyncClient,
) -> None:
    await created(http_client)
    await created(http_client)

    response = await http_client.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = _families(response.text)
    assert ({"status": "PENDING"}, 2.0) in families["taskq_tasks"]
    assert ({"state": "visible"}, 2.0) in families["taskq_queue_messages"]
    assert families["taskq_dead_letter_queue_depth"] == [({}, 0.0)]
    assert families["taskq_live_workers"] == [({}, 0.0)]
    submitted = dict((s["type"], v) for s, v in families["taskq_tasks_submitted"] if "type" in s)
    assert submitted["email"] == 2


async def test_openmetrics_ends_with_eof(http_client: httpx.AsyncClient) -> None:
    response = await http_client.get("/metrics", headers={"Accept": PROMETHEUS_SCRAPE})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_requests_are_counted_by_route_template_never_the_raw_path(
    http_client: httpx.AsyncClient,
) -> None:
    task = await created(http_client)
    await http_client.get(f"/tasks/{task['id']}")
    await http_client.get("/tasks/not-a-uuid")
    await http_client.get("/no/such/path")

    text = (await http_client.get("/metrics", headers={"Accept": "text/plain"})).text

    requests = {
        (s["route"], s["method"], s["status"]): v
        for s, v in _families(text)["taskq_http_requests"]
        if "route" in s
    }
    assert requests[("/tasks", "POST", "201")] == 1
    assert requests[("/tasks/{task_id}", "GET", "200")] == 1
    assert requests[("/tasks/{task_id}", "GET", "404")] == 1
    assert requests[("<unmatched>", "GET", "404")] == 1
    assert not any(task["id"] in route for route, _, _ in requests)
    latency = _families(text)["taskq_http_request_duration_seconds"]
    counts = [v for s, v in latency if s.get("route") == "/tasks" and "le" not in s]
    assert counts and counts[0] >= 1


async def test_each_container_counts_alone(serve: Serve) -> None:
    first, second = (build_container(Settings(backend="memory")) for _ in range(2))
    async with serve(create_app(first)) as client:
        await created(client)
    async with serve(create_app(second)) as client:
        text = (await client.get("/metrics", headers={"Accept": "text/plain"})).text
    submitted = [v for s, v in _families(text)["taskq_tasks_submitted"] if s.get("type") == "email"]
    assert submitted == [0.0]


async def test_the_access_log_is_opt_in_and_skips_probes(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    for enabled in (False, True):
        container = build_container(Settings(backend="memory", access_log=enabled))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="taskq.access"):
            async with serve(create_app(container)) as client:
                task = await created(client)
                await client.get(f"/tasks/{task['id']}", headers={"X-Request-Id": "req-42"})
                await client.get("/health")
                await client.get("/metrics")
        lines = [r for r in caplog.records if r.name == "taskq.access"]
        if not enabled:
            assert lines == []
            continue
        assert [r.__dict__["route"] for r in lines] == ["/tasks", "/tasks/{task_id}"]
        assert lines[1].__dict__["request_id"] == "req-42"
        assert lines[1].__dict__["status"] == 200
        assert all("Authorization" not in r.getMessage() for r in lines)


async def test_metrics_say_how_far_the_status_counts_trail_on_aws(
    http_client: httpx.AsyncClient,
) -> None:
    """Issue 16: on aws the counts come from the table's stream; /metrics says they
    trail the writes by about 2 seconds and that TTL-expired tasks leave them."""
    scrape = await http_client.get("/metrics", headers={"accept": "text/plain; version=0.0.4"})
    [help_line] = [
        line for line in scrape.text.splitlines() if line.startswith("# HELP taskq_tasks ")
    ]
    document = (await http_client.get("/openapi.json")).json()
    fields = document["components"]["schemas"]["Metrics"]["properties"]
    for text in (help_line, fields["pending_tasks"]["description"]):
        assert "about 2 seconds" in text and "TTL" in text, text
