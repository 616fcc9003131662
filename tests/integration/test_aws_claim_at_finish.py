"""Claim at finish on the aws backend (its default, ``TASKQ_CLAIM_DELAY_SECONDS`` unset):
no-op tasks through the engine on a local endpoint, every request counted by the
benchmark's counter. Each task costs one PutItem (its creation) and one UpdateItem
(PENDING -> COMPLETED), its claim never written; the reads are one GetItem a task."""

from __future__ import annotations

import pytest

from benchmarks import aws_engine
from tests.support.aws import aws_endpoint

pytestmark = [pytest.mark.aws, pytest.mark.slow]

TASKS = 24


async def test_a_no_op_task_costs_one_put_and_one_update() -> None:
    run = await aws_engine.run(
        aws_endpoint(), tasks=TASKS, per_table=TASKS, workers=4, producers=2, depth=8
    )
    calls = run["calls"]
    assert calls["dynamodb.UpdateItem"] == TASKS, "one write per run: no claim, the outcome"
    assert "dynamodb.TransactWriteItems" not in calls
    puts = calls["dynamodb.PutItem"]
    assert TASKS <= puts <= TASKS + 4, "the tasks, and a worker's registration or two"
    assert TASKS <= calls["dynamodb.GetItem"] <= TASKS + 4, "one read of each task run"
