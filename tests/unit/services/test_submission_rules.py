"""The submission rules alone: pure, no store, no queue, no clock (``now`` is given)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import InvalidInput
from domain.models import TaskStatus
from domain.submission import SubmissionRules, SubmitRequest
from tests.support.service_rig import sample_task_types

NOW = datetime(2026, 1, 1, tzinfo=UTC)
RULES = SubmissionRules(
    sample_task_types(),
    default_max_attempts=3,
    max_attempts_limit=5,
    max_queue_delay_seconds=900,
    max_timeout_seconds=60,
    max_delay_seconds=3600,
)


def test_a_valid_request_becomes_a_pending_task_due_now() -> None:
    valid = RULES.validate_and_build(SubmitRequest(type="email", payload="a@b.co"), NOW)
    assert (valid.task.status, valid.task.max_attempts, valid.queue_delay) == (
        TaskStatus.PENDING,
        3,
        0,
    )
    assert valid.task.created_at == NOW


@pytest.mark.parametrize(
    ("delay", "queue_delay", "held"),
    [(0, 0, False), (899.2, 900, False), (901, None, True)],
)
def test_the_queue_delay_or_holding_follows_the_horizon(
    delay: float, queue_delay: int | None, held: bool
) -> None:
    valid = RULES.validate_and_build(
        SubmitRequest(type="email", payload="a@b.co", delay_seconds=delay), NOW
    )
    assert (valid.queue_delay, valid.task.held) == (queue_delay, held)
    if delay:
        assert valid.task.run_at == NOW + timedelta(seconds=queue_delay or 901)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": " "}, "type"),
        ({"max_attempts": 6, "timeout_seconds": 0}, "max_attempts"),
        ({"timeout_seconds": 61, "delay_seconds": -1}, "timeout_seconds"),
        ({"delay_seconds": 3601}, "delay_seconds"),
        ({"run_at": NOW.replace(tzinfo=None)}, "run_at"),
    ],
)
def test_the_first_wrong_field_is_named(changes: dict[str, object], field: str) -> None:
    request = SubmitRequest(**{"type": "email", "payload": "a@b.co", **changes})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as caught:
        RULES.validate_and_build(request, NOW)
    assert caught.value.field == field


def test_an_attempt_budget_defaults_and_is_bounded() -> None:
    assert RULES.check_max_attempts(None) == 3
    with pytest.raises(InvalidInput, match="between 1 and 5"):
        RULES.check_max_attempts(6)
