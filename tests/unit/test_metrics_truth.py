"""What /metrics counts: dead_letter_tasks are FAILED tasks, dead_letter_queue_depth the
messages of the dead-letter queue (poison included); they differ, and each stays true."""

from __future__ import annotations

from typing import Any

import httpx

from bootstrap.container import Container
from domain.errors import PermanentTaskError
from domain.models import TaskStatus
from tests.support.worker_rig import WorkerRig


def refuse(payload: Any) -> Any:
    raise PermanentTaskError("the downstream service said no")


async def test_dead_letter_tasks_counts_failed_tasks_not_queue_messages() -> None:
    rig = WorkerRig()
    rig.handler("refused", refuse)
    failed = [await rig.submit("refused", i) for i in range(5)]
    await rig.process_visible()
    # Two poison bodies: the dead-letter queue holds more messages than there are
    # FAILED tasks.
    await rig.queue.send_raw("not an envelope")  # type: ignore[attr-defined]
    await rig.queue.send_raw("{}")  # type: ignore[attr-defined]
    await rig.process_visible()

    metrics = await rig.service.metrics()
    assert metrics.counts[TaskStatus.FAILED] == 5
    assert metrics.dead_letter_tasks == 5
    assert metrics.dead_letter_queue_depth == 7

    await rig.service.retry(failed[0].id, extra_attempts=1)
    metrics = await rig.service.metrics()
    assert metrics.dead_letter_tasks == 4, "a retried task leaves the dead-letter view"


async def test_metrics_answers_both_dead_letter_fields(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    """The HTTP mapping: a dead-lettered message of a PENDING task is in the queue's
    depth, not among the dead-letter tasks (the field the original service had)."""
    created = await http_client.post("/tasks", json={"type": "email", "payload": "a@b.io"})
    assert created.status_code == 201
    queue = http_container.queue()
    [delivery] = await queue.receive(max_messages=1, visibility_timeout=30, wait_seconds=0)
    await queue.dead_letter(delivery, reason="poison")

    metrics = (await http_client.get("/metrics")).json()

    assert (metrics["dead_letter_tasks"], metrics["dead_letter_queue_depth"]) == (0, 1)


async def test_the_readme_recipe_makes_a_failed_task_to_retry(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    """README: an image that was never uploaded -> FAILED at once (no race with a
    timeout), then retry's max_attempts adds attempts to those spent."""
    created = await http_client.post(
        "/tasks",
        json={"type": "image-resize", "payload": "never-uploaded.png", "max_attempts": 1},
    )
    task_id = created.json()["id"]
    queue = http_container.queue()
    [delivery] = await queue.receive(max_messages=1, visibility_timeout=30, wait_seconds=0)
    await http_container.processor().process(delivery)

    failed = (await http_client.get(f"/tasks/{task_id}")).json()
    assert failed["status"] == "FAILED" and "not found in the blob store" in failed["error"]
    metrics = (await http_client.get("/metrics")).json()
    assert (metrics["dead_letter_tasks"], metrics["dead_letter_queue_depth"]) == (1, 1)

    retried = await http_client.post(f"/tasks/{task_id}/retry", json={"max_attempts": 5})
    assert (retried.json()["status"], retried.json()["max_attempts"]) == ("PENDING", 6)
