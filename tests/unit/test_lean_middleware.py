"""Middleware that has nothing to do for a request stays out of its way (issue 18)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from bootstrap.container import build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.auth import AuthMiddleware
from entrypoints.http.body_limit import BodyLimitMiddleware
from entrypoints.http.errors import CatchAllMiddleware, TrackedSend
from entrypoints.http.observe import ObserveMiddleware

LIMIT = 10


def _scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "method": "POST", "path": "/tasks", "headers": headers}


def _chunks(*bodies: bytes) -> Receive:
    messages = [{"type": "http.request", "body": b, "more_body": True} for b in bodies]
    messages[-1]["more_body"] = False

    async def receive() -> Message:
        return messages.pop(0)

    return receive


class Seen:
    """An app that reads the whole body and notes what it was given."""

    def __init__(self) -> None:
        self.receive: Receive | None = None
        self.send: Send | None = None
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.receive, self.send = receive, send
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _sent(messages: list[Message]) -> Send:
    async def send(message: Message) -> None:
        messages.append(message)

    return send


async def test_a_body_declared_within_the_limit_is_not_counted() -> None:
    app = Seen()
    receive = _chunks(b"12345")
    sent: list[Message] = []
    await BodyLimitMiddleware(app, max_body_bytes=LIMIT)(
        _scope([(b"content-length", b"5")]), receive, _sent(sent)
    )
    assert app.receive is receive and app.body == b"12345"  # no wrapper in between
    assert sent[0]["status"] == 204


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")],
        [(b"content-length", b"5"), (b"content-length", b"12")],
    ],
    ids=["beside-a-transfer-encoding", "repeated"],
)
async def test_a_length_that_cannot_be_believed_is_counted(
    headers: list[tuple[bytes, bytes]],
) -> None:
    sent: list[Message] = []
    await BodyLimitMiddleware(Seen(), max_body_bytes=LIMIT)(
        _scope(headers), _chunks(b"123456", b"789012"), _sent(sent)
    )
    assert sent[0]["status"] == 413


async def test_the_response_is_tracked_once_through_the_layers() -> None:
    app = Seen()
    sent: list[Message] = []
    send = _sent(sent)
    stack: Any = ObserveMiddleware(
        CatchAllMiddleware(BodyLimitMiddleware(app, max_body_bytes=LIMIT)), observer=None
    )
    await stack(_scope([]), _chunks(b"x"), send)
    assert isinstance(app.send, TrackedSend)
    assert app.send._send is send  # one wrapper, shared by the three layers
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]


def _layers(settings: Settings) -> list[object]:
    return [m.cls for m in create_app(build_container(settings)).user_middleware]


def test_without_keys_or_a_rate_limit_there_is_no_auth_layer() -> None:
    assert AuthMiddleware not in _layers(Settings(backend="memory"))
    assert AuthMiddleware in _layers(Settings(backend="memory", api_keys="k" * 32))
    assert AuthMiddleware in _layers(Settings(backend="memory", rate_limit_per_second=5))
