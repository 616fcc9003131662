"""Typed tasks end to end on every backend: ``taskq serve`` (memory, sqlite, aws on a
moto server) runs the ``taskq.task`` types of ``tests.support.typed_handlers``; a
producer submits through ``TypedTask.submit`` with ``taskq.Client`` / ``AsyncClient``
and gets the typed result, the progress the handler reported, and input errors at
submit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import taskq
from tests.support.processes import MotoServer, Server, aws_env, running_server
from tests.support.typed_handlers import ResizeIn, ResizeOut, add, resize

pytestmark = pytest.mark.e2e
HANDLERS = {"TASKQ_HANDLERS": "tests.support.typed_handlers", "WORKER_COUNT": "4"}


@pytest.fixture(
    scope="module", params=["memory", "sqlite", pytest.param("aws", marks=pytest.mark.aws)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    where = tmp_path_factory.mktemp(request.param)
    if request.param == "memory":
        env = {"TASKQ_BACKEND": "memory"}
    elif request.param == "sqlite":
        env = {"TASKQ_BACKEND": "sqlite", "TASKQ_SQLITE_PATH": str(where / "taskq.db")}
    else:
        with (
            MotoServer(where) as moto,
            running_server(where, env={**aws_env(where, moto.url), **HANDLERS}) as server,
        ):
            yield server
        return
    with running_server(where, env={**env, **HANDLERS}) as server:
        yield server


def test_a_typed_submit_gives_the_typed_result_and_the_reported_progress(server: Server) -> None:
    with taskq.Client(server.url) as client:
        handle = resize.submit(ResizeIn(image="cat.png", width=4, height=3), client=client)
        result = handle.result(timeout=30)
        stored = client.get(handle.id)

    assert result == ResizeOut(key="cat.png@4x3", pixels=12)
    assert isinstance(result, ResizeOut)
    assert stored.max_attempts == 5, "the type's default attempt budget"
    assert stored.progress is not None and stored.progress.percent == 50
    assert stored.progress.message == "resizing cat.png"


async def test_the_async_client_gets_a_typed_result_of_a_sync_handler(server: Server) -> None:
    async with taskq.AsyncClient(server.url) as client:
        handle = await add.submit([1, 2, 39], client=client)
        assert await handle.result(timeout=30) == 42


def test_an_input_that_fails_the_model_is_refused_at_submit_naming_the_field(
    server: Server,
) -> None:
    with taskq.Client(server.url) as client, pytest.raises(taskq.InvalidRequest) as refused:
        client.submit("typed-resize", {"image": "cat.png", "width": 0})

    assert refused.value.status_code == 422
    assert "payload.width" in str(refused.value) and "payload.height" in str(refused.value)
