"""The client's timing: when it resends a request and how long it waits first, and how
a handle paces its reads of a task. httpx.MockTransport stands in for the server and a
fake clock for time, so what is checked is how long the client would have waited."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from taskq import (
    AsyncClient,
    Client,
    InvalidRequest,
    ResultTimeout,
    ServerUnreachable,
    Timing,
    Unavailable,
)
from taskq.config import MAX_RETRY_AFTER_SECONDS, POLL_MAX_PAUSE_SECONDS

TASK = {"id": "6d1c3d0e-0000-4000-8000-000000000001", "type": "email", "status": "PENDING"}
Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Time that moves only when the client sleeps (or a fake server holds a request)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds:  # sleeping 0 is not waiting
            self.sleeps.append(seconds)
            self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def timing(self) -> Timing:
        return Timing(monotonic=self.monotonic, sleep=self.sleep, async_sleep=self.async_sleep)


class Script:
    """A fake server answering from a list, recording every request it got."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self._answers: Iterator[httpx.Response | Exception] = iter(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = next(self._answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def keys(self) -> list[str | None]:
        return [r.headers.get("idempotency-key") for r in self.requests]


def unavailable(retry_after: str | None = "2") -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return httpx.Response(503, json={"error": "backlog full, retry later"}, headers=headers)


def client_for(script: Handler, clock: FakeClock, **options: Any) -> Client:
    transport = httpx.MockTransport(script)
    return Client("http://taskq.test", transport=transport, timing=clock.timing(), **options)


def test_a_503_is_resent_after_its_retry_after_with_the_same_idempotency_key() -> None:
    clock = FakeClock()
    script = Script(unavailable("2"), unavailable("3"), httpx.Response(201, json=TASK))

    with client_for(script, clock) as client:
        handle = client.submit("email", "a@b.io")

    assert handle.id == TASK["id"]
    assert clock.sleeps == [2.0, 3.0]
    assert len(script.requests) == 3
    assert len(set(script.keys)) == 1 and script.keys[0]  # a generated uuid4, kept
    assert json.loads(script.requests[0].content) == {"type": "email", "payload": "a@b.io"}


def test_the_callers_idempotency_key_is_sent() -> None:
    script = Script(httpx.Response(201, json=TASK))

    with client_for(script, FakeClock()) as client:
        client.submit("email", "a@b.io", idempotency_key="order-42", max_attempts=5)

    assert script.keys == ["order-42"]
    body = json.loads(script.requests[0].content)
    assert body == {"type": "email", "payload": "a@b.io", "max_attempts": 5}


def test_retry_after_is_capped_and_a_429_is_retried_too() -> None:
    clock = FakeClock()
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    script = Script(
        httpx.Response(429, json={"error": "rate limit"}, headers={"Retry-After": "86400"}),
        unavailable(later),
        unavailable(None),
        httpx.Response(200, json=TASK),
    )

    with client_for(script, clock) as client:
        client.get(TASK["id"])

    capped, dated, backoff = clock.sleeps
    assert capped == MAX_RETRY_AFTER_SECONDS
    assert 25 < dated <= 30  # an HTTP date is honoured too
    assert backoff == 0.8  # no Retry-After: the third retry's backoff (0.2 doubled twice)


def test_after_max_retries_the_503_is_raised_with_the_servers_message() -> None:
    clock = FakeClock()
    script = Script(*[unavailable("1")] * 3)

    with client_for(script, clock, max_retries=2) as client, pytest.raises(Unavailable) as error:
        client.submit("email", "a@b.io")

    assert error.value.message == "backlog full, retry later"
    assert (error.value.status_code, error.value.retry_after) == (503, 1.0)
    assert clock.sleeps == [1.0, 1.0] and len(script.requests) == 3


def test_other_4xx_are_raised_at_once_naming_the_field() -> None:
    clock = FakeClock()
    problem = {"error": "payload.width: Input should be a valid integer"}
    script = Script(httpx.Response(422, json=problem))

    with client_for(script, clock) as client, pytest.raises(InvalidRequest) as error:
        client.submit("resize", {"width": "x"})

    assert error.value.location == "payload.width"
    assert str(error.value) == "422: payload.width: Input should be a valid integer"
    assert clock.sleeps == [] and len(script.requests) == 1


def test_a_connection_that_never_opened_is_retried_for_any_request() -> None:
    clock = FakeClock()
    refused = httpx.ConnectError("connection refused")
    script = Script(refused, httpx.Response(200, json={**TASK, "status": "CANCELLED"}))

    with client_for(script, clock) as client:
        assert client.cancel(TASK["id"]).status == "CANCELLED"

    assert clock.sleeps == [0.2]


def test_a_connection_lost_after_sending_is_retried_only_when_resending_is_harmless() -> None:
    clock = FakeClock()
    lost = httpx.ReadError("connection reset")
    script = Script(lost, httpx.Response(201, json=TASK), lost)

    with client_for(script, clock) as client:
        client.submit("email", "a@b.io")  # idempotent: it carries its key
        with pytest.raises(ServerUnreachable) as error:
            client.cancel(TASK["id"])  # cancelling twice answers 409: not resent

    assert len(script.requests) == 3 and clock.sleeps == [0.2]
    assert str(error.value) == "cannot reach the server at http://taskq.test: connection reset"


async def test_the_async_client_retries_the_same_way() -> None:
    clock = FakeClock()
    script = Script(unavailable("4"), httpx.Response(201, json=TASK))
    transport = httpx.MockTransport(script)

    async with AsyncClient(
        "http://taskq.test", transport=transport, timing=clock.timing()
    ) as client:
        handle = await client.submit("email", "a@b.io")

    assert handle.id == TASK["id"] and clock.sleeps == [4.0]
    assert len(set(script.keys)) == 1


def old_server(clock: FakeClock, finish_after: int | None = None) -> Script:
    """A server without ``wait``: it answers every read at once."""
    reads = [httpx.Response(200, json=TASK) for _ in range(200)]
    if finish_after is not None:
        done = {**TASK, "status": "COMPLETED", "result": {"delivered_to": "a@b.io"}}
        reads[finish_after] = httpx.Response(200, json=done)
    return Script(httpx.Response(201, json=TASK), *reads)


def test_result_against_a_server_without_wait_backs_off_instead_of_spinning() -> None:
    clock = FakeClock()
    script = old_server(clock)

    with client_for(script, clock) as client:
        handle = client.submit("email", "a@b.io")
        with pytest.raises(ResultTimeout) as error:
            handle.result(timeout=10)

    reads = script.requests[1:]
    assert reads[0].url.params["wait"] == "10"
    assert clock.sleeps[:5] == [0.05, 0.1, 0.2, 0.4, 0.8]
    assert max(clock.sleeps) == POLL_MAX_PAUSE_SECONDS
    assert len(reads) < 20  # about 10 s at most one read a second, not thousands
    assert clock.now - 1000 == pytest.approx(10)
    assert isinstance(error.value, TimeoutError) and error.value.task.status == "PENDING"


def test_result_returns_as_soon_as_a_read_shows_the_task_finished() -> None:
    clock = FakeClock()
    script = old_server(clock, finish_after=3)

    with client_for(script, clock) as client:
        result = client.submit("email", "a@b.io").result(timeout=30)

    assert result == {"delivered_to": "a@b.io"}
    assert len(script.requests) == 5 and clock.sleeps == [0.05, 0.1, 0.2]


def test_a_server_that_holds_the_read_is_asked_again_without_a_pause() -> None:
    """A server with ``wait`` answers after the wait: the handle asks again at once, for
    at most 30 s, then for what is left."""
    clock = FakeClock()
    waits: list[str] = []

    def holding(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json=TASK)
        waits.append(request.url.params.get("wait", ""))
        clock.now += float(request.url.params.get("wait", "0"))
        return httpx.Response(200, json=TASK)

    with client_for(holding, clock) as client, pytest.raises(ResultTimeout):
        client.submit("email", "a@b.io").result(timeout=75)

    assert waits == ["30", "30", "15"] and clock.sleeps == []


async def test_the_async_handle_paces_its_reads_the_same_way() -> None:
    clock = FakeClock()
    script = old_server(clock, finish_after=2)
    sleep: Callable[[float], Awaitable[None]] = clock.async_sleep

    async with AsyncClient(
        "http://taskq.test",
        transport=httpx.MockTransport(script),
        timing=Timing(monotonic=clock.monotonic, sleep=clock.sleep, async_sleep=sleep),
    ) as client:
        handle = await client.submit("email", "a@b.io")
        assert await handle.result(timeout=30) == {"delivered_to": "a@b.io"}

    assert clock.sleeps == [0.05, 0.1]
