"""A running ``taskq serve``: its Prometheus scrape matches what happened, its JSON
/metrics is unchanged, a failing task is one JSON error event with its traceback (also
on the task), and a worker-only process serves its own metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import (
    ProcessGroup,
    Server,
    free_port,
    running_server,
    wait_all_final,
)

pytestmark = pytest.mark.e2e

PROMETHEUS_ACCEPT = "text/plain; version=0.0.4"
SUBMITTED_OK = 3


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A server that ran 3 tasks that succeed, 1 that fails and 1 that times out."""
    env = {
        "TASKQ_BACKEND": "memory",
        "TASKQ_HANDLERS": "tests.e2e.observe_handlers",
        "TASKQ_LOG_FORMAT": "json",
        "TASKQ_ACCESS_LOG": "true",
    }
    with running_server(tmp_path_factory.mktemp("observe"), env=env) as server:
        with server.client() as client:
            ids: dict[str, list[str]] = {"ok": [], "fails": [], "stuck": []}
            for _ in range(SUBMITTED_OK):
                ids["ok"].append(_submit(client, "observe-ok"))
            ids["fails"].append(_submit(client, "observe-fails"))
            ids["stuck"].append(_submit(client, "observe-stuck"))
            tasks = wait_all_final(client, [i for group in ids.values() for i in group])
        yield server, {"ids": ids, "tasks": tasks}


def _submit(client: httpx.Client, task_type: str) -> str:
    response = client.post("/tasks", json={"type": task_type, "payload": {}, "max_attempts": 1})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _events(log: str) -> list[dict[str, Any]]:
    events = []
    for line in log.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))  # every structured line is JSON
    return events


def _events_of(
    finished: tuple[Server, dict[str, Any]], group: str
) -> tuple[str, list[dict[str, Any]]]:
    """The one task of ``group`` and the log events about it."""
    server, state = finished
    (task_id,) = state["ids"][group]
    return task_id, [e for e in _events(server.log()) if e.get("task_id") == task_id]


def test_the_scrape_counts_what_happened(finished: tuple[Server, dict[str, Any]]) -> None:
    server, _ = finished
    response = httpx.get(server.url + "/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.text)

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("taskq_tasks_submitted_total", type="observe-ok") == SUBMITTED_OK
    assert value("taskq_tasks_completed_total", type="observe-ok") == SUBMITTED_OK
    assert value("taskq_tasks_failed_total", type="observe-fails") == 1
    assert value("taskq_tasks_dead_lettered_total", type="observe-fails") == 1
    assert value("taskq_tasks_timed_out_total", type="observe-stuck") == 1
    assert value("taskq_task_run_seconds_count", type="observe-ok") == SUBMITTED_OK
    assert value("taskq_task_end_to_end_seconds_count", type="observe-ok") == SUBMITTED_OK
    assert value("taskq_task_queue_wait_seconds_count", type="observe-ok") == SUBMITTED_OK
    assert value("taskq_tasks", status="COMPLETED") == SUBMITTED_OK
    assert value("taskq_tasks", status="FAILED") == 2
    assert value("taskq_live_workers") == 1
    assert value("taskq_http_requests_total", route="/tasks", method="POST", status="201") == 5
    routes = {dict(labels).get("route") for (name, labels) in samples if "http" in name}
    assert "/tasks/{task_id}" in routes and not any("-" in str(r) for r in routes)  # no raw ids


def test_the_openmetrics_scrape_parses(finished: tuple[Server, dict[str, Any]]) -> None:
    server, _ = finished
    response = httpx.get(
        server.url + "/metrics",
        headers={"Accept": "application/openmetrics-text;version=1.0.0;q=0.6,*/*;q=0.2"},
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_promtool_accepts_the_scrape(finished: tuple[Server, dict[str, Any]]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    server, _ = finished
    text = httpx.get(server.url + "/metrics", headers={"Accept": PROMETHEUS_ACCEPT}).text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_json_answer_is_unchanged(finished: tuple[Server, dict[str, Any]]) -> None:
    server, _ = finished
    for accept in (None, "*/*", "application/json"):
        headers = {"Accept": accept} if accept else {}
        response = httpx.get(server.url + "/metrics", headers=headers)
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["completed_tasks"] == SUBMITTED_OK


def test_a_failing_task_is_one_error_event_with_its_traceback(
    finished: tuple[Server, dict[str, Any]],
) -> None:
    failing, events = _events_of(finished, "fails")
    errors = [e for e in events if e["level"] == "ERROR"]
    assert len(errors) == 1, events
    (error,) = errors
    assert error["event"] == "failed" and error["type"] == "observe-fails"
    assert error["attempt"] == 1 and error["worker_id"]
    assert "observe_handlers.py" in error["traceback"]
    assert "ValueError: observe-fails was told to fail" in error["traceback"]
    assert "payload" not in error and "result" not in error
    state = finished[1]
    stored = state["tasks"][failing]
    assert "ValueError: observe-fails was told to fail" in stored["traceback"]
    ok = state["tasks"][state["ids"]["ok"][0]]
    assert ok["traceback"] is None


def test_a_timeout_is_an_error_with_where_the_handler_was(
    finished: tuple[Server, dict[str, Any]],
) -> None:
    stuck, events = _events_of(finished, "stuck")
    state = finished[1]
    timed_out = [e for e in events if e["event"] == "timed_out"]
    assert len(timed_out) == 1 and timed_out[0]["level"] == "ERROR", events
    assert "in stuck_in_a_loop" in timed_out[0]["traceback"]
    assert "in stuck_in_a_loop" in state["tasks"][stuck]["traceback"]


def test_the_access_log_names_route_templates_not_probes(
    finished: tuple[Server, dict[str, Any]],
) -> None:
    server, _ = finished
    access = [e for e in _events(server.log()) if e.get("logger") == "taskq.access"]
    routes = {e["route"] for e in access}
    assert "/tasks" in routes and "/tasks/{task_id}" in routes
    assert not routes & {"/health", "/metrics"}
    assert all(e["request_id"] and e["duration_ms"] >= 0 for e in access)


def test_a_worker_serves_its_own_metrics(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "TASKQ_BACKEND": "sqlite",
        "TASKQ_SQLITE_PATH": str(tmp_path / "taskq.db"),
        "TASKQ_HANDLERS": "tests.e2e.observe_handlers",
    }
    with ProcessGroup(tmp_path, env) as group:
        group.start("worker", "--metrics-port", str(port))
        deadline = time.monotonic() + 30
        while True:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, group.logs()
                time.sleep(0.1)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert "taskq_tasks_started" in names and "taskq_task_run_seconds" in names
    assert "taskq_tasks" not in names and "taskq_live_workers" not in names  # the API's
