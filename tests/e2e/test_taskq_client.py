"""``taskq.Client`` and ``taskq.AsyncClient`` against a real ``taskq serve`` over HTTP:
results, the server's errors as typed exceptions, paging, and retries through a real
proxy that answers 503 or loses an answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import ANY

import pytest

import taskq
from tests.support.faulty_proxy import FaultyProxy
from tests.support.processes import Server, keyed_server

pytestmark = pytest.mark.e2e
API_KEY = "client-test-key"
FAILING_TYPE = "always-fails"  # tests.e2e.serve_handlers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with keyed_server(tmp_path_factory.mktemp("client"), API_KEY) as server:
        yield server


@pytest.fixture
def client(server: Server) -> Iterator[taskq.Client]:
    with taskq.Client(server.url, api_key=API_KEY) as client:
        yield client


def test_submit_then_result(client: taskq.Client) -> None:
    handle = client.submit("email", "a@b.io", max_attempts=2)

    assert handle.task.status == "PENDING" and handle.task.max_attempts == 2
    assert handle.result(timeout=30) == {"message_id": ANY, "accepted": ["a@b.io"]}
    assert handle.task.status == taskq.TaskStatus.COMPLETED
    assert handle.refresh().finished


def test_submit_then_result_on_sqlite(tmp_path: Path) -> None:
    sqlite = {"TASKQ_BACKEND": "sqlite", "TASKQ_SQLITE_PATH": str(tmp_path / "taskq.db")}
    with keyed_server(tmp_path, API_KEY, **sqlite) as server:
        with taskq.Client(server.url, api_key=API_KEY) as client:
            assert client.submit("email", "a@b.io").result(timeout=30) == {
                "message_id": ANY,
                "accepted": ["a@b.io"],
            }


def test_a_typed_parser_turns_the_result_into_its_type(client: taskq.Client) -> None:
    handle = client.submit("email", "a@b.io", parse=lambda result: result["accepted"][0])

    assert handle.result(timeout=30) == "a@b.io"


async def test_async_client_submits_one_and_a_batch(server: Server) -> None:
    async with taskq.AsyncClient(server.url, api_key=API_KEY) as client:
        handle = await client.submit("email", "c@d.io")
        results = await client.submit_batch(
            [
                taskq.NewTask(type="email", payload="e@f.io"),
                {"type": "sms", "payload": "hi"},
            ]
        )
        assert await handle.result(timeout=30) == {"message_id": ANY, "accepted": ["c@d.io"]}
        first, unknown = results
        assert first.ok and first.task is not None and not unknown.ok
        assert (unknown.status, unknown.error is not None) == (422, True)
        assert "sms" in (unknown.error or "")
        later = await client.handle(first.task.id)
        assert await later.result(timeout=30) == {"message_id": ANY, "accepted": ["e@f.io"]}


async def test_async_client_manages_schedules(server: Server) -> None:
    async with taskq.AsyncClient(server.url, api_key=API_KEY) as client:
        put = await client.put_schedule(
            "async-nightly", "email", "0 3 * * *", "a@b.io", timezone="Europe/Paris"
        )
        assert (put.timezone, put.enabled, put.next_fire_at is not None) == (
            "Europe/Paris",
            True,
            True,
        )
        assert "async-nightly" in [s.name for s in await client.schedules()]
        assert (await client.schedule("async-nightly")).next_fire_at == put.next_fire_at
        await client.delete_schedule("async-nightly")
        with pytest.raises(taskq.NotFound):
            await client.schedule("async-nightly")
        with pytest.raises(taskq.NotFound):
            await client.delete_schedule("async-nightly")


async def test_async_client_reads_and_changes_task_types(server: Server) -> None:
    async with taskq.AsyncClient(server.url, api_key=API_KEY) as client:
        types = {t.type: t for t in (await client.task_types()).task_types}
        assert {"email", "data-export", FAILING_TYPE} <= set(types)
        changed = await client.change_task_type("data-export", max_concurrency=2, paused=True)
        assert (changed.max_concurrency, changed.paused) == (2, True)
        after = {t.type: t for t in (await client.task_types()).task_types}
        assert after["data-export"].paused and after["data-export"].max_concurrency == 2
        restored = await client.change_task_type("data-export", max_concurrency=None, paused=False)
        assert (restored.max_concurrency, restored.paused) == (None, False)
        with pytest.raises(taskq.InvalidRequest) as bad:
            await client.change_task_type("data-export", max_concurrency=-1)
        assert "max_concurrency" in bad.value.message


def test_client_reads_one_schedule(client: taskq.Client) -> None:
    put = client.put_schedule("sync-hourly", "email", "0 * * * *", "a@b.io", missed="run_once")
    try:
        assert client.schedule("sync-hourly") == put
    finally:
        client.delete_schedule("sync-hourly")
    with pytest.raises(taskq.NotFound):
        client.schedule("sync-hourly")


def test_a_failed_task_raises_task_failed_with_its_error(client: taskq.Client) -> None:
    handle = client.submit(FAILING_TYPE, {}, max_attempts=1)

    with pytest.raises(taskq.TaskFailed) as failed:
        handle.result(timeout=30)

    assert failed.value.task.id == handle.id
    assert "the downstream service said no" in (failed.value.error or "")


def test_a_cancelled_task_raises_task_cancelled(client: taskq.Client) -> None:
    handle = client.submit("email", "a@b.io", delay_seconds=3600)

    assert handle.cancel().status == "CANCELLED"
    with pytest.raises(taskq.TaskCancelled):
        handle.result(timeout=5)
    with pytest.raises(taskq.Conflict) as again:
        handle.cancel()
    assert "CANCELLED" in again.value.message


def test_result_times_out_at_its_deadline(client: taskq.Client) -> None:
    handle = client.submit("email", "a@b.io", delay_seconds=3600)
    started = time.monotonic()

    with pytest.raises(taskq.ResultTimeout) as late:
        handle.result(timeout=1.5)

    assert 1.4 < time.monotonic() - started < 5
    assert late.value.task.status == "PENDING"


def test_errors_carry_the_servers_message(server: Server, client: taskq.Client) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(taskq.NotFound) as not_found:
        client.get(missing)
    with pytest.raises(taskq.InvalidRequest) as invalid:
        client.submit("sms", "hi")
    with taskq.Client(server.url, api_key="") as anonymous:
        with pytest.raises(taskq.Unauthorized) as unauthorised:
            anonymous.metrics()

    assert missing in not_found.value.message
    assert invalid.value.location == "type" and "unknown task type 'sms'" in invalid.value.message
    assert "authentication required" in unauthorised.value.message


def test_list_pages_and_iterates_every_page(client: taskq.Client) -> None:
    ids = {client.submit("email", "a@b.io", delay_seconds=3600).id for _ in range(5)}

    page = client.list("PENDING", limit=2)
    every = [task.id for task in client.iter_tasks("PENDING", page_size=2)]

    assert len(page.tasks) == 2 and page.next_cursor
    assert ids <= set(every) and len(every) == len(set(every))


def test_dead_letters_and_the_service(client: taskq.Client) -> None:
    handle = client.submit(FAILING_TYPE, {}, max_attempts=1)
    with pytest.raises(taskq.TaskFailed):
        handle.result(timeout=30)

    dead = client.dead_letters(limit=100)
    redriven = client.redrive(type=FAILING_TYPE, limit=1, per_second=100)

    assert handle.id in [task.id for task in dead.tasks]
    assert redriven.count == 1
    assert client.metrics().total_tasks >= 1
    assert client.workers().active_workers >= 1
    assert client.health().status == "healthy"
    assert isinstance(client.dead_letter_messages(limit=5), taskq.models.DeadLetterMessages)


def test_a_503_is_retried_after_its_retry_after(server: Server, client: taskq.Client) -> None:
    faults = {("POST", "/tasks"): ["unavailable", "unavailable"]}
    before = client.metrics().total_tasks
    with FaultyProxy(server.url, faults) as proxy:
        with taskq.Client(proxy.url, api_key=API_KEY) as through:
            started = time.monotonic()
            handle = through.submit("email", "a@b.io")
            took = time.monotonic() - started

    submits = [seen for seen in proxy.seen if seen.method == "POST"]
    assert [seen.fault for seen in submits] == ["unavailable", "unavailable", None]
    assert len({seen.headers["idempotency-key"] for seen in submits}) == 1
    assert took >= 2  # Retry-After: 1, twice
    assert client.get(handle.id).id == handle.id
    assert client.metrics().total_tasks == before + 1


def test_a_submit_whose_answer_was_lost_is_resent_and_makes_one_task(
    server: Server, client: taskq.Client
) -> None:
    before = client.metrics().total_tasks
    with FaultyProxy(server.url, {("POST", "/tasks"): ["drop"]}) as proxy:
        with taskq.Client(proxy.url, api_key=API_KEY) as through:
            handle = through.submit("email", "a@b.io", delay_seconds=3600)

    assert [seen.fault for seen in proxy.seen] == ["drop", None]
    assert client.metrics().total_tasks == before + 1  # the resend found the first task
    assert client.get(handle.id).status == "PENDING"
