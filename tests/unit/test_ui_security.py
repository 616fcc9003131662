"""The dashboard's security over real HTTP through the app: login with an API key, the
signed session cookie, CSRF on every POST, escaping, the Content-Security-Policy."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pydantic
import pytest

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.ui.session import COOKIE, Session, SessionCodec
from tests.support.http_app import created, failed, serve_app
from tests.support.ui_forms import csrf_token

KEY = "the-dashboard-key-1"
SECRET = "s" * 32


def secured() -> Container:
    return build_container(Settings(backend="memory", api_keys=KEY, session_secret=SECRET))


@pytest.fixture
async def open_client() -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(create_app(build_container(Settings(backend="memory")))) as client:
        yield client


async def login(client: httpx.AsyncClient, key: str = KEY) -> httpx.Response:
    form = await client.get("/ui/login")
    return await client.post("/ui/login", data={"csrf": csrf_token(form), "key": key})


async def test_with_keys_the_dashboard_asks_for_a_key_first() -> None:
    async with serve_app(create_app(secured())) as client:
        response = await client.get("/ui")
        feed = await client.get("/ui/overview.json")

    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login"
    assert feed.status_code == 401


async def test_a_valid_key_opens_a_session_in_a_strict_http_only_cookie() -> None:
    async with serve_app(create_app(secured())) as client:
        response = await login(client)
        overview = await client.get("/ui")

    assert response.status_code == 303
    assert response.headers["location"] == "/ui"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"):
        assert attribute in cookie
    assert KEY not in cookie
    assert overview.status_code == 200
    assert "Pending" in overview.text
    assert KEY not in overview.text


async def test_a_wrong_key_is_refused_and_gets_no_session() -> None:
    async with serve_app(create_app(secured())) as client:
        response = await login(client, key="not-the-key")
        overview = await client.get("/ui")

    assert response.status_code == 403
    assert "not valid" in response.text
    assert overview.status_code == 303


async def test_failed_logins_are_throttled_per_address() -> None:
    settings = Settings(backend="memory", api_keys=KEY, session_secret=SECRET, auth_failure_burst=2)
    async with serve_app(create_app(build_container(settings))) as client:
        statuses = [(await login(client, key="wrong")).status_code for _ in range(3)]
        right = await login(client)

    assert statuses == [403, 403, 429]
    assert right.status_code == 429  # throttled whatever the key: no guessing at speed


async def test_the_api_still_wants_its_key_beside_the_dashboard() -> None:
    async with serve_app(create_app(secured())) as client:
        await login(client)
        response = await client.get("/metrics")  # the session cookie is no API key

    assert response.status_code == 401


async def test_a_tampered_or_expired_session_is_not_accepted() -> None:
    codec = SessionCodec(SECRET.encode())
    digest = "0" * 64
    forged = SessionCodec(b"another-secret-of-32-characters!").encode(
        Session("sid", digest, int(time.time()) + 60)
    )
    expired = codec.encode(Session("sid", digest, int(time.time()) - 1))
    async with serve_app(create_app(secured())) as client:
        for value in (forged, expired, codec.encode(Session("sid", digest, 2**40)), "x.y"):
            client.cookies.set(COOKIE, value, path="/ui")
            assert (await client.get("/ui")).status_code == 303


async def test_a_post_without_the_session_csrf_token_is_refused(
    open_client: httpx.AsyncClient,
) -> None:
    task = await created(open_client, delay_seconds=600)
    page = await open_client.get(f"/ui/tasks/{task['id']}")
    url = f"/ui/tasks/{task['id']}/cancel"

    missing = await open_client.post(url, data={})
    wrong = await open_client.post(url, data={"csrf": "forged"})
    foreign = await open_client.post(
        url, data={"csrf": csrf_token(page)}, headers={"Origin": "https://evil.example"}
    )
    still = (await open_client.get(f"/tasks/{task['id']}")).json()["status"]
    right = await open_client.post(url, data={"csrf": csrf_token(page)})

    assert [missing.status_code, wrong.status_code, foreign.status_code] == [403, 403, 403]
    assert "CSRF token" in missing.text
    assert "another origin" in foreign.text
    assert still == "PENDING"
    assert right.status_code == 303
    assert (await open_client.get(f"/tasks/{task['id']}")).json()["status"] == "CANCELLED"


async def test_without_keys_every_visitor_gets_an_anonymous_session(
    open_client: httpx.AsyncClient,
) -> None:
    response = await open_client.get("/ui")

    assert response.status_code == 200
    assert "HttpOnly" in response.headers["set-cookie"]
    assert "Log out" not in response.text


async def test_pages_carry_a_policy_that_forbids_inline_scripts(
    open_client: httpx.AsyncClient,
) -> None:
    response = await open_client.get("/ui")
    policy = response.headers["content-security-policy"]

    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in response.text  # only <script src=...> of the app's own file
    assert response.headers["x-frame-options"] == "DENY"
    assert len(response.content) < 200 * 1024


@pytest.mark.parametrize("payload", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
async def test_what_users_submitted_renders_as_text(
    http_container: Container, payload: str
) -> None:
    async with serve_app(create_app(http_container)) as client:
        task = await created(client, payload={"to": "a@b.io", "subject": payload})
        await failed(http_container, task["id"], error=payload)
        detail = await client.get(f"/ui/tasks/{task['id']}")
        listing = await client.get("/ui/dead-letters")

    for page in (detail, listing):
        assert payload not in page.text
        assert "&lt;" in page.text


async def test_a_session_secret_too_short_is_refused_naming_the_variable() -> None:
    with pytest.raises(pydantic.ValidationError, match="TASKQ_SESSION_SECRET must be at least 32"):
        Settings(session_secret="short")
