"""MAX_TASK_DATA_BYTES on SQS + DynamoDB (a real local endpoint): the limit is chosen so
that a task with payload and result both at the limit is one storable DynamoDB item, and
a result just over it fails its task once, permanently, instead of failing the store's
write on every attempt (three runs, then "lease expired")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.dynamodb import DynamoDbTaskRepository
from adapters.sqs import SqsTaskQueue
from domain.limits import MAX_TASK_DATA_BYTES
from domain.models import TaskStatus
from domain.processing import Outcome
from tests.support.aws import AwsResources, aws_endpoint, fresh_resources
from tests.support.worker_rig import WorkerRig

pytestmark = pytest.mark.aws

AT_LIMIT = "x" * (MAX_TASK_DATA_BYTES - 2)


@pytest.fixture
def rig() -> Iterator[WorkerRig]:
    with fresh_resources(aws_endpoint()) as aws:
        yield on_aws(aws)


def on_aws(aws: AwsResources) -> WorkerRig:
    return WorkerRig(
        repository=DynamoDbTaskRepository(aws.dynamodb, aws.table_name),
        queue=SqsTaskQueue(aws.sqs, aws.provisioned.queue_url, aws.provisioned.dlq_url),
    )


@pytest.mark.parametrize(
    "result_bytes",
    [MAX_TASK_DATA_BYTES + 1, 500_000],
    ids=["just over the limit", "over DynamoDB's own limit"],
)
async def test_a_result_over_the_limit_fails_once_permanently(
    rig: WorkerRig, result_bytes: int
) -> None:
    runs: list[Any] = []

    def too_much(payload: Any) -> Any:
        runs.append(payload)
        return "x" * (result_bytes - 2)

    rig.handler("too-much", too_much)
    task = await rig.submit("too-much", AT_LIMIT, max_attempts=3)

    assert await rig.process_visible() == [Outcome.FAILED]
    failed = await rig.repository.get(task.id)
    assert failed.status is TaskStatus.FAILED
    assert (failed.attempts, len(runs)) == (1, 1)
    assert failed.error is not None and "result is too large" in failed.error
    assert f"{MAX_TASK_DATA_BYTES:,}" in failed.error
    assert (await rig.queue.depth()).total == 0, "nothing is delivered again"
    assert await rig.queue.dead_letter_count() == 1


async def test_payload_and_result_at_the_limit_fit_one_dynamodb_item(rig: WorkerRig) -> None:
    rig.handler("just-enough", lambda payload: "y" * (MAX_TASK_DATA_BYTES - 2))
    task = await rig.submit("just-enough", AT_LIMIT)
    assert await rig.process_visible() == [Outcome.COMPLETED]
    done = await rig.repository.get(task.id)
    assert (done.status, done.payload, len(done.result)) == (
        TaskStatus.COMPLETED,
        AT_LIMIT,
        MAX_TASK_DATA_BYTES - 2,
    )
