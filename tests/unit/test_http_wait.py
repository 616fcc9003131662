"""``GET /tasks/{id}?wait=N``: answered as soon as the task finishes (told by this
process's task events), else with its state when the time is up."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.errors import InvalidInput
from domain.events import TaskEvent, TaskEventKind
from domain.models import Task
from domain.waiting import CompletionWaiters, TaskWaiting
from entrypoints.http.app import create_app
from tests.support.http_app import Serve, created


async def run_one(container: Container) -> None:
    """What a worker in this process does with the next delivery."""
    [delivery] = await container.queue().receive(
        max_messages=1, visibility_timeout=30, wait_seconds=1
    )
    await container.processor().process(delivery)


async def test_wait_answers_as_soon_as_the_worker_in_this_process_completes_the_task(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    task = await created(http_client)
    started = time.monotonic()
    waiting = asyncio.create_task(http_client.get(f"/tasks/{task['id']}", params={"wait": 10}))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    assert len(http_container.completion_waiters()) == 1

    await run_one(http_container)
    response = await waiting

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "COMPLETED"
    assert response.json()["result"] == {"delivered_to": "a@b.io"}
    assert time.monotonic() - started < 3
    assert len(http_container.completion_waiters()) == 0


async def test_a_cancel_through_the_api_ends_the_wait(http_client: httpx.AsyncClient) -> None:
    task = await created(http_client)
    waiting = asyncio.create_task(http_client.get(f"/tasks/{task['id']}?wait=10"))
    await asyncio.sleep(0.1)

    assert (await http_client.post(f"/tasks/{task['id']}/cancel")).status_code == 200
    response = await asyncio.wait_for(waiting, 3)

    assert response.json()["status"] == "CANCELLED"


async def test_wait_answers_with_the_current_state_at_its_deadline(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    task = await created(http_client)
    started = time.monotonic()

    response = await http_client.get(f"/tasks/{task['id']}", params={"wait": "0.3"})

    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == "PENDING"
    assert 0.3 <= elapsed < 2
    assert len(http_container.completion_waiters()) == 0  # forgotten, not leaked


async def test_a_finished_task_is_answered_at_once(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    task = await created(http_client)
    await run_one(http_container)
    started = time.monotonic()

    response = await http_client.get(f"/tasks/{task['id']}?wait=30")

    assert response.json()["status"] == "COMPLETED"
    assert time.monotonic() - started < 1


async def test_many_waiters_on_one_task_are_all_answered(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    task = await created(http_client)
    url = f"/tasks/{task['id']}?wait=10"
    waiting = [asyncio.create_task(http_client.get(url)) for _ in range(50)]
    await asyncio.sleep(0.2)
    assert len(http_container.completion_waiters()) == 50

    await run_one(http_container)
    responses = await asyncio.wait_for(asyncio.gather(*waiting), 5)

    assert {r.json()["status"] for r in responses} == {"COMPLETED"}
    assert len(http_container.completion_waiters()) == 0


@pytest.mark.parametrize("wait", ["0", "-1", "30.5", "31", "abc", "nan", "inf", "", "1e999", "1_0"])
async def test_a_wait_out_of_range_or_not_a_number_is_a_422_naming_it(
    http_client: httpx.AsyncClient, wait: str
) -> None:
    task = await created(http_client)

    response = await http_client.get(f"/tasks/{task['id']}", params={"wait": wait})

    assert response.status_code == 422, response.text
    assert "wait" in response.json()["error"]
    assert "at most 30" in response.json()["error"]


@pytest.mark.parametrize("wait", ["30", "0.05", ".05", "1e-2", "+1"])
async def test_numbers_up_to_thirty_seconds_are_accepted(
    http_client: httpx.AsyncClient, wait: str
) -> None:
    task = await created(http_client)
    await http_client.post(f"/tasks/{task['id']}/cancel")  # finished: answered at once

    response = await http_client.get(f"/tasks/{task['id']}", params={"wait": wait})

    assert response.status_code == 200, response.text


async def test_waiting_on_an_unknown_task_is_a_404_at_once(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"

    response = await http_client.get(f"/tasks/{unknown}?wait=10")

    assert response.status_code == 404
    assert len(http_container.completion_waiters()) == 0


async def test_wait_needs_an_api_key_like_every_task_route(serve: Serve) -> None:
    container = build_container(Settings(backend="memory", api_keys="k1"))
    async with serve(create_app(container)) as client:
        made = await client.post(
            "/tasks", json={"type": "email", "payload": "a@b.io"}, headers={"X-API-Key": "k1"}
        )
        url = f"/tasks/{made.json()['id']}?wait=0.1"

        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, headers={"X-API-Key": "nope"})).status_code == 403
        assert (await client.get(url, headers={"X-API-Key": "k1"})).status_code == 200


# -- the use case, on its own ------------------------------------------------------------


class CountingStore:
    """A store of one PENDING task that counts its reads."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.reads = 0

    async def get(self, task_id: str) -> Task:
        self.reads += 1
        return self.task


async def pending(http_client: httpx.AsyncClient, container: Container) -> Task:
    made = await created(http_client)
    task: Task = await container.repository().get(made["id"])
    return task


async def test_where_only_this_process_changes_tasks_a_waiter_never_polls(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    store = CountingStore(await pending(http_client, http_container))
    waiting = TaskWaiting(store.get, CompletionWaiters(), poll_store=False)

    task = await waiting.wait(store.task.id, 0.5)

    assert task.status.value == "PENDING"
    assert store.reads == 2  # before listening, and at the deadline


async def test_where_another_process_may_finish_it_the_store_is_polled_with_a_backoff(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    store = CountingStore(await pending(http_client, http_container))
    waiting = TaskWaiting(store.get, CompletionWaiters(), poll_store=True)

    await waiting.wait(store.task.id, 0.5)

    # 0.05 + 0.1 + 0.2 + (0.15 to the deadline): five reads, not one every few ms
    assert 4 <= store.reads <= 6


async def test_a_poll_that_finds_the_task_finished_answers_before_the_deadline(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    store = CountingStore(await pending(http_client, http_container))
    waiting = TaskWaiting(store.get, CompletionWaiters(), poll_store=True)
    finished = store.task.cancel(store.task.updated_at)
    started = time.monotonic()

    async def finish_elsewhere() -> None:
        await asyncio.sleep(0.1)
        store.task = finished

    _, task = await asyncio.gather(finish_elsewhere(), waiting.wait(store.task.id, 10))

    assert task.status.value == "CANCELLED"
    assert time.monotonic() - started < 1


async def test_an_event_from_another_thread_wakes_the_waiter(
    http_container: Container, http_client: httpx.AsyncClient
) -> None:
    store = CountingStore(await pending(http_client, http_container))
    waiters = CompletionWaiters()
    waiting = TaskWaiting(store.get, waiters, poll_store=False)
    finished = store.task.cancel(store.task.updated_at)
    event = TaskEvent(TaskEventKind.CANCELLED, finished, finished.updated_at)

    async def finish_in_a_thread() -> None:
        await asyncio.sleep(0.1)
        await asyncio.to_thread(waiters.record, event)

    _, task = await asyncio.gather(finish_in_a_thread(), waiting.wait(store.task.id, 10))

    assert task is finished


@pytest.mark.parametrize("seconds", [0.0, -1.0, 30.01, float("nan"), float("inf")])
async def test_the_use_case_refuses_a_wait_out_of_range(seconds: float) -> None:
    waiting = TaskWaiting(CountingStore.get, CompletionWaiters(), poll_store=False)  # type: ignore[arg-type]

    with pytest.raises(InvalidInput) as raised:
        await waiting.wait("any", seconds)

    assert raised.value.field == "wait"
