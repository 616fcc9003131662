"""The response built straight from a task is exactly what the documented model gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.models import Task
from domain.priorities import Priority
from domain.progress import Progress
from entrypoints.http.schemas import TaskOut, dump
from entrypoints.http.task_json import task_json

NOW = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
LATER = NOW + timedelta(seconds=5)


def _pending() -> Task:
    return Task.create("email", {"to": "a@example.com", "n": [1, 2.5, None]}, NOW)


def _every_field() -> list[Task]:
    created = _pending()
    claimed = created.claim("lease", NOW, 30)
    return [
        created,
        Task.create(
            "report",
            None,
            NOW.astimezone(timezone(timedelta(hours=2))),  # not UTC: shown in UTC
            max_attempts=5,
            timeout_seconds=7,  # an int: shown as a number like the model shows it
            run_at=LATER,
            held=True,
            priority=Priority.HIGH,
        ),
        claimed,
        claimed.report_progress(Progress.report(40, "halfway", LATER), LATER),
        claimed.report_progress(Progress.report(12.5, None, LATER), LATER),
        claimed.complete({"sent": True, "ids": ["x", "\ud800"]}, LATER),
        claimed.fail_attempt("ValueError: bad", LATER, permanent=False, traceback="tb"),
        claimed.fail("TimeoutError", LATER, traceback="stack"),
        claimed.request_cancel(LATER),
        claimed.cancel(LATER),
    ]


@pytest.mark.parametrize("task", _every_field(), ids=lambda t: f"{t.status.value}")
def test_task_json_matches_the_documented_model(task: Task) -> None:
    # As text: 7 and 7.0 are equal in Python but not on the wire; the order counts too.
    assert json.dumps(task_json(task)) == json.dumps(dump(TaskOut.of(task)))
