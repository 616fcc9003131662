"""API keys, the per-key rate limit, and the refusal to serve openly without keys."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import httpx
import pytest
from dependency_injector import providers

from adapters.clock import ManualClock
from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.auth import AuthConfigError, is_loopback, load_key_digests
from entrypoints.runtime import refuse_unsafe_bind, run
from tests.support.http_app import Serve

KEYS = "key-one,key-two"
EMAIL = {"type": "email", "payload": "a@b.io"}


def secured(**settings: object) -> Container:
    return build_container(Settings(backend="memory", api_keys=KEYS, **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer key-one"},
        {"Authorization": "bearer key-two"},
        {"X-API-Key": "key-two"},
    ],
)
async def test_a_configured_key_is_accepted_in_either_header(
    serve: Serve, headers: dict[str, str]
) -> None:
    async with serve(create_app(secured())) as client:
        created = await client.post("/tasks", json=EMAIL, headers=headers)
        fetched = await client.get(f"/tasks/{created.json()['id']}", headers=headers)

    assert created.status_code == 201
    assert fetched.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic a2V5LW9uZQ=="}, {"Authorization": "Bearer "}, {"X-API-Key": ""}],
)
async def test_no_key_is_401_with_www_authenticate(serve: Serve, headers: dict[str, str]) -> None:
    container = secured()
    async with serve(create_app(container)) as client:
        response = await client.post("/tasks", json=EMAIL, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["error"]
    assert (await container.task_service().metrics()).total == 0


@pytest.mark.parametrize("path", ["/tasks?status=PENDING", "/metrics", "/dead-letters"])
async def test_a_wrong_key_is_403_and_says_nothing_more(serve: Serve, path: str) -> None:
    async with serve(create_app(secured())) as client:
        response = await client.get(path, headers={"Authorization": "Bearer key-three"})

    assert response.status_code == 403
    assert response.json() == {"error": "the API key is not valid"}


async def test_health_and_ready_stay_open(serve: Serve) -> None:
    async with serve(create_app(secured())) as client:
        health = await client.get("/health")
        ready = await client.get("/ready")
        openapi = await client.get("/openapi.json")

    assert health.status_code == 200 and ready.status_code == 200
    assert openapi.status_code == 401


async def test_without_keys_there_is_no_authentication(http_client: httpx.AsyncClient) -> None:
    response = await http_client.post("/tasks", json=EMAIL, headers={"X-API-Key": "anything"})

    assert response.status_code == 201


async def test_keys_can_come_from_a_file_of_sha256_digests(serve: Serve, tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(
        "# ops team\n"
        f"{hashlib.sha256(b'from-file').hexdigest()}  # rotated 2026-01\n"
        "\n"
        f"{hashlib.sha256(b'other').hexdigest().upper()}\n"
    )
    container = build_container(Settings(backend="memory", api_key_file=str(key_file)))

    async with serve(create_app(container)) as client:
        ok = await client.get("/metrics", headers={"X-API-Key": "from-file"})
        upper = await client.get("/metrics", headers={"X-API-Key": "other"})
        wrong = await client.get("/metrics", headers={"X-API-Key": "from-fil"})

    assert (ok.status_code, upper.status_code, wrong.status_code) == (200, 200, 403)


@pytest.mark.parametrize("content", ["not-a-digest\n", "ab" * 31 + "\n"])
def test_a_bad_key_file_line_is_an_error_naming_the_line(tmp_path: Path, content: str) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# header\n" + content)

    with pytest.raises(AuthConfigError, match="line 2"):
        load_key_digests(Settings(backend="memory", api_key_file=str(key_file)))


def test_a_missing_key_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="cannot read"):
        load_key_digests(Settings(backend="memory", api_key_file=str(tmp_path / "none")))


def test_keys_are_not_in_the_settings_repr() -> None:
    settings = Settings(backend="memory", api_keys="s3cret-key")

    assert "s3cret-key" not in repr(settings) and "s3cret-key" not in str(settings)


async def test_keys_never_reach_the_logs(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(create_app(secured())) as client:
        await client.get("/metrics", headers={"Authorization": "Bearer key-one"})
        await client.get("/metrics", headers={"Authorization": "Bearer wrong-key-xyz"})

    assert "key-one" not in caplog.text and "wrong-key-xyz" not in caplog.text


# -- rate limit --------------------------------------------------------------------------


async def test_each_key_has_its_own_rate_limit_answered_with_429(serve: Serve) -> None:
    clock = ManualClock()
    container = secured(rate_limit_per_second=0.5, rate_limit_burst=2)
    container.clock.override(providers.Object(clock))
    one = {"X-API-Key": "key-one"}
    two = {"X-API-Key": "key-two"}

    async with serve(create_app(container)) as client:
        allowed = [(await client.get("/metrics", headers=one)).status_code for _ in range(2)]
        limited = await client.get("/metrics", headers=one)
        other = await client.get("/metrics", headers=two)
        health = await client.get("/health")
        await clock.advance(2)
        refilled = await client.get("/metrics", headers=one)

    assert allowed == [200, 200]
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert "rate limit" in limited.json()["error"]
    assert other.status_code == 200 and health.status_code == 200
    assert refilled.status_code == 200


async def test_without_keys_the_rate_limit_is_shared(serve: Serve) -> None:
    container = build_container(
        Settings(backend="memory", rate_limit_per_second=0.001, rate_limit_burst=1)
    )
    container.clock.override(providers.Object(ManualClock()))

    async with serve(create_app(container)) as client:
        first = await client.get("/metrics")
        second = await client.get("/metrics")

    assert (first.status_code, second.status_code) == (200, 429)
    assert int(second.headers["retry-after"]) == 1000


# -- safe by default ---------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.0.1", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "example.com", ""])
def test_other_addresses(host: str) -> None:
    assert not is_loopback(host)


def test_serving_openly_without_keys_is_refused_with_the_reason_and_the_fix() -> None:
    with pytest.raises(SystemExit) as exited:
        refuse_unsafe_bind(Settings(backend="memory", host="0.0.0.0"))

    message = str(exited.value.code)
    assert "0.0.0.0" in message and "without authentication" in message
    assert "TASKQ_API_KEYS" in message and "TASKQ_INSECURE=true" in message


@pytest.mark.parametrize(
    "settings",
    [
        {"host": "127.0.0.1"},
        {"host": "0.0.0.0", "api_keys": "k"},
        {"host": "0.0.0.0", "insecure": True},
    ],
)
def test_serving_is_allowed_on_loopback_with_keys_or_when_insecure(
    settings: dict[str, object],
) -> None:
    refuse_unsafe_bind(Settings(backend="memory", **settings))  # type: ignore[arg-type]


async def test_run_refuses_before_starting_anything() -> None:
    container = build_container(Settings(backend="memory", host="0.0.0.0", port=0))

    with pytest.raises(SystemExit, match="TASKQ_API_KEYS"):
        await run(container, api=True, worker=False)

    assert not container.executor.initialized
