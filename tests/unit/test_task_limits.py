"""A task's payload and result are limited to MAX_TASK_DATA_BYTES of JSON on every
backend: a larger payload is refused at submit naming the limit; a larger result fails
its task once, permanently, instead of failing the store's write on every attempt.
The service itself keeps larger ones as blobs (the claim check): its limit is then
TASKQ_MAX_BLOB_BYTES."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from domain.errors import InvalidInput
from domain.limits import MAX_TASK_DATA_BYTES, encoded_size
from domain.models import TaskStatus
from domain.processing import Outcome
from tests.support.worker_rig import WorkerRig

AT_LIMIT = "x" * (MAX_TASK_DATA_BYTES - 2)  # two bytes of quotes
JUST_OVER = AT_LIMIT + "x"


def test_the_limit_is_measured_as_the_stores_write_json() -> None:
    assert encoded_size(AT_LIMIT) == MAX_TASK_DATA_BYTES
    assert encoded_size({"a": [1, 2]}) == len('{"a": [1, 2]}')
    assert encoded_size("é") == 4, "UTF-8 bytes, not characters"
    assert encoded_size(object()) is None


async def test_a_payload_over_the_limit_is_refused_naming_the_limit() -> None:
    rig = WorkerRig()
    rig.handler("echo", lambda payload: payload)
    with pytest.raises(InvalidInput) as refused:
        await rig.submit("echo", {"blob": JUST_OVER})
    assert refused.value.field == "payload"
    assert f"{MAX_TASK_DATA_BYTES:,}" in refused.value.message
    assert "400 KB" in refused.value.message
    assert sum((await rig.repository.count_by_status()).values()) == 0
    assert (await rig.queue.depth()).total == 0

    accepted = await rig.submit("echo", AT_LIMIT)
    assert accepted.status is TaskStatus.PENDING


async def test_a_result_over_the_limit_fails_the_task_once_permanently() -> None:
    rig = WorkerRig()
    runs: list[Any] = []

    def too_much(payload: Any) -> Any:
        runs.append(payload)
        return JUST_OVER

    rig.handler("too-much", too_much)
    task = await rig.submit("too-much", None, max_attempts=3)

    assert await rig.process_visible() == [Outcome.FAILED]
    failed = await rig.repository.get(task.id)
    assert failed.status is TaskStatus.FAILED
    assert (failed.attempts, len(runs), failed.result) == (1, 1, None)
    assert failed.error is not None
    assert "result is too large" in failed.error
    assert f"{MAX_TASK_DATA_BYTES:,}" in failed.error
    assert await rig.queue.dead_letter_count() == 1


async def test_a_result_at_the_limit_completes() -> None:
    rig = WorkerRig()
    rig.handler("just-enough", lambda payload: AT_LIMIT)
    task = await rig.submit("just-enough")
    assert await rig.process_visible() == [Outcome.COMPLETED]
    assert (await rig.repository.get(task.id)).result == AT_LIMIT


async def test_the_service_keeps_a_payload_over_the_limit_as_a_blob(
    http_client: httpx.AsyncClient,
) -> None:
    """The service wraps its store in the claim check (adapters/claim_check.py): past
    TASKQ_INLINE_LIMIT a payload is a blob, limited by TASKQ_MAX_BLOB_BYTES
    (tests/contract/test_claim_check.py: the 422 past it)."""
    response = await http_client.post(
        "/tasks", json={"type": "data-export", "payload": {"dataset": "tasks", "type": JUST_OVER}}
    )
    assert response.status_code == 201, response.text[:300]
    assert response.json()["payload"]["type"] == JUST_OVER
