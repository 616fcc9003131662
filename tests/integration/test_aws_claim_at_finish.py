"""Claim at finish on the aws backend (on by default there, ``TASKQ_CLAIM_DELAY_SECONDS``):
no-op tasks through the engine on a local endpoint, every request counted by the
benchmark's counter. Each task costs its add and one UpdateItem (PENDING -> COMPLETED),
its claim never written (the delay is set far beyond a run here)."""

from __future__ import annotations

import pytest

from benchmarks import aws_engine
from tests.support.aws import aws_endpoint

pytestmark = [pytest.mark.aws, pytest.mark.slow]

TASKS = 24


async def test_a_no_op_task_costs_one_put_and_one_update(monkeypatch: pytest.MonkeyPatch) -> None:
    # A delay no run reaches even on a loaded machine (a run still going at the delay
    # writes its claim: by design, and not what this test is about).
    monkeypatch.setenv("TASKQ_CLAIM_DELAY_SECONDS", "30")
    run = await aws_engine.run(
        aws_endpoint(), tasks=TASKS, per_table=TASKS, workers=4, producers=2, depth=8
    )
    calls = run["calls"]
    assert calls["dynamodb.UpdateItem"] == TASKS, "one write per run: no claim, the outcome"
    assert "dynamodb.TransactWriteItems" not in calls
    assert run["wru_per_task"] <= 2.3, "the add and the outcome, 1 WRU each, and little else"
